/**
 * `isthmus proxy-status --context CTX`: every proxy connected to the cluster's control plane
 * and whether each xDS type is SYNCED, STALE (sent, not yet ACKed), NACKED or NOT SENT, from
 * istiod's /debug/syncz (istioctl's columns).
 */
import { Command } from "commander";
import { errorMessage } from "../base/index.js";
import { openCluster, runCommand } from "./common.js";
import { ISTIO_NAMESPACE } from "./manifests.js";
import { table } from "./output.js";

interface TypeStatus {
  type: string;
  status: string;
}
interface Connection {
  proxyId: string;
  clusterId: string;
  types: TypeStatus[];
}

/** `sidecar~10.0.0.5~sleep-abc.sample~sample.svc.cluster.local` → `sleep-abc.sample`. */
export function proxyName(proxyId: string): string {
  return proxyId.split("~")[2] ?? proxyId;
}

export function statusRows(connections: readonly Connection[], istiod: string): string[][] {
  const col = (c: Connection, short: string) =>
    c.types.find((t) => t.type === short || t.type.endsWith(short))?.status ?? "NOT SENT";
  return connections
    .map((c) => [proxyName(c.proxyId), c.clusterId, col(c, "CDS"), col(c, "LDS"), col(c, "EDS"), col(c, "RDS"), istiod])
    .sort((a, b) => (a[0] ?? "").localeCompare(b[0] ?? ""));
}

export async function main(argv: string[]): Promise<number> {
  return runCommand("proxy-status", async () => {
    const cmd = new Command("proxy-status")
      .description("every proxy's xDS sync state, from the control plane")
      .option("--context <name>", "the kubeconfig context to use")
      .option("-c, --kubeconfig <file>", "the kubeconfig file to use")
      .option("--istiod-address <host:port>", "reach istiod's monitoring port here (e.g. through kubectl port-forward)")
      .exitOverride()
      .configureOutput({ writeErr: (s) => process.stderr.write(s) });
    cmd.parse(argv, { from: "user" });
    const o = cmd.opts<{ context?: string; kubeconfig?: string; istiodAddress?: string }>();
    const { api } = openCluster(o);
    const pods = (
      await api.list(
        { group: "", version: "v1", resource: "pods" },
        { namespace: ISTIO_NAMESPACE, labelSelector: "app=istiod" },
      )
    ).items as {
      metadata: { name?: string };
      status?: { phase?: string; podIP?: string };
    }[];
    const running = pods.filter((p) => p.status?.phase === "Running" && p.status.podIP);
    if (running.length === 0)
      throw new Error(`no running istiod pod in ${ISTIO_NAMESPACE}; install the control plane with isthmus install`);
    const rows: string[][] = [];
    for (const pod of running) {
      const address = o.istiodAddress ?? `${pod.status?.podIP}:15014`;
      try {
        const res = await fetch(`http://${address}/debug/syncz`, { signal: AbortSignal.timeout(5000) });
        rows.push(...statusRows((await res.json()) as Connection[], pod.metadata.name ?? "?"));
      } catch (err) {
        throw new Error(
          `cannot reach istiod pod ${pod.metadata.name} at ${address}: ${errorMessage(err)}; pass --istiod-address after kubectl port-forward -n ${ISTIO_NAMESPACE} ${pod.metadata.name} 15014`,
        );
      }
      if (o.istiodAddress) break;
    }
    process.stdout.write(table(["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ISTIOD"], rows));
    return 0;
  });
}
