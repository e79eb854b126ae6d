/**
 * `isthmus proxy-status --context CTX`: every proxy connected to the cluster's control plane
 * and whether each xDS type is SYNCED, STALE (sent, not yet ACKed), NACKED or NOT SENT, from
 * istiod's /debug/syncz, and the proxy's version (istioctl's columns). The version is the node
 * metadata's ISTIO_VERSION when syncz carries it, else the tag of the pod's istio-proxy image
 * (the proxy's build is its image, as `isthmus version` reads istiod's).
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
  /** The proxy's ISTIO_VERSION, when the control plane reports it. */
  istioVersion?: string;
  metadata?: Record<string, unknown>;
}

/** `sidecar~10.0.0.5~sleep-abc.sample~sample.svc.cluster.local` → `sleep-abc.sample`. */
export function proxyName(proxyId: string): string {
  return proxyId.split("~")[2] ?? proxyId;
}

/**
 * One row per connection: NAME CLUSTER CDS LDS EDS RDS ISTIOD VERSION. `imageVersions` maps
 * `<pod>.<namespace>` to its istio-proxy image tag, used when the connection carries no version.
 */
export function statusRows(
  connections: readonly Connection[],
  istiod: string,
  imageVersions: ReadonlyMap<string, string> = new Map(),
): string[][] {
  const col = (c: Connection, short: string) =>
    c.types.find((t) => t.type === short || t.type.endsWith(short))?.status ?? "NOT SENT";
  const version = (c: Connection) => {
    const meta = c.metadata?.ISTIO_VERSION;
    return c.istioVersion || (typeof meta === "string" && meta) || imageVersions.get(proxyName(c.proxyId)) || "-";
  };
  return connections
    .map((c) => [
      proxyName(c.proxyId),
      c.clusterId,
      col(c, "CDS"),
      col(c, "LDS"),
      col(c, "EDS"),
      col(c, "RDS"),
      istiod,
      version(c),
    ])
    .sort((a, b) => (a[0] ?? "").localeCompare(b[0] ?? ""));
}

/** `<pod>.<namespace>` → the tag of its istio-proxy container's image, for every pod with a sidecar. */
export function proxyImageVersions(
  pods: readonly {
    metadata?: { name?: string; namespace?: string };
    spec?: { containers?: readonly { name: string; image?: string }[] };
  }[],
): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of pods) {
    const image = p.spec?.containers?.find((c) => c.name === "istio-proxy")?.image ?? "";
    const at = image.lastIndexOf(":");
    if (at > image.lastIndexOf("/") && p.metadata?.name && p.metadata.namespace)
      out.set(`${p.metadata.name}.${p.metadata.namespace}`, image.slice(at + 1));
  }
  return out;
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
    // The VERSION column's fallback only: a cluster whose pods cannot be listed still gets its rows.
    const imageVersions = await api
      .list({ group: "", version: "v1", resource: "pods" }, {})
      .then((l) => proxyImageVersions(l.items as Parameters<typeof proxyImageVersions>[0]))
      .catch(() => new Map<string, string>());
    const rows: string[][] = [];
    for (const pod of running) {
      const address = o.istiodAddress ?? `${pod.status?.podIP}:15014`;
      try {
        const res = await fetch(`http://${address}/debug/syncz`, { signal: AbortSignal.timeout(5000) });
        rows.push(...statusRows((await res.json()) as Connection[], pod.metadata.name ?? "?", imageVersions));
      } catch (err) {
        throw new Error(
          `cannot reach istiod pod ${pod.metadata.name} at ${address}: ${errorMessage(err)}; pass --istiod-address after kubectl port-forward -n ${ISTIO_NAMESPACE} ${pod.metadata.name} 15014`,
        );
      }
      if (o.istiodAddress) break;
    }
    process.stdout.write(table(["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ISTIOD", "VERSION"], rows));
    return 0;
  });
}
