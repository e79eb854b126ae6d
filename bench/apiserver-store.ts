/**
 * Object-store benchmark: create throughput (memory only, and durable with fdatasync group
 * commit), the latency of listing 10,000 objects, and the delay from a write to its watch event
 * with 100 watchers open. Run alone with `node --import tsx bench/apiserver-store.ts`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import { silentLogger } from "../src/base/index.js";
import { type KubeObject, Resources } from "../src/devcluster/api/types.js";
import { LocalApi } from "../src/devcluster/apiserver/index.js";

const cm = (name: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "bench", labels: { app: "bench", n: name } },
  data: { key: "x".repeat(200) },
});

async function newApi(stateDir?: string): Promise<LocalApi> {
  const api = new LocalApi({
    serviceCidr: "10.201.252.0/24",
    clusterName: "bench",
    log: silentLogger,
    ...(stateDir ? { stateDir } : {}),
  });
  await api.start();
  await api.client().create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } });
  return api;
}

/** Creates `n` objects with `concurrency` requests in flight; returns creates per second. */
async function createRate(api: LocalApi, n: number, concurrency: number, prefix: string): Promise<number> {
  const c = api.client();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await c.create(Resources.configmaps, cm(`${prefix}-${i}`));
      }
    }),
  );
  return Math.round((n / (performance.now() - t0)) * 1000);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

/** Runs every measurement once; keys name the figure and its unit. */
export async function runStoreBench(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};

  const mem = await newApi();
  out.create_per_s_memory_seq = await createRate(mem, 5000, 1, "seq");
  out.create_per_s_memory_c50 = await createRate(mem, 5000, 50, "par");
  await mem.close();

  const dir = mkdtempSync(join(tmpdir(), "isthmus-bench-"));
  try {
    const disk = await newApi(dir);
    out.create_per_s_durable_seq = await createRate(disk, 500, 1, "seq");
    out.create_per_s_durable_c50 = await createRate(disk, 5000, 50, "par");
    await disk.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const big = await newApi();
  await createRate(big, 10_000, 50, "item");
  await big.client().list(Resources.configmaps, { namespace: "bench" }); // warm-up: key index and JIT
  const lists: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const l = await big.client().list(Resources.configmaps, { namespace: "bench" });
    lists.push(performance.now() - t0);
    if (l.items.length !== 10_000) throw new Error(`listed ${l.items.length} objects, expected 10000`);
  }
  out.list_10000_ms_p50 = Math.round(percentile(lists, 50) * 10) / 10;
  const t0 = performance.now();
  await big.client().list(Resources.configmaps, { namespace: "bench", labelSelector: "n=item-5000" });
  out.list_10000_selector_ms = Math.round((performance.now() - t0) * 10) / 10;
  const jsons: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t1 = performance.now();
    await big.client().listJson(Resources.configmaps, { namespace: "bench" });
    jsons.push(performance.now() - t1);
  }
  out.list_json_10000_ms_p50 = Math.round(percentile(jsons, 50) * 10) / 10;
  await big.close();

  const w = await newApi();
  const ac = new AbortController();
  setMaxListeners(0, ac.signal);
  const sent = new Map<string, number>();
  const delays: number[] = [];
  const writes = 500;
  const watchers = 100;
  const readers = Array.from({ length: watchers }, async () => {
    let seen = 0;
    for await (const ev of w
      .client()
      .watch(Resources.configmaps, { namespace: "bench", resourceVersion: w.resourceVersion }, ac.signal)) {
      const at = sent.get(ev.object.metadata.name ?? "");
      if (at !== undefined) delays.push(performance.now() - at);
      if (++seen >= writes) return;
    }
  });
  const c = w.client();
  for (let i = 0; i < writes; i++) {
    const name = `w-${i}`;
    sent.set(name, performance.now());
    await c.create(Resources.configmaps, cm(name));
  }
  await Promise.all(readers);
  ac.abort();
  await w.close();
  out.event_delay_ms_p50_100_watchers = Math.round(percentile(delays, 50) * 100) / 100;
  out.event_delay_ms_p99_100_watchers = Math.round(percentile(delays, 99) * 100) / 100;
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await runStoreBench();
  for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(36)} ${v}`);
}
