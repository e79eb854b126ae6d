/**
 * `isthmus remote-clusters --context CTX`: the clusters each control plane of a cluster reads,
 * with their sync status, from istiod's `/debug/clusterz` on 15014 (istioctl's columns
 * NAME SECRET STATUS ISTIOD).
 *
 * How istiod is reached (docs/adr/0004-remote-clusters-reaches-istiod-directly.md): istioctl
 * goes through the API server's port-forward; Isthmus connects to each istiod pod's IP on
 * 15014, which works wherever pod IPs are reachable from where the CLI runs (local clusters:
 * always, from the host). Elsewhere, `kubectl port-forward -n istio-system <pod> 15014` and
 * `--istiod-address 127.0.0.1:15014` does the same through the API server.
 */
import { Command } from "commander";
import { errorMessage } from "../base/index.js";
import type { KubeObjectLike } from "../ca/kube-api.js";
import type { ObjectApi } from "./apply.js";
import { openCluster, runCommand } from "./common.js";
import { ISTIO_NAMESPACE } from "./manifests.js";
import { table } from "./output.js";

/** One entry of istiod's /debug/clusterz (Istio's cluster.DebugInfo). */
export interface ClusterDebugInfo {
  readonly id: string;
  readonly secretName: string;
  readonly syncStatus: string;
}

export type ClusterzFetcher = (address: string) => Promise<readonly ClusterDebugInfo[]>;

/** GETs http://<address>/debug/clusterz with a 5 s deadline and checks the shape. */
export const fetchClusterz: ClusterzFetcher = async (address) => {
  const res = await fetch(`http://${address}/debug/clusterz`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`HTTP ${res.status} from http://${address}/debug/clusterz`);
  const body: unknown = await res.json();
  if (!Array.isArray(body)) throw new Error(`http://${address}/debug/clusterz did not answer a JSON list`);
  return body.map((e: unknown) => {
    const o = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
    return { id: String(o.id ?? ""), secretName: String(o.secretName ?? ""), syncStatus: String(o.syncStatus ?? "") };
  });
};

type PodLike = KubeObjectLike & { status?: { phase?: string; podIP?: string } };

/** Rows for every running istiod pod, or the reasons none could be read. */
export async function remoteClusterRows(
  api: ObjectApi,
  fetcher: ClusterzFetcher,
  istiodAddress?: string,
): Promise<{ rows: string[][]; problems: string[] }> {
  const rows: string[][] = [];
  const problems: string[] = [];
  const pods = (
    await api.list(
      { group: "", version: "v1", resource: "pods" },
      { namespace: ISTIO_NAMESPACE, labelSelector: "app=istiod" },
    )
  ).items as PodLike[];
  const running = pods.filter((p) => p.status?.phase === "Running" && p.metadata.deletionTimestamp === undefined);
  if (running.length === 0) {
    problems.push(`no running istiod pod in ${ISTIO_NAMESPACE}; install the control plane with isthmus install`);
    return { rows, problems };
  }
  for (const pod of running) {
    const name = pod.metadata.name ?? "?";
    const address = istiodAddress ?? (pod.status?.podIP ? `${pod.status.podIP}:15014` : undefined);
    if (address === undefined) {
      problems.push(`istiod pod ${name} has no IP yet`);
      continue;
    }
    try {
      for (const c of await fetcher(address)) rows.push([c.id, c.secretName, c.syncStatus, name]);
    } catch (err) {
      problems.push(
        `cannot reach istiod pod ${name} at ${address}: ${errorMessage(err)}; if pod IPs are not reachable from here, run \`kubectl port-forward -n ${ISTIO_NAMESPACE} ${name} 15014\` and pass --istiod-address 127.0.0.1:15014`,
      );
    }
    if (istiodAddress !== undefined) break;
  }
  return { rows, problems };
}

export async function main(argv: string[]): Promise<number> {
  return runCommand("remote-clusters", async () => {
    const cmd = new Command("remote-clusters")
      .description("list the clusters each control plane reads, and their sync status")
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
      .option("--context <name>", "the kubeconfig context of the cluster whose control plane to ask")
      .option("-c, --kubeconfig <file>", "the kubeconfig file to use")
      .option(
        "--istiod-address <host:port>",
        "reach istiod's monitoring port here (e.g. through kubectl port-forward)",
      );
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<{ context?: string; kubeconfig?: string; istiodAddress?: string }>();
    const cluster = openCluster(o);
    const { rows, problems } = await remoteClusterRows(cluster.api, fetchClusterz, o.istiodAddress);
    if (rows.length > 0) process.stdout.write(table(["NAME", "SECRET", "STATUS", "ISTIOD"], rows));
    for (const p of problems) process.stderr.write(`isthmus remote-clusters: ${p}\n`);
    return problems.length > 0 && rows.length === 0 ? 1 : 0;
  });
}
