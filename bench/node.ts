/**
 * Node benchmarks on a real network (root): an in-process cluster (API, auth, controllers,
 * service proxy, DNS, node) and the time from a pod's create to Running/Ready, and from a
 * 100-replica Deployment's create to 100 ready EndpointSlice endpoints. Each pod is a real
 * process in its own network namespace.
 * Run alone with `node --import tsx bench/node.ts`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { waitFor } from "../src/base/index.js";
import { type KubeObject, Resources } from "../src/devcluster/api/types.js";
import { type HarnessCluster, startHarnessCluster } from "../src/devcluster/node/harness.js";

/** One measured figure. */
export interface BenchFigure {
  name: string;
  value: number;
  unit: "ms";
}

const conditionTrue = (p: KubeObject, type: string) =>
  ((p.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some(
    (c) => c.type === type && c.status === "True",
  );

async function withCluster<T>(name: string, fn: (c: HarnessCluster) => Promise<T>): Promise<T> {
  const home = mkdtempSync(join(tmpdir(), "isth-bench-"));
  const c = await startHarnessCluster({ home, name, network: `bench-${process.pid}` });
  try {
    await c.client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
    return await fn(c);
  } finally {
    await c.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Pod create → Running (process started, IP assigned) and → Ready (helloworld answering its
 * readiness probe), for one helloworld pod.
 */
export async function runPodStartupBench(): Promise<BenchFigure[]> {
  return withCluster("bench-pod", async (c) => {
    const t0 = performance.now();
    await c.client.create(Resources.pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "hello", namespace: "bench" },
      spec: {
        containers: [
          {
            name: "helloworld",
            image: "docker.io/istio/examples-helloworld-v1",
            readinessProbe: { httpGet: { path: "/health", port: 5000 }, periodSeconds: 1 },
          },
        ],
      },
    });
    let running = 0;
    await waitFor(
      "the pod to be ready",
      async () => {
        const p = await c.client.get(Resources.pods, "bench", "hello");
        if (!running && (p.status as { phase?: string } | undefined)?.phase === "Running")
          running = performance.now() - t0;
        return conditionTrue(p, "Ready");
      },
      { timeoutMs: 60_000, intervalMs: 10 },
    );
    const ready = performance.now() - t0;
    return [
      { name: "pod create to Running", value: Math.round(running), unit: "ms" },
      { name: "pod create to Ready (helloworld)", value: Math.round(ready), unit: "ms" },
    ];
  });
}

/**
 * A 100-replica Deployment (curl image running `sleep infinity`: a process per pod, so the
 * figure measures the node and controllers, not an application's start) behind a Service:
 * create → 100 pods Running → 100 ready endpoints.
 */
export async function runDeploymentBench(replicas = 100): Promise<BenchFigure[]> {
  return withCluster("bench-deploy", async (c) => {
    const labels = { app: "many" };
    const t0 = performance.now();
    await c.client.create(Resources.services, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "many", namespace: "bench" },
      spec: { selector: labels, ports: [{ name: "http", port: 80 }] },
    });
    await c.client.create(Resources.deployments, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "many", namespace: "bench" },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: 0,
            containers: [{ name: "sleep", image: "curlimages/curl", command: ["/bin/sleep", "infinity"] }],
          },
        },
      },
    });
    let running = 0;
    await waitFor(
      `${replicas} ready endpoints`,
      async () => {
        if (!running) {
          const pods = await c.client.list(Resources.pods, { namespace: "bench" });
          const n = pods.items.filter((p) => (p.status as { phase?: string } | undefined)?.phase === "Running").length;
          if (n >= replicas) running = performance.now() - t0;
        }
        const slices = await c.client.list(Resources.endpointslices, { namespace: "bench" });
        let ready = 0;
        for (const s of slices.items) {
          for (const e of (s.endpoints ?? []) as { conditions?: { ready?: boolean } }[])
            if (e.conditions?.ready) ready++;
        }
        return ready >= replicas;
      },
      { timeoutMs: 300_000, intervalMs: 50 },
    );
    const ready = performance.now() - t0;
    return [
      { name: `${replicas}-replica Deployment to all pods Running`, value: Math.round(running || ready), unit: "ms" },
      { name: `${replicas}-replica Deployment to all endpoints ready`, value: Math.round(ready), unit: "ms" },
    ];
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of [...(await runPodStartupBench()), ...(await runDeploymentBench())]) {
    console.log(`${f.name}: ${f.value} ${f.unit}`);
  }
}
