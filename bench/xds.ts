/**
 * xDS control-plane benchmark: 1,000 services × 10 endpoints in each of two Kubernetes clusters,
 * 500 sidecar-style ADS clients (Isthmus's XdsClient, in one child process so the control plane's
 * memory is measured alone). Reports the time for every client to get a full push, the control
 * plane's RSS, and EDS update latency (registry event → update received by each client) p50/p99,
 * whose floor is the debounce quiet period (PILOT_DEBOUNCE_AFTER, 100 ms).
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { MeshEndpoint, MeshService } from "../src/model/index.js";
import { StaticServiceView, TypeUrl, XdsClient, XdsServer } from "../src/xds/index.js";

export interface XdsBenchOptions {
  readonly services?: number;
  readonly endpointsPerCluster?: number;
  readonly clients?: number;
  readonly edsUpdates?: number;
  readonly debounceAfterMs?: number;
  /** HTTP/2 window of each client in bytes (0: grpc-js's 64 KiB); default 256 MiB, as Envoy. */
  readonly clientFlowControlWindow?: number;
  /** PILOT_PUSH_THROTTLE for the server. */
  readonly concurrentSends?: number;
  readonly log?: (line: string) => void;
}

export interface XdsBenchResult {
  readonly services: number;
  readonly endpointsPerService: number;
  readonly clients: number;
  /** From the clients starting to every client holding CDS, LDS, RDS and all EDS. */
  readonly initialSyncMs: number;
  /** CPU time the control plane's process spent from fork to the initial sync (user + system). */
  readonly initialSyncServerCpuMs: number;
  /** A service added: from the push request to every client holding the new CDS (includes the debounce). */
  readonly fullPushMs: number;
  /** The server's own push loop time for that push (generation + encoding + writes). */
  readonly fullPushServerMs: number;
  readonly controlPlaneRssMb: number;
  /** The control plane process's peak RSS over the whole run (getrusage maxrss). */
  readonly controlPlanePeakRssMb: number;
  readonly controlPlaneHeapMb: number;
  readonly edsLatencyP50Ms: number;
  readonly edsLatencyP99Ms: number;
  readonly edsSamples: number;
  /** The debounce quiet period: no EDS update can arrive sooner. */
  readonly debounceFloorMs: number;
}

const now = () => performance.timeOrigin + performance.now();

export function buildView(services: number, perCluster: number, extra = 0): StaticServiceView {
  const inputs = [];
  for (let i = 0; i < services + extra; i++) {
    const hostname = `svc-${i}.bench-${i % 20}.svc.cluster.local`;
    const service: MeshService = {
      hostname,
      name: `svc-${i}`,
      namespace: `bench-${i % 20}`,
      ports: [{ name: "http", port: 80, protocol: "HTTP" }],
      clusterVips: new Map([
        ["cluster1", `10.201.${i >> 8}.${i & 255}`],
        ["cluster2", `10.202.${i >> 8}.${i & 255}`],
      ]),
      serviceAccounts: [`spiffe://cluster.local/ns/bench-${i % 20}/sa/svc-${i}`],
      clusterLocal: false,
    };
    const endpoints: MeshEndpoint[] = [];
    for (const [c, clusterId] of ["cluster1", "cluster2"].entries()) {
      for (let e = 0; e < perCluster; e++) {
        const n = i * perCluster + e;
        endpoints.push({
          address: `10.${208 + c}.${(n >> 8) & 255}.${n & 255}`,
          port: 8080,
          servicePortName: "http",
          clusterId,
          network: "network1",
          locality: { region: "", zone: "", subZone: "" },
          labels: { app: `svc-${i}`, version: "v1" },
          serviceAccount: service.serviceAccounts[0] ?? "",
          tlsMode: "istio",
          workloadName: `svc-${i}`,
          namespace: service.namespace,
          podName: `svc-${i}-${c}-${e}`,
          nodeName: `${clusterId}-node`,
          ready: true,
          terminating: false,
        });
      }
    }
    inputs.push({ service, endpoints });
  }
  return new StaticServiceView(inputs);
}

type ChildMsg =
  | { kind: "started"; at: number }
  | { kind: "synced"; at: number }
  | { kind: "cds"; at: number; size: number }
  | { kind: "eds"; at: number; names: readonly string[] };

/** Child process body: N clients that follow CDS with EDS subscriptions, as Envoy does, and report arrivals. */
async function runClients(target: string, count: number, flowControlWindow: number): Promise<void> {
  const send = (m: ChildMsg) => process.send?.(m);
  const clients: XdsClient[] = [];
  send({ kind: "started", at: now() });
  for (let i = 0; i < count; i++) {
    const c = new XdsClient({
      target,
      node: {
        id: `sidecar~10.215.${i >> 8}.${i & 255}~bench-client-${i}.bench-0~bench-0.svc.cluster.local`,
        metadata: { CLUSTER_ID: "cluster1", NAMESPACE: "bench-0" },
      },
      // One channel per client, as separate proxies would have. HTTP/2 windows as Envoy's defaults
      // (256 MiB per stream and connection) unless the bench says otherwise: with grpc-js's 64 KiB a
      // 3 MB EDS response needs ~50 window updates from a client process busy with 499 others.
      channelOptions: {
        "grpc.use_local_subchannel_pool": 1,
        "grpc.max_receive_message_length": -1,
        ...(flowControlWindow > 0 ? { "grpc-node.flow_control_window": flowControlWindow } : {}),
      },
    });
    let synced = false;
    c.on("update", (u) => {
      if (u.typeUrl === TypeUrl.Cluster) {
        c.subscribe(
          TypeUrl.ClusterLoadAssignment,
          [...u.resources.keys()].filter((n) => n.startsWith("outbound|")),
        );
        send({ kind: "cds", at: now(), size: u.resources.size });
      } else if (u.typeUrl === TypeUrl.ClusterLoadAssignment && synced) {
        send({ kind: "eds", at: now(), names: u.changed });
      }
      if (
        !synced &&
        c.version(TypeUrl.Listener) !== "" &&
        c.version(TypeUrl.RouteConfiguration) !== "" &&
        c.resources(TypeUrl.ClusterLoadAssignment).size > 0 &&
        c.resources(TypeUrl.ClusterLoadAssignment).size ===
          [...c.resources(TypeUrl.Cluster).keys()].filter((n) => n.startsWith("outbound|")).length
      ) {
        synced = true;
        send({ kind: "synced", at: now() });
      }
    });
    c.subscribe(TypeUrl.Cluster);
    c.subscribe(TypeUrl.Listener);
    c.subscribe(TypeUrl.RouteConfiguration, ["80"]);
    c.start();
    clients.push(c);
  }
  process.on("disconnect", () => {
    for (const c of clients) c.close();
    process.exit(0);
  });
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
}

/** Runs the benchmark and returns its figures (the lead's `npm run bench` prints them). */
export async function runXdsBench(opts: XdsBenchOptions = {}): Promise<XdsBenchResult> {
  const services = opts.services ?? 1000;
  const perCluster = opts.endpointsPerCluster ?? 10;
  const clients = opts.clients ?? 500;
  const edsUpdates = opts.edsUpdates ?? 20;
  const debounceAfterMs = opts.debounceAfterMs ?? 100;
  const log = opts.log ?? (() => {});
  const state = { view: buildView(services, perCluster) };
  const server = new XdsServer({
    view: () => state.view,
    clusterId: "cluster1",
    debounceAfterMs,
    ...(opts.concurrentSends !== undefined ? { concurrentSends: opts.concurrentSends } : {}),
  });
  const port = await server.listen({ host: "127.0.0.1", port: 0 });
  let child: ChildProcess | undefined;
  try {
    const listeners = new Set<(m: ChildMsg) => void>();
    const started = now();
    child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        ISTHMUS_XDS_BENCH_CLIENTS: `127.0.0.1:${port}`,
        ISTHMUS_XDS_BENCH_COUNT: String(clients),
        ISTHMUS_XDS_BENCH_WINDOW: String(opts.clientFlowControlWindow ?? 256 << 20),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.on("message", (m) => {
      for (const l of listeners) l(m as ChildMsg);
    });
    const collect = (count: number, pred: (m: ChildMsg) => boolean, timeoutMs: number): Promise<ChildMsg[]> =>
      new Promise((resolve, reject) => {
        const got: ChildMsg[] = [];
        const timer = setTimeout(() => {
          listeners.delete(l);
          reject(new Error(`xDS bench: only ${got.length} of ${count} client reports within ${timeoutMs} ms`));
        }, timeoutMs);
        const l = (m: ChildMsg) => {
          if (!pred(m)) return;
          got.push(m);
          if (got.length === count) {
            clearTimeout(timer);
            listeners.delete(l);
            resolve(got);
          }
        };
        listeners.add(l);
      });

    const startedMsg = collect(1, (m) => m.kind === "started", 120_000);
    const cpuAtStart = process.cpuUsage();
    // Generous: on a busy 2-core machine 500 clients can take many minutes to sync.
    const slow = 120_000 + clients * 4000;
    const syncedMsgs = collect(clients, (m) => m.kind === "synced", slow);
    const clientsStartedAt = (await startedMsg)[0]?.at ?? started;
    const synced = await syncedMsgs;
    // Measured from the child's first client, not from fork: loading the child is not the server's work.
    const initialSyncMs = Math.max(...synced.map((m) => m.at)) - clientsStartedAt;
    const syncCpu = process.cpuUsage(cpuAtStart);
    const initialSyncServerCpuMs = (syncCpu.user + syncCpu.system) / 1000;
    log(
      `xds bench: ${clients} clients synced in ${initialSyncMs.toFixed(0)} ms; responses ${JSON.stringify(server.metrics.snapshot().pushesByType)}`,
    );
    await server.idle();
    global.gc?.();
    const mem = process.memoryUsage();

    // Full push: one service added, every client gets a new CDS.
    const fullDone = collect(clients, (m) => m.kind === "cds" && m.size > services, slow);
    // Clients follow the new CDS with an EDS subscription that includes the new service; a fast
    // client's EDS can arrive before a slow one's CDS, so listen for it from now on.
    const newCluster = `outbound|80||svc-${services}.bench-${services % 20}.svc.cluster.local`;
    const caughtUp = collect(clients, (m) => m.kind === "eds" && m.names.includes(newCluster), slow);
    state.view = buildView(services, perCluster, 1);
    const fullAt = now();
    server.pushRequest({ full: true, reason: "bench: service added" });
    const full = await fullDone;
    const fullPushMs = Math.max(...full.map((m) => m.at)) - fullAt;
    await server.idle();
    const fullPushServerMs = server.metrics.snapshot().pushTimeLastMs;
    log(
      `xds bench: full push reached all clients in ${fullPushMs.toFixed(0)} ms (server loop ${fullPushServerMs.toFixed(0)} ms)`,
    );
    // Every client holds the new service's EDS before EDS timing starts, so it does not queue behind that catch-up.
    await caughtUp;
    await server.idle();

    // EDS: one endpoint of one service in cluster2 turns not ready, then ready again.
    const samples: number[] = [];
    for (let k = 0; k < edsUpdates; k++) {
      const i = (k * 37) % services;
      const host = `svc-${i}.bench-${i % 20}.svc.cluster.local`;
      const cluster = `outbound|80||${host}`;
      const base = state.view;
      const svc = base.service(host);
      const eps = [...base.endpoints(host, "http").values()].flat();
      if (svc === undefined) throw new Error(`bench: ${host} missing`);
      const flipped = eps.map((e, j) => (j === eps.length - 1 ? { ...e, ready: !e.ready } : e));
      const arrivals = collect(clients, (m) => m.kind === "eds" && m.names.includes(cluster), slow);
      state.view = base.withEndpoints(host, flipped);
      const at = now();
      server.pushRequest({ full: false, edsHostnames: new Set([host]), reason: "bench: endpoint readiness" });
      for (const m of await arrivals) samples.push(m.at - at);
      await server.idle();
    }
    const result: XdsBenchResult = {
      services,
      endpointsPerService: perCluster * 2,
      clients,
      initialSyncMs: Math.round(initialSyncMs),
      initialSyncServerCpuMs: Math.round(initialSyncServerCpuMs),
      fullPushMs: Math.round(fullPushMs),
      fullPushServerMs: Math.round(fullPushServerMs),
      controlPlaneRssMb: Math.round(mem.rss / 1048576),
      controlPlanePeakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      controlPlaneHeapMb: Math.round(mem.heapUsed / 1048576),
      edsLatencyP50Ms: Math.round(quantile(samples, 0.5) * 10) / 10,
      edsLatencyP99Ms: Math.round(quantile(samples, 0.99) * 10) / 10,
      edsSamples: samples.length,
      debounceFloorMs: debounceAfterMs,
    };
    log(`xds bench: ${JSON.stringify(result)}`);
    return result;
  } finally {
    child?.disconnect();
    child?.kill();
    await server.close(500);
  }
}

const clientTarget = process.env.ISTHMUS_XDS_BENCH_CLIENTS;
if (clientTarget !== undefined && process.send !== undefined) {
  await runClients(
    clientTarget,
    Number(process.env.ISTHMUS_XDS_BENCH_COUNT ?? "1"),
    Number(process.env.ISTHMUS_XDS_BENCH_WINDOW ?? "0"),
  );
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Run directly: `node --import tsx bench/xds.ts [services] [clients]`.
  const [services, clients] = process.argv.slice(2).map(Number);
  const r = await runXdsBench({
    ...(services ? { services } : {}),
    ...(clients ? { clients } : {}),
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify(r, null, 2));
}
