/**
 * The guide's two clusters as a fixture for fault tests: bring them up once (the guide's own
 * steps, through `isthmus demo`), find pods and their network namespaces, talk to a cluster
 * daemon's control socket and to istiod's debug port, and run steady traffic from a sleep pod
 * whose every request is recorded with its outcome.
 */
import { spawn } from "node:child_process";
import type { Sandbox } from "./shell.js";

export const guideClusters = ["cluster1", "cluster2"] as const;
export type GuideCluster = (typeof guideClusters)[number];

/**
 * Runs the whole guide in `sb` (clusters on network1, shared root as cacerts, both control
 * planes, remote secrets both ways, helloworld v1/v2 and sleep); throws with the demo's own
 * account of the failing step.
 */
export async function setUpGuideClusters(sb: Sandbox): Promise<void> {
  const r = await sb.sh("isthmus demo --work-dir work --requests 4", { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`the guide did not come up (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
}

/** Runs `command`, throwing with its output unless it exits 0; resolves with stdout. */
export async function must(sb: Sandbox, command: string, timeoutMs = 120_000): Promise<string> {
  const r = await sb.sh(command, { timeoutMs });
  if (r.code !== 0) throw new Error(`\`${command}\` failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export interface PodInfo {
  readonly name: string;
  readonly ip: string;
  readonly phase: string;
  readonly deleting: boolean;
}

/** Pods matching `selector` in `namespace` of cluster `ctx`, from kubectl. */
export async function pods(sb: Sandbox, ctx: string, namespace: string, selector: string): Promise<PodInfo[]> {
  const out = await must(sb, `kubectl --context=${ctx} -n ${namespace} get pod -l ${selector} -o json`);
  const list = JSON.parse(out) as {
    items: { metadata: { name: string; deletionTimestamp?: string }; status?: { podIP?: string; phase?: string } }[];
  };
  return list.items.map((p) => ({
    name: p.metadata.name,
    ip: p.status?.podIP ?? "",
    phase: p.status?.phase ?? "",
    deleting: p.metadata.deletionTimestamp !== undefined,
  }));
}

/** The one running, not-deleting pod matching `selector`; throws when there is none. */
export async function onePod(sb: Sandbox, ctx: string, namespace: string, selector: string): Promise<PodInfo> {
  const found = (await pods(sb, ctx, namespace, selector)).filter((p) => p.phase === "Running" && !p.deleting);
  const pod = found[0];
  if (pod === undefined || pod.ip === "") throw new Error(`no running pod ${selector} in ${namespace} of ${ctx}`);
  return pod;
}

/** The network namespace holding `podIp` (local clusters name them isth-<tag>-<last octet>). */
export async function podNetns(sb: Sandbox, podIp: string): Promise<string> {
  const octet = podIp.split(".").at(-1);
  const names = (await must(sb, "ip netns list"))
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith("isth") && n.endsWith(`-${octet}`));
  for (const ns of names) {
    const r = await sb.sh(`ip -n ${ns} -o -4 addr show`);
    if (r.stdout.includes(` ${podIp}/`)) return ns;
  }
  throw new Error(`no network namespace holds ${podIp}`);
}

/** Sends one request to a cluster daemon's control socket; resolves with the parsed JSON body. */
export async function controlSocket(
  sb: Sandbox,
  cluster: string,
  method: "GET" | "POST",
  path: string,
): Promise<unknown> {
  const out = await must(
    sb,
    `curl -sS --fail-with-body --max-time 60 -X ${method} --unix-socket "$ISTHMUS_HOME/clusters/${cluster}/control.sock" http://daemon${path}`,
  );
  return JSON.parse(out) as unknown;
}

/** GETs `http://<istiod pod IP>:15014<path>` of cluster `ctx`'s running istiod. */
export async function istiodDebug(sb: Sandbox, ctx: string, path: string): Promise<{ status: number; body: string }> {
  const istiod = await onePod(sb, ctx, "istio-system", "app=istiod");
  return httpGet(`http://${istiod.ip}:15014${path}`);
}

/** A GET with a deadline; network errors resolve as status 0 with the error in `body`. */
export async function httpGet(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: String(err instanceof Error && err.cause ? err.cause : err) };
  }
}

/** One entry of istiod's /debug/clusterz. */
export interface ClusterzEntry {
  readonly id: string;
  readonly secretName: string;
  readonly syncStatus: string;
}

/** istiod's /debug/clusterz of cluster `ctx`, or undefined when it cannot be read. */
export async function clusterz(sb: Sandbox, ctx: string): Promise<ClusterzEntry[] | undefined> {
  const r = await istiodDebug(sb, ctx, "/debug/clusterz").catch(() => undefined);
  if (r === undefined || r.status !== 200) return undefined;
  return JSON.parse(r.body) as ClusterzEntry[];
}

/** Polls `probe` every second until it returns a value that is not undefined, or throws `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = String(err);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} ${lastError}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** One request of steady traffic. */
export interface Sample {
  readonly at: number;
  readonly version?: string;
  readonly instance?: string;
  readonly error?: string;
}

/**
 * Steady traffic from a sleep pod: curl to helloworld.sample:5000/hello in a loop, run in the
 * pod's network namespace from the host (so it goes through the pod's sidecar like the sleep
 * container's own requests, but does not depend on the API server the way `kubectl exec` does:
 * stopping an API server is one of the faults).
 */
export class Traffic {
  readonly samples: Sample[] = [];
  readonly #sb: Sandbox;
  readonly #netns: string;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(sb: Sandbox, netns: string) {
    this.#sb = sb;
    this.#netns = netns;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  /** Samples taken at or after `from` (ms since epoch) and before `to`. */
  between(from: number, to = Number.POSITIVE_INFINITY): Sample[] {
    return this.samples.filter((s) => s.at >= from && s.at < to);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const at = Date.now();
      const out = await curlOnce(this.#netns, this.#sb.env);
      const m = /Hello version: (v\d+), instance: (\S+)/.exec(out.stdout);
      if (m) this.samples.push({ at, version: m[1], instance: m[2] });
      else this.samples.push({ at, error: `${out.code}: ${(out.stdout + out.stderr).trim().slice(0, 200)}` });
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

function curlOnce(netns: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      "ip",
      ["netns", "exec", netns, "curl", "-sS", "--max-time", "5", "http://helloworld.sample:5000/hello"],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, stdout, stderr });
    });
  });
}

/** "n failed of m (versions v1: a, v2: b)" for a report line. */
export function summarize(samples: readonly Sample[]): { failed: number; total: number; text: string } {
  const failed = samples.filter((s) => s.error !== undefined).length;
  const by = new Map<string, number>();
  for (const s of samples) if (s.version) by.set(s.version, (by.get(s.version) ?? 0) + 1);
  const versions = [...by].sort().map(([v, n]) => `${v}: ${n}`);
  const errors = [...new Set(samples.flatMap((s) => (s.error ? [s.error] : [])))].slice(0, 3);
  const why = errors.length > 0 ? `; errors: ${errors.join(" | ")}` : "";
  return {
    failed,
    total: samples.length,
    text: `${failed} failed of ${samples.length} (${versions.join(", ")})${why}`,
  };
}

/** The Envoy cluster of helloworld's port 5000 as a sidecar names it. */
export const helloworldCluster = "outbound|5000||helloworld.sample.svc.cluster.local";

/** One endpoint of an Envoy cluster as a sidecar's admin /clusters?format=json shows it. */
export interface ProxyHost {
  readonly address: string;
  readonly health: string;
  readonly clusterId: string;
  /** Outlier detection: FAILED while ejected. */
  readonly outlierCheck?: string;
  readonly consecutiveFailures?: number;
  readonly ejections?: number;
  /** Requests in flight to it, as least-request balancing counts them. */
  readonly activeRequests?: number;
  /** Why the last connection or request to it failed (a TLS handshake, a connect timeout ...). */
  readonly lastFailure?: string;
}

/**
 * The endpoints a sidecar holds for `envoyCluster`, read from its admin port (loopback only)
 * inside the pod's network namespace, so it works while an API server is down.
 */
export async function proxyHosts(sb: Sandbox, netns: string, envoyCluster = helloworldCluster): Promise<ProxyHost[]> {
  const out = await must(
    sb,
    `ip netns exec ${netns} curl -sS --max-time 10 'http://127.0.0.1:15000/clusters?format=json'`,
  );
  const body = JSON.parse(out) as { cluster_statuses: { name: string; hosts: ProxyHost[] }[] };
  return body.cluster_statuses.find((c) => c.name === envoyCluster)?.hosts ?? [];
}

/** The pod CIDR of cluster `ctx` (its node's spec.podCIDR, a /24 of the network's /20). */
export async function podCidr(sb: Sandbox, ctx: string): Promise<string> {
  const cidr = (await must(sb, `kubectl --context=${ctx} get nodes -o jsonpath='{.items[0].spec.podCIDR}'`)).trim();
  if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(cidr)) throw new Error(`cluster ${ctx} has no node podCIDR: "${cidr}"`);
  return cidr;
}

/** Every network namespace of the cluster that made `podNetnsName` (isth-<tag>-*): all its pods. */
export async function clusterNetns(sb: Sandbox, podNetnsName: string): Promise<string[]> {
  const prefix = `${podNetnsName.slice(0, podNetnsName.lastIndexOf("-"))}-`;
  return (await must(sb, "ip netns list"))
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(prefix));
}

/** The project's own range (docs/adr/0003): the only addresses a fault may be injected for. */
const projectNet = { base: (10 << 24) | (200 << 16), bits: 13 };

function insideProject(cidr: string): boolean {
  const [ip, bits] = cidr.split("/");
  const o = (ip ?? "").split(".").map(Number);
  if (o.length !== 4 || Number(bits) < projectNet.bits) return false;
  const n = (((o[0] ?? 0) << 24) | ((o[1] ?? 0) << 16) | ((o[2] ?? 0) << 8) | (o[3] ?? 0)) >>> 0;
  const mask = (0xffffffff << (32 - projectNet.bits)) >>> 0;
  return (n & mask) >>> 0 === projectNet.base >>> 0;
}

/** One side of a cut: every pod namespace of one cluster, and the other cluster's pod CIDR it must stop hearing. */
export interface CutSide {
  readonly netns: readonly string[];
  readonly dropFrom: string;
}

/**
 * Cuts the link between two clusters' pods the way a partition does (packets silently lost):
 * in each listed pod namespace, `iptables -I INPUT -s <other cluster's pod CIDR> -j DROP`.
 * Only the project's own namespaces (isth*) and range (10.200.0.0/13) are touched, and nothing
 * in the host namespace. `restore()` removes exactly those rules (idempotent, ignores pods gone).
 */
export async function cutPodLink(sb: Sandbox, sides: readonly CutSide[]): Promise<{ restore(): Promise<void> }> {
  const added: [string, string][] = [];
  const restore = async () => {
    while (added.length > 0) {
      const [ns, from] = added.pop() ?? ["", ""];
      await sb.sh(`ip netns exec ${ns} iptables -w -D INPUT -s ${from} -j DROP`);
    }
  };
  try {
    for (const s of sides) {
      if (!insideProject(s.dropFrom)) throw new Error(`${s.dropFrom} is outside the project's range 10.200.0.0/13`);
      for (const ns of s.netns) {
        if (!ns.startsWith("isth")) throw new Error(`${ns} is not a namespace of the project`);
        await must(sb, `ip netns exec ${ns} iptables -w -I INPUT -s ${s.dropFrom} -j DROP`);
        added.push([ns, s.dropFrom]);
      }
    }
  } catch (err) {
    await restore();
    throw err;
  }
  return { restore };
}

/** One request from a sleep pod's namespace with a deadline of `maxSeconds`; its answer and how long it took. */
export async function timedRequest(
  sb: Sandbox,
  netns: string,
  maxSeconds: number,
): Promise<{ version?: string; error?: string; seconds: number }> {
  const r = await sb.sh(
    `ip netns exec ${netns} curl -sS --max-time ${maxSeconds} -w '\\n%{time_total}' http://helloworld.sample:5000/hello`,
    { timeoutMs: (maxSeconds + 15) * 1000 },
  );
  const lines = r.stdout.trim().split("\n");
  const seconds = Number(lines.at(-1));
  const version = /Hello version: (v\d+)/.exec(r.stdout)?.[1];
  return version
    ? { version, seconds }
    : { error: `${r.code}: ${(r.stdout + r.stderr).trim().slice(0, 200)}`, seconds };
}

/** A sidecar's counter `name` for helloworld's Envoy cluster, from its Prometheus port (pod IP:15090). */
export async function helloworldCounter(podIp: string, name: string): Promise<number> {
  const body = (await httpGet(`http://${podIp}:15090/stats/prometheus`)).body;
  const line = body
    .split("\n")
    .find((l) => l.startsWith(`${name}{`) && l.includes(`cluster_name="${helloworldCluster}"`));
  return Number(line?.split(/\s+/).at(-1) ?? "0");
}
