/**
 * The sidecar's runtime state, shared by the inbound and outbound paths: the current
 * configuration from the control plane, balancers per Envoy cluster, upstream connections and
 * metrics. Static settings (who this workload is) are fixed at start-up.
 */
import { type Logger, silentLogger } from "../base/index.js";
import { Balancer, endpointKey } from "./balance/balancer.js";
import { OutlierDetector } from "./balance/outlier.js";
import { emptyProxyConfig, type Endpoint, type ProxyConfig, type UpstreamCluster } from "./config/types.js";
import { UpstreamConnector } from "./outbound/upstream.js";
import { RequestMetrics } from "./stats/metrics.js";
import { describeHandshakeFailure } from "./tls/identity.js";

/** Who this sidecar speaks for; fixed for the life of the process. */
export interface WorkloadInfo {
  readonly podName: string;
  readonly namespace: string;
  /** The workload (Deployment) name, used in metrics labels. */
  readonly workloadName: string;
  readonly clusterId: string;
  readonly serviceAccount: string;
  readonly trustDomain: string;
}

export class ProxyRuntime {
  readonly workload: WorkloadInfo;
  readonly connector = new UpstreamConnector();
  readonly metrics = new RequestMetrics();
  readonly outliers: OutlierDetector;
  readonly log: Logger;
  #config: ProxyConfig = emptyProxyConfig;
  #balancers = new Map<string, Balancer>();

  constructor(workload: WorkloadInfo, opts: { log?: Logger; outliers?: OutlierDetector } = {}) {
    this.workload = workload;
    this.log = opts.log ?? silentLogger;
    this.outliers = opts.outliers ?? new OutlierDetector();
  }

  get config(): ProxyConfig {
    return this.#config;
  }

  /** Replaces the configuration; balancers of clusters that remain (with the same policy) keep their state. */
  setConfig(config: ProxyConfig): void {
    this.#config = config;
    const next = new Map<string, Balancer>();
    for (const [name, cluster] of config.clusters) {
      const prev = this.#balancers.get(name);
      if (prev !== undefined && prev.policy === cluster.lbPolicy) next.set(name, prev);
    }
    this.#balancers = next;
  }

  balancer(cluster: UpstreamCluster): Balancer {
    let b = this.#balancers.get(cluster.name);
    if (b === undefined) {
      b = new Balancer(cluster.lbPolicy);
      this.#balancers.set(cluster.name, b);
    }
    return b;
  }

  /** The endpoints of an Envoy cluster as configured (EDS or static); empty for unknown clusters. */
  endpointsOf(cluster: UpstreamCluster): readonly Endpoint[] {
    if (cluster.type === "STATIC") return cluster.staticEndpoints;
    return this.#config.endpoints.get(cluster.edsServiceName) ?? [];
  }

  /** Whether outlier detection currently keeps `ep` out of `cluster`'s load balancing. */
  isEjected(cluster: UpstreamCluster, ep: Endpoint): boolean {
    return this.outliers.isEjected(cluster.name, endpointKey(ep));
  }

  /** Picks an endpoint of `cluster` for a new attempt, skipping `tried` and ejected hosts while others remain. */
  pick(cluster: UpstreamCluster, endpoints: readonly Endpoint[], tried?: ReadonlySet<string>): Endpoint | undefined {
    return this.balancer(cluster).pick(endpoints, tried, (e) => this.isEjected(cluster, e));
  }

  /**
   * Records a failed connection or gateway error to `ep`: failed TLS handshakes are logged with
   * the endpoint, the Envoy cluster and the reason, and counted; every failure feeds outlier detection.
   */
  upstreamFailed(cluster: UpstreamCluster, ep: Endpoint, err: unknown): void {
    const host = endpointKey(ep);
    const tlsFailure = describeHandshakeFailure(err);
    const reason = tlsFailure?.reason ?? (err instanceof Error ? err.message : String(err));
    if (tlsFailure !== undefined) {
      this.metrics.inc("isthmus_upstream_tls_handshake_failures_total", {
        cluster_name: cluster.name,
        reason: tlsFailure.kind,
      });
      this.log.warn("upstream TLS handshake failed", {
        endpoint: host,
        cluster: cluster.name,
        kubeCluster: ep.clusterId || undefined,
        reason: tlsFailure.reason,
      });
    }
    const size = this.endpointsOf(cluster).length;
    if (this.outliers.failure(cluster.name, host, reason, size)) {
      this.metrics.inc("envoy_cluster_outlier_detection_ejections_enforced_total", { cluster_name: cluster.name });
      const until = new Date(this.outliers.state(cluster.name, host).ejectedUntil).toISOString();
      this.log.warn("endpoint ejected by outlier detection", {
        endpoint: host,
        cluster: cluster.name,
        until,
        reason,
      });
    }
  }

  /** Records a successful exchange with `ep` (the consecutive-failure count starts again). */
  upstreamSucceeded(cluster: UpstreamCluster, ep: Endpoint): void {
    this.outliers.success(cluster.name, endpointKey(ep));
  }
}
