/**
 * Controller benchmark: a 100-replica Deployment behind a Service, in-process against the
 * memory-only LocalApi with the controllers running and no node; the bench plays the node by
 * giving each pod an IP and a Ready condition as soon as it appears. Measures the time to 100
 * pods created, to Deployment availableReplicas = 100, and to 100 ready EndpointSlice endpoints.
 * Run alone with `node --import tsx bench/controllers.ts`.
 */
import { generateKeyPairSync } from "node:crypto";
import { performance } from "node:perf_hooks";
import { silentLogger } from "../src/base/index.js";
import { type KubeObject, Resources, type WatchEvent } from "../src/devcluster/api/types.js";
import { LocalApi } from "../src/devcluster/apiserver/index.js";
import { ServiceAccountTokens } from "../src/devcluster/auth/tokens.js";
import { startControllers } from "../src/devcluster/controllers/index.js";

/** One measured figure. */
export interface BenchFigure {
  name: string;
  value: number;
  unit: "ms";
}

const replicas = 100;
const namespace = "bench";

/** Runs the benchmark once and returns its figures (milliseconds from the Deployment's create). */
export async function runControllersBench(): Promise<BenchFigure[]> {
  const api = new LocalApi({ serviceCidr: "10.201.251.0/24", clusterName: "bench", log: silentLogger });
  await api.start();
  const client = api.client();
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const tokens = new ServiceAccountTokens({
    signingKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    client,
  });
  const ac = new AbortController();
  const running = await startControllers({
    client,
    clusterName: "bench",
    rootCaPem: "-----BEGIN CERTIFICATE-----\nbench\n-----END CERTIFICATE-----\n",
    tokens,
    log: silentLogger,
    signal: ac.signal,
    discovery: () => api.resources.all(),
  });
  try {
    await client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
    await client.create(Resources.services, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace },
      spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
    });

    let podsCreatedAt = 0;
    let availableAt = 0;
    let endpointsReadyAt = 0;
    let created = 0;
    let nextIp = 0;
    const started = performance.now();

    const markReady = (ev: WatchEvent, ip: string) =>
      client.patch(
        Resources.pods,
        namespace,
        ev.object.metadata.name ?? "",
        "application/merge-patch+json",
        {
          status: {
            phase: "Running",
            podIP: ip,
            podIPs: [{ ip }],
            conditions: [{ type: "Ready", status: "True", lastTransitionTime: new Date().toISOString() }],
          },
        },
        { subresource: "status" },
      );
    const watchPods = (async () => {
      const pending: Promise<unknown>[] = [];
      for await (const ev of client.watch(
        Resources.pods,
        { namespace, resourceVersion: api.resourceVersion },
        ac.signal,
      )) {
        if (ev.type !== "ADDED") continue;
        created++;
        if (created === replicas) podsCreatedAt = performance.now();
        const ip = `10.200.${Math.floor(nextIp / 250)}.${(nextIp % 250) + 2}`;
        nextIp++;
        pending.push(markReady(ev, ip));
        if (created === replicas) break;
      }
      await Promise.all(pending);
    })();
    const watchDeployment = (async () => {
      for await (const ev of client.watch(
        Resources.deployments,
        { namespace, resourceVersion: api.resourceVersion },
        ac.signal,
      )) {
        const status = ev.object.status as { availableReplicas?: number } | undefined;
        if (status?.availableReplicas === replicas) {
          availableAt = performance.now();
          break;
        }
      }
    })();
    const watchSlices = (async () => {
      const slices = new Map<string, KubeObject>();
      for await (const ev of client.watch(
        Resources.endpointslices,
        { namespace, resourceVersion: api.resourceVersion },
        ac.signal,
      )) {
        if (ev.type === "DELETED") slices.delete(ev.object.metadata.uid ?? "");
        else slices.set(ev.object.metadata.uid ?? "", ev.object);
        let ready = 0;
        for (const s of slices.values()) {
          for (const e of (s.endpoints as { conditions?: { ready?: boolean } }[] | undefined) ?? [])
            if (e.conditions?.ready) ready++;
        }
        if (ready === replicas) {
          endpointsReadyAt = performance.now();
          break;
        }
      }
    })();

    await client.create(Resources.deployments, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace },
      spec: {
        replicas,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            containers: [
              {
                name: "web",
                image: "docker.io/istio/examples-helloworld-v1:1.0",
                ports: [{ name: "http", containerPort: 5000 }],
              },
            ],
          },
        },
      },
    });
    const deadline = setTimeout(() => ac.abort(new Error("controllers bench did not finish within 120 s")), 120_000);
    try {
      await Promise.all([watchPods, watchDeployment, watchSlices]);
    } finally {
      clearTimeout(deadline);
    }
    if (ac.signal.aborted) throw ac.signal.reason;
    const r = (v: number) => Math.round((v - started) * 10) / 10;
    return [
      {
        name: "controllers: 100-replica Deployment to 100 pods created (memory store)",
        value: r(podsCreatedAt),
        unit: "ms",
      },
      {
        name: "controllers: 100-replica Deployment to 100 available (pods marked Ready by the bench)",
        value: r(availableAt),
        unit: "ms",
      },
      {
        name: "controllers: 100-replica Deployment to 100 ready EndpointSlice endpoints",
        value: r(endpointsReadyAt),
        unit: "ms",
      },
    ];
  } finally {
    ac.abort();
    await running.done;
    await api.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await runControllersBench()) console.log(`${f.name}: ${f.value} ${f.unit}`);
}
