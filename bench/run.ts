/**
 * `npm run bench [-- --only store,controllers,xds,eds,node,sidecar,guide]`: runs the benchmarks,
 * keeps every figure with the command, machine and date that made it in bench/results.json,
 * and writes BENCHMARKS.md from that file (a partial run keeps the other sections' last figures).
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";

interface Figure {
  name: string;
  value: number | string;
  unit: string;
}
interface Section {
  title: string;
  command: string;
  date: string;
  machine: string;
  figures: Figure[];
  table?: string;
  anchor: string;
  notes: string;
}
type Results = Record<string, Section>;

const root = join(import.meta.dirname, "..");
// Asynchronous on purpose: a blocked event loop cannot release the machine-wide allocation lock
// a child `isthmus cluster` command may be waiting for.
const run = promisify(execFile);
const resultsPath = join(root, "bench", "results.json");

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.type()} ${os.release()}; load average at start ${load}`;
}

const sections: Record<string, () => Promise<Omit<Section, "date" | "machine">>> = {
  async store() {
    const { runStoreBench } = await import("./apiserver-store.js");
    const r = await runStoreBench();
    const unit = (k: string) => (k.includes("per_s") ? "objects/s" : "ms");
    return {
      title: "Local API server: object store",
      command: "npm run bench -- --only store",
      figures: Object.entries(r).map(([name, value]) => ({ name, value, unit: unit(name) })),
      anchor:
        "No published kube-apiserver figure for these exact cases; etcd-backed kube-apiserver lists of 10,000 objects take tens of ms. `durable` creates wait for fdatasync (group commit).",
      notes:
        "Creates: ConfigMaps of ~200 bytes, in one namespace; `c50` = 50 requests in flight. Watch delay: from the create call to the event at each of 100 watchers.",
    };
  },
  async controllers() {
    const { runControllersBench } = await import("./controllers.js");
    return {
      title: "Local cluster controllers",
      command: "npm run bench -- --only controllers",
      figures: await runControllersBench(),
      anchor:
        "kube-controller-manager creates pods of a 100-replica Deployment in well under a second on an idle cluster.",
      notes:
        'In-process, memory store, no node: the bench marks pods Ready itself. The node-backed figures are under "Node".',
    };
  },
  async node() {
    const { runPodStartupBench, runDeploymentBench } = await import("./node.js");
    const figures = [...(await runPodStartupBench()), ...(await runDeploymentBench(100))];
    const t0 = performance.now();
    const home = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    const env = { ...process.env, ISTHMUS_HOME: home, KUBECONFIG: join(home, "kubeconfig") };
    try {
      execFileSync(
        process.execPath,
        [join(root, "bin", "isthmus"), "cluster", "create", "benchc", "--network", `bench${process.pid}`],
        { env, stdio: "ignore" },
      );
      figures.unshift({
        name: "isthmus cluster create to Ready (node Ready, API answering)",
        value: Math.round(performance.now() - t0),
        unit: "ms",
      });
    } finally {
      execFileSync(process.execPath, [join(root, "bin", "isthmus"), "cluster", "delete", "benchc"], {
        env,
        stdio: "ignore",
      });
      execFileSync("rm", ["-rf", home]);
    }
    return {
      title: "Local cluster node",
      command: "npm run bench -- --only node",
      figures,
      anchor: "kind creates a cluster in 20-40 s; a kubelet starts a pod with a cached image in about 1-2 s.",
      notes:
        "Pods are real processes in their own network namespaces (helloworld for the pod figure, curl's `sleep` for the Deployment).",
    };
  },
  async xds() {
    const { runXdsBench } = await import("./xds.js");
    const r = await runXdsBench();
    const figures = Object.entries(r).map(([name, value]) => ({
      name,
      value: value as number,
      unit: name.endsWith("Ms") ? "ms" : name.endsWith("Mb") ? "MB" : "",
    }));
    return {
      title: "Control plane: xDS",
      command: "npm run bench -- --only xds",
      figures,
      anchor:
        "Istio (istio.io Performance and Scalability, 1.8–1.20): one istiod serves 1,000 services and 2,000 sidecars with 1 vCPU and 1.5 GB. The EDS delay includes the 100 ms debounce (PILOT_DEBOUNCE_AFTER), its floor.",
      notes:
        "1,000 services × 10 endpoints in each of two Kubernetes clusters; clients are Isthmus xDS clients in one child process (HTTP/2 windows of 256 MiB, Envoy's default), which on 2 cores bounds the sync times: initialSyncServerCpuMs is the control plane's own share.",
    };
  },
  async eds() {
    const { runEdsDelayBench } = await import("./eds-delay.js");
    const r = await runEdsDelayBench({ samples: Number(process.env.BENCH_EDS_SAMPLES ?? 20) });
    const figures = Object.entries(r).map(([name, value]) => ({
      name,
      value,
      unit: name.endsWith("Ms") ? "ms" : "",
    }));
    return {
      title: "Control plane: cross-cluster EDS delay",
      command: "npm run bench -- --only eds",
      figures,
      anchor:
        "Istio pushes endpoint changes after PILOT_DEBOUNCE_AFTER (100 ms) of quiet, so 100 ms is the floor for any sample; istiod's own figures are not published for this path.",
      notes:
        "Two local clusters on one network, the guide's remote secret, cluster1's control plane run with --kubeconfig and one Isthmus xDS client subscribed to it. A pod in cluster2 flips readiness (exec probe on a flag file, period 1 s); each sample is from its Ready=True status at the bench's watch on cluster2 to the client's ClusterLoadAssignment holding its IP (EndpointSlice controller, informer, debounce, push, client). The probe period is before the sample starts.",
    };
  },
  async sidecar() {
    const { runSidecarBench, sidecarTable } = await import("./sidecar.js");
    const r = await runSidecarBench(Number(process.env.BENCH_SECONDS ?? 10));
    return {
      title: "Data path: sidecars against direct and HAProxy",
      command: "npm run bench -- --only sidecar",
      figures: [],
      table: sidecarTable(r),
      anchor:
        "Istio's Envoy sidecars (istio.io): +0.228 ms p90 and 0.5 vCPU per 1,000 req/s at Istio 1.20; 0.20 vCPU per 1,000 req/s and 60 MB at 1.24. HAProxy in the same run is the native-proxy reference; direct is the floor.",
      notes:
        "HTTP/1.1, 1 KiB responses, keep-alive; 1,000 req/s = hey -c 10 -q 100; max = wrk -t2 -c32. Load generator, proxies and app share the 2 cores.",
    };
  },
  async guide() {
    const home = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    const env = { ...process.env, ISTHMUS_HOME: home, KUBECONFIG: join(home, "kubeconfig") };
    const t0 = performance.now();
    let out = "";
    try {
      out = execFileSync(process.execPath, [join(root, "bin", "isthmus"), "demo", "--cleanup", "--requests", "4"], {
        env,
        encoding: "utf8",
      });
    } finally {
      execFileSync("rm", ["-rf", home]);
    }
    const total = /Total time: ([\d.]+) s/.exec(out)?.[1];
    return {
      title: "The whole guide",
      command: "npm run bench -- --only guide",
      figures: [
        {
          name: "from nothing to the first toggling answers (isthmus demo, both clusters)",
          value: Number(total ?? Number.NaN) * 1000,
          unit: "ms",
        },
        { name: "including clean-up", value: Math.round(performance.now() - t0), unit: "ms" },
      ],
      anchor: "With kind and Istio's images already pulled, the guide takes several minutes by hand.",
      notes:
        "Two local clusters, shared root CA, both control planes, remote secrets, helloworld v1/v2 and sleep with sidecars, 4 requests from each sleep pod.",
    };
  },
};

const titles: Record<string, string> = {
  guide: "The whole guide",
  sidecar: "Data path: sidecars against direct and HAProxy",
  xds: "Control plane: xDS",
  eds: "Control plane: cross-cluster EDS delay",
  store: "Local API server: object store",
  controllers: "Local cluster controllers",
  node: "Local cluster node",
};

function render(results: Results): string {
  const order = ["guide", "sidecar", "xds", "eds", "store", "controllers", "node"];
  const parts = [
    "# Benchmarks",
    "",
    "Every figure below was made by the command shown, on the machine and date shown; `npm run bench` runs them all",
    "and rewrites this file from `bench/results.json` (`npm run bench -- --only sidecar,xds` reruns some and keeps the rest).",
    "The machines are small (2 cores) and often shared: read figures against their anchor in the same section.",
    "",
  ];
  for (const key of order) {
    const s = results[key];
    if (!s) {
      parts.push(`## ${titles[key] ?? key}`, "", `Not measured yet: \`npm run bench -- --only ${key}\`.`, "");
      continue;
    }
    parts.push(`## ${s.title}`, "", `Command: \`${s.command}\`  `, `Date: ${s.date}  `, `Machine: ${s.machine}`, "");
    if (s.table) parts.push(s.table, "");
    if (s.figures.length > 0) {
      parts.push("| figure | value |", "|---|---|");
      for (const f of s.figures)
        parts.push(
          `| ${f.name} | ${typeof f.value === "number" ? Math.round(f.value * 100) / 100 : f.value} ${f.unit} |`,
        );
      parts.push("");
    }
    parts.push(`Anchor: ${s.anchor}`, "", `Notes: ${s.notes}`, "");
  }
  return `${parts.join("\n")}\n`;
}

const onlyArg = process.argv.indexOf("--only");
const only =
  onlyArg >= 0 ? (process.argv[onlyArg + 1] ?? "").split(",").filter((s) => s !== "") : Object.keys(sections);
const unknown = only.filter((k) => !(k in sections));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; choose from ${Object.keys(sections).join(", ")}`);
  process.exit(2);
}
const results: Results = existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, "utf8")) as Results) : {};
for (const key of only) {
  const run = sections[key];
  if (!run) continue;
  console.error(`== ${key}`);
  const m = machine();
  try {
    results[key] = { ...(await run()), date: new Date().toISOString().slice(0, 16).replace("T", " "), machine: m };
  } catch (err) {
    console.error(`benchmark ${key} failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
    continue;
  }
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, "BENCHMARKS.md"), render(results));
}
writeFileSync(join(root, "BENCHMARKS.md"), render(results));
console.error("wrote BENCHMARKS.md");
