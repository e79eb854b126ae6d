/**
 * `/metrics` in Prometheus text format, under Istio's metric names, so dashboards and habits
 * carry over. Pure: inputs in, text out.
 */
import type { XdsMetricsSnapshot } from "../xds/push/metrics.js";
import type { ClusterDebugInfo } from "../registry/index.js";

export interface MetricsInput {
  readonly xds: XdsMetricsSnapshot | undefined;
  readonly ownClusterId: string;
  readonly ownSynced: boolean;
  readonly remotes: readonly ClusterDebugInfo[];
  readonly remoteSyncTimeouts: ReadonlyMap<string, number>;
  readonly services: number;
  readonly ready: boolean;
}

const esc = (v: string) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

/** Renders the metrics page. */
export function renderMetrics(m: MetricsInput): string {
  const out: string[] = [];
  const family = (name: string, type: string, help: string, samples: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      const l = Object.entries(labels)
        .map(([k, x]) => `${k}="${esc(x)}"`)
        .join(",");
      out.push(`${name}${l ? `{${l}}` : ""} ${Number.isFinite(v) ? v : 0}`);
    }
  };
  const x = m.xds;
  family(
    "pilot_xds_pushes",
    "counter",
    "Pilot build and send errors for lds, rds, cds and eds.",
    Object.entries(x?.pushesByType ?? {}).map(([t, n]) => [{ type: t.toLowerCase() }, n]),
  );
  family(
    "pilot_total_xds_rejects",
    "counter",
    "Total number of XDS responses from pilot rejected by proxy.",
    Object.entries(x?.nacksByType ?? {}).map(([t, n]) => [{ type: t.toLowerCase() }, n]),
  );
  family("pilot_xds", "gauge", "Number of endpoints connected to this pilot using XDS.", [
    [{}, x?.connectedProxies ?? 0],
  ]);
  out.push("# HELP pilot_xds_push_time Total time in seconds Pilot takes to push lds, rds, cds and eds.");
  out.push("# TYPE pilot_xds_push_time summary");
  out.push(
    `pilot_xds_push_time_sum ${(x?.pushTimeSumMs ?? 0) / 1000}`,
    `pilot_xds_push_time_count ${x?.pushCycles ?? 0}`,
  );
  out.push(
    "# HELP pilot_proxy_convergence_time Delay in seconds between config change and a proxy receiving all required configuration.",
  );
  out.push("# TYPE pilot_proxy_convergence_time summary");
  out.push(
    `pilot_proxy_convergence_time{quantile="0.5"} ${(x?.convergenceP50Ms ?? 0) / 1000}`,
    `pilot_proxy_convergence_time{quantile="0.99"} ${(x?.convergenceP99Ms ?? 0) / 1000}`,
    `pilot_proxy_convergence_time_sum ${(x?.convergenceSumMs ?? 0) / 1000}`,
    `pilot_proxy_convergence_time_count ${x?.convergenceCount ?? 0}`,
  );
  family("pilot_services", "gauge", "Total services known to pilot.", [[{}, m.services]]);
  const remotes = m.remotes.filter((r) => r.syncStatus !== "failed" && r.syncStatus !== "closed");
  family("istiod_managed_clusters", "gauge", "Number of clusters managed by istiod", [
    [{ cluster_type: "local" }, 1],
    [{ cluster_type: "remote" }, remotes.length],
  ]);
  family(
    "remote_cluster_sync_timeouts_total",
    "counter",
    "Number of times remote clusters took too long to sync, causing slow startup that excludes remote clusters.",
    [...m.remoteSyncTimeouts].map(([cluster, n]) => [{ cluster }, n]),
  );
  const statusSamples: [Record<string, string>, number][] = [];
  const statuses = ["syncing", "synced", "timeout", "closed", "failed"];
  for (const s of statuses) {
    statusSamples.push([
      { cluster: m.ownClusterId, cluster_type: "local", status: s },
      (m.ownSynced ? "synced" : "syncing") === s ? 1 : 0,
    ]);
  }
  for (const r of m.remotes)
    for (const s of statuses)
      statusSamples.push([{ cluster: r.id, cluster_type: "remote", status: s }, r.syncStatus === s ? 1 : 0]);
  family(
    "istiod_remote_cluster_sync_status",
    "gauge",
    "Sync status of each cluster (1 for the current status).",
    statusSamples,
  );
  family(
    "isthmus_discovery_ready",
    "gauge",
    "1 once the own cluster has synced and every remote has synced or timed out.",
    [[{}, m.ready ? 1 : 0]],
  );
  return `${out.join("\n")}\n`;
}
