/**
 * What a user looks at to check the guide's samples: helloworld answers from a sleep pod through
 * `kubectl exec`, the pods' READY column, `isthmus proxy-config endpoint` rows and a sidecar's
 * Prometheus series. Each reader returns plain values so a test can assert on them and print them.
 */
import type { Sandbox } from "./shell.js";

/** One answer of `curl -sS helloworld.sample:5000/hello`, or what came back instead. */
export interface Answer {
  readonly version?: string;
  readonly text: string;
}

/** The name of the first pod labelled `selector` in `namespace` of context `ctx` (as the guide finds the sleep pod). */
export async function firstPodName(sb: Sandbox, ctx: string, namespace: string, selector: string): Promise<string> {
  const r = await sb.sh(
    `kubectl get pod --context=${ctx} -n ${namespace} -l ${selector} -o jsonpath='{.items[0].metadata.name}'`,
  );
  if (r.code !== 0 || r.stdout.trim() === "")
    throw new Error(`no pod ${selector} in ${namespace} of ${ctx} (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * Sends `count` requests one after the other from the sleep container of `sleepPod` in `ctx`
 * through `kubectl exec`, as the guide does; a failed request is an answer without a version.
 */
export async function helloworldAnswers(sb: Sandbox, ctx: string, sleepPod: string, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i++) {
    const r = await sb.sh(
      `kubectl exec --context=${ctx} -n sample -c sleep ${sleepPod} -- curl -sS --max-time 10 helloworld.sample:5000/hello`,
      { timeoutMs: 60_000 },
    );
    const text = (r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stdout}${r.stderr}`).trim();
    answers.push(versionOf(text));
  }
  return answers;
}

/** Reads helloworld's `Hello version: vN, instance: <pod>` line; anything else has no version. */
export function versionOf(text: string): Answer {
  const m = /^Hello version: (v\d+), instance: helloworld-v\d+-[a-z0-9]+-[a-z0-9]{5}$/.exec(text.trim());
  return m ? { version: m[1], text } : { text };
}

/** How many answers came from each version ("failed" counts answers without one). */
export function countVersions(answers: readonly Answer[]): Map<string, number> {
  const by = new Map<string, number>();
  for (const a of answers) by.set(a.version ?? "failed", (by.get(a.version ?? "failed") ?? 0) + 1);
  return by;
}

/** "v1: 10, v2: 10" for messages. */
export function describeCounts(answers: readonly Answer[]): string {
  return [...countVersions(answers)]
    .sort()
    .map(([v, n]) => `${v}: ${n}`)
    .join(", ");
}

/** One row of `kubectl get pod` (NAME READY STATUS RESTARTS AGE). */
export interface PodRow {
  readonly name: string;
  readonly ready: string;
  readonly status: string;
}

/** The rows of kubectl's pod table, header dropped. */
export function podRows(table: string): PodRow[] {
  return table
    .trim()
    .split("\n")
    .slice(1)
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [name = "", ready = "", status = ""] = l.trim().split(/\s+/);
      return { name, ready, status };
    });
}

/** One row of `isthmus proxy-config endpoint ... -o wide`. */
export interface EndpointRow {
  readonly endpoint: string;
  readonly status: string;
  readonly outlierCheck: string;
  readonly cluster: string;
  readonly clusterId: string;
}

/**
 * Parses the wide endpoint table (ENDPOINT STATUS OUTLIER CHECK CLUSTER CLUSTER ID); throws when
 * the header is not that one, so a renamed column fails the test that reads it.
 */
export function endpointRows(table: string): EndpointRow[] {
  const [header = "", ...rows] = table.trim().split("\n");
  const want = ["ENDPOINT", "STATUS", "OUTLIER", "CHECK", "CLUSTER", "CLUSTER", "ID"];
  if (header.trim().split(/\s+/).join(" ") !== want.join(" "))
    throw new Error(`unexpected proxy-config endpoint header: "${header}"; expected ${want.join(" ")}`);
  return rows
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [endpoint = "", status = "", outlierCheck = "", cluster = "", clusterId = ""] = l.trim().split(/\s+/);
      return { endpoint, status, outlierCheck, cluster, clusterId };
    });
}

/** One Prometheus sample: its labels and value. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of metric `name` in a Prometheus text exposition. */
export function prometheusSeries(text: string, name: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.lastIndexOf("}");
    const body = close > 0 ? line.slice(name.length + 1, close) : "";
    const labels: Record<string, string> = {};
    for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[m[1] ?? ""] = (m[2] ?? "").replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    out.push({ labels, value: Number(line.slice(close > 0 ? close + 1 : name.length).trim()) });
  }
  return out;
}

/** Sums the samples whose labels include every pair of `match`. */
export function sumMatching(series: readonly Series[], match: Readonly<Record<string, string>>): number {
  return series
    .filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}
