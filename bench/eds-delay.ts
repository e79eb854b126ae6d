/**
 * Cross-cluster EDS delay (issue 4): from a pod turning Ready in cluster2 to the EDS update that
 * lists it reaching an xDS client of cluster1's control plane. Real parts end to end: two local
 * clusters (`isthmus cluster create`, one daemon each, real pods in network namespaces), the
 * guide's remote secret, cluster1's control plane run here with --kubeconfig (as outside any
 * cluster, like test/control-plane.test.ts), and Isthmus's xDS client subscribed to it.
 *
 * One pod in cluster2 has an exec readiness probe on a flag file; the bench creates and removes
 * the file. Each sample runs from the moment the pod's Ready=True status reaches the bench's own
 * watch on cluster2 to the ClusterLoadAssignment holding the pod's IP at the client. In between:
 * cluster2's EndpointSlice controller, the control plane's informer on cluster2, the debounce
 * (PILOT_DEBOUNCE_AFTER, 100 ms: the floor, no update can come sooner), the push and the client.
 * The probe period (1 s) is before the start of each sample, so it is not part of the figure.
 *
 * Run alone (as root, under the e2e lock): `node --import tsx bench/eds-delay.ts [samples]`.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { envFrom, silentLogger, waitFor } from "../src/base/index.js";
import { ControlPlane, defaultXdsBackend } from "../src/discovery/index.js";
import { ClusterLoadAssignmentSchema } from "../src/gen/envoy/config/endpoint/v3/endpoint_pb.js";
import { KubeClient, type KubeObject, loadKubeConfig, ResourceTypes } from "../src/kube/index.js";
import { TypeUrl, XdsClient } from "../src/xds/index.js";

export interface EdsDelayOptions {
  readonly samples?: number;
  readonly debounceAfterMs?: number;
  readonly log?: (line: string) => void;
}

export interface EdsDelayResult {
  readonly samples: number;
  /** Pod Ready in cluster2 → the ClusterLoadAssignment with its IP at cluster1's client. */
  readonly readyToEdsP50Ms: number;
  readonly readyToEdsP99Ms: number;
  readonly readyToEdsMinMs: number;
  /** The reverse: pod NotReady in cluster2 → its IP gone from the client's ClusterLoadAssignment. */
  readonly notReadyToEdsP50Ms: number;
  readonly notReadyToEdsP99Ms: number;
  /** PILOT_DEBOUNCE_AFTER: the control plane waits this long after the last event, so no sample can be shorter. */
  readonly debounceFloorMs: number;
  /** Two `isthmus cluster create`, the pods and the control plane's first sync: set-up, not part of the figure. */
  readonly setupMs: number;
}

const repo = fileURLToPath(new URL("..", import.meta.url));
const host = "flip.bench.svc.cluster.local";
const edsName = `outbound|80||${host}`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { env, cwd: repo, maxBuffer: 16 << 20, timeout: 300_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr || err.message}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** The Service in both clusters; in cluster2 also one pod whose readiness follows `flag`. */
function manifest(withPod: boolean, flag: string): string {
  const base = `
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: v1
kind: Service
metadata: {name: flip, namespace: bench}
spec:
  selector: {app: flip}
  ports: [{name: http, port: 80, targetPort: 8080}]
`;
  if (!withPod) return base;
  return `${base}---
apiVersion: v1
kind: Pod
metadata: {name: flip, namespace: bench, labels: {app: flip}}
spec:
  containers:
  - name: flip
    # No container engine: the curl image runs its command with the host's tools.
    image: curlimages/curl
    command: ["sleep", "100000"]
    ports: [{containerPort: 8080}]
    readinessProbe:
      exec: {command: ["test", "-e", "${flag}"]}
      periodSeconds: 1
      failureThreshold: 1
      successThreshold: 1
`;
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? 0;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

function podReady(pod: KubeObject): { ready: boolean; ip: string } {
  const status = (pod as KubeObject & { readonly status?: unknown }).status as
    | { podIP?: string; conditions?: readonly { type: string; status: string }[] }
    | undefined;
  return {
    ready: (status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
    ip: status?.podIP ?? "",
  };
}

function claAddresses(client: XdsClient): Set<string> {
  const any = client.resources(TypeUrl.ClusterLoadAssignment).get(edsName);
  const cla = any === undefined ? undefined : anyUnpack(any, ClusterLoadAssignmentSchema);
  const out = new Set<string>();
  for (const l of cla?.endpoints ?? [])
    for (const e of l.lbEndpoints)
      if (e.hostIdentifier.case === "endpoint" && e.hostIdentifier.value.address?.address.case === "socketAddress")
        out.add(e.hostIdentifier.value.address.address.value.address);
  return out;
}

/** Runs the benchmark on two fresh local clusters and deletes them afterwards. */
export async function runEdsDelayBench(opts: EdsDelayOptions = {}): Promise<EdsDelayResult> {
  const samples = opts.samples ?? 20;
  const debounceAfterMs = opts.debounceAfterMs ?? 100;
  const log = opts.log ?? (() => {});
  const home = await mkdtemp(join(tmpdir(), "isthmus-eds-delay-"));
  const flag = join(home, "flip-ready");
  const kubeconfig = (name: string) => join(home, `kubeconfig-${name}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ISTHMUS_HOME: home,
    KUBECONFIG: [kubeconfig("cluster1"), kubeconfig("cluster2")].join(":"),
  };
  const closers: (() => Promise<unknown> | unknown)[] = [() => rm(home, { recursive: true, force: true })];
  const isthmus = (args: string[]) => run(process.execPath, [join(repo, "bin/isthmus"), ...args], env);
  const kubectl = (ctx: string, args: string[], input?: string) =>
    run("kubectl", ["--context", ctx, ...args], env, input);
  const stop = new AbortController();
  closers.push(() => stop.abort());
  let cleaned: Promise<void> | undefined;
  const cleanUp = () => {
    cleaned ??= (async () => {
      for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => {});
    })();
    return cleaned;
  };
  // Stopped from outside (a time limit): the two clusters' daemons and namespaces must still go.
  const onSignal = () => void cleanUp().finally(() => process.exit(143));
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const t0 = performance.now();
  try {
    await Promise.all(
      ["cluster1", "cluster2"].map(async (name) => {
        closers.push(() => isthmus(["cluster", "delete", name, "--kubeconfig", kubeconfig(name)]));
        await isthmus(["cluster", "create", name, "--network", "network1", "--kubeconfig", kubeconfig(name)]);
        await kubectl(name, ["apply", "-f", "-"], manifest(name === "cluster2", flag));
      }),
    );
    await kubectl("cluster1", ["create", "namespace", "istio-system"]);
    await kubectl(
      "cluster1",
      ["apply", "-f", "-"],
      await isthmus(["x", "create-remote-secret", "--context=cluster2", "--name=cluster2"]),
    );
    log("eds-delay: clusters up, remote secret applied");

    const cp = new ControlPlane({
      env: {
        clusterId: "cluster1",
        namespace: "istio-system",
        podName: "istiod-bench",
        remoteClusterTimeoutMs: 30_000,
        insecureKubeconfigOptions: new Set(),
        network: "network1",
        debounceAfterMs,
        debounceMaxMs: 10_000,
      },
      kubeConfig: loadKubeConfig({ env: envFrom({}), kubeconfigPath: kubeconfig("cluster1"), context: "cluster1" }),
      log: silentLogger,
      monitoringAddr: "127.0.0.1:0",
      grpcAddr: "127.0.0.1:0",
      secureGrpcAddr: "",
      xds: defaultXdsBackend,
      ca: false,
    });
    closers.push(() => cp.close(200));
    await cp.start();
    await cp.whenServing();
    await cp.whenReady();

    const client = new XdsClient({
      target: `127.0.0.1:${cp.ports.grpc}`,
      node: {
        id: "sidecar~10.200.0.251~bench-client.bench~bench.svc.cluster.local",
        metadata: { CLUSTER_ID: "cluster1", NAMESPACE: "bench", NETWORK: "network1" },
      },
    });
    closers.push(() => client.close());
    client.subscribe(TypeUrl.Cluster);
    client.subscribe(TypeUrl.ClusterLoadAssignment, [edsName]);
    client.start();

    // The bench's own watch on cluster2's pod: when Ready=True (or False) arrives here, the sample starts.
    const kube2 = new KubeClient(
      loadKubeConfig({ env: envFrom({}), kubeconfigPath: kubeconfig("cluster2"), context: "cluster2" }),
    );
    const podEvents: ((pod: KubeObject, at: number) => void)[] = [];
    // Set-up only: wait for the pod to run (it has an IP, and is not Ready: the flag is absent).
    await waitFor(
      "pod flip in cluster2 to run",
      async () => {
        const pod = await kube2.get(ResourceTypes.pods, "bench", "flip", stop.signal);
        return pod !== undefined && podReady(pod).ip !== "" && !podReady(pod).ready;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const initial = await kube2.list(
      ResourceTypes.pods,
      { namespace: "bench", labelSelector: "app=flip" },
      stop.signal,
    );
    void (async () => {
      try {
        for await (const ev of kube2.watch(
          ResourceTypes.pods,
          { namespace: "bench", labelSelector: "app=flip", resourceVersion: initial.resourceVersion },
          stop.signal,
        )) {
          const at = performance.now();
          if (ev.type === "ADDED" || ev.type === "MODIFIED") for (const l of podEvents) l(ev.object, at);
        }
      } catch (err) {
        if (!stop.signal.aborted) log(`eds-delay: pod watch ended: ${String(err)}`);
      }
    })();

    let ip = initial.items.map((p) => podReady(p).ip).find((a) => a !== "") ?? "";
    /** Resolves with the time the pod's readiness reached `want` at the bench's watch. */
    const podTurns = (want: boolean, timeoutMs: number) =>
      new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          podEvents.splice(podEvents.indexOf(l), 1);
          reject(
            new Error(`eds-delay: pod flip in cluster2 did not turn ${want ? "Ready" : "NotReady"} in ${timeoutMs} ms`),
          );
        }, timeoutMs);
        const l = (pod: KubeObject, at: number) => {
          const r = podReady(pod);
          if (r.ip !== "") ip = r.ip;
          if (r.ready !== want) return;
          clearTimeout(timer);
          podEvents.splice(podEvents.indexOf(l), 1);
          resolve(at);
        };
        podEvents.push(l);
      });
    /** Resolves with the time the client's ClusterLoadAssignment first holds (or lacks) the pod's IP. */
    const edsShows = (want: boolean, timeoutMs: number) =>
      new Promise<number>((resolve, reject) => {
        const check = () => ip !== "" && claAddresses(client).has(ip) === want;
        const timer = setTimeout(() => {
          client.off("update", onUpdate);
          reject(new Error(`eds-delay: the client's EDS did not ${want ? "gain" : "lose"} ${ip} in ${timeoutMs} ms`));
        }, timeoutMs);
        const onUpdate = () => {
          if (!check()) return;
          clearTimeout(timer);
          client.off("update", onUpdate);
          resolve(performance.now());
        };
        client.on("update", onUpdate);
      });

    const setupMs = performance.now() - t0;
    log(`eds-delay: set up in ${Math.round(setupMs)} ms; pod IP ${ip}`);
    const up: number[] = [];
    const down: number[] = [];
    for (let k = 0; k < samples; k++) {
      const ready = podTurns(true, 30_000);
      const shown = edsShows(true, 30_000);
      await writeFile(flag, "");
      const readyAt = await ready;
      up.push((await shown) - readyAt);
      const notReady = podTurns(false, 30_000);
      const gone = edsShows(false, 30_000);
      await unlink(flag);
      const notReadyAt = await notReady;
      down.push((await gone) - notReadyAt);
      log(
        `eds-delay: sample ${k + 1}: Ready→EDS ${up.at(-1)?.toFixed(1)} ms, NotReady→EDS ${down.at(-1)?.toFixed(1)} ms`,
      );
    }
    return {
      samples,
      readyToEdsP50Ms: round1(quantile(up, 0.5)),
      readyToEdsP99Ms: round1(quantile(up, 0.99)),
      readyToEdsMinMs: round1(Math.min(...up)),
      notReadyToEdsP50Ms: round1(quantile(down, 0.5)),
      notReadyToEdsP99Ms: round1(quantile(down, 0.99)),
      debounceFloorMs: debounceAfterMs,
      setupMs: Math.round(setupMs),
    };
  } finally {
    await cleanUp();
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const samples = Number(process.argv[2] ?? "20");
  const r = await runEdsDelayBench({ samples, log: (l) => console.error(l) });
  console.log(JSON.stringify(r, null, 2));
}
