/**
 * The sidecar's runtime state, shared by the inbound and outbound paths: the current
 * configuration from the control plane, balancers per Envoy cluster, upstream connections and
 * metrics. Static settings (who this workload is) are fixed at start-up.
 */
import { Balancer } from "./balance/balancer.js";
import { emptyProxyConfig, type Endpoint, type ProxyConfig, type UpstreamCluster } from "./config/types.js";
import { UpstreamConnector } from "./outbound/upstream.js";
import { RequestMetrics } from "./stats/metrics.js";

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
  #config: ProxyConfig = emptyProxyConfig;
  #balancers = new Map<string, Balancer>();

  constructor(workload: WorkloadInfo) {
    this.workload = workload;
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
}
