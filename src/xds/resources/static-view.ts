/**
 * An immutable in-memory ServiceView built from plain lists: for tests, benchmarks and debug
 * tools that need a view without a registry. Behaves as the ServiceView contract says (services
 * sorted by hostname, shards in sorted ClusterId order).
 */
import type { ClusterId, MeshEndpoint, MeshService, ServiceView } from "../../model/index.js";

/** One service with its endpoints, keyed by the hostname it belongs to. */
export interface StaticServiceInput {
  readonly service: MeshService;
  readonly endpoints: readonly MeshEndpoint[];
}

export class StaticServiceView implements ServiceView {
  readonly #services: readonly MeshService[];
  readonly #byHost: ReadonlyMap<string, StaticServiceInput>;
  constructor(inputs: readonly StaticServiceInput[]) {
    const sorted = [...inputs].sort((a, b) =>
      a.service.hostname < b.service.hostname ? -1 : a.service.hostname > b.service.hostname ? 1 : 0,
    );
    this.#services = sorted.map((i) => i.service);
    this.#byHost = new Map(sorted.map((i) => [i.service.hostname, i]));
  }
  services(): readonly MeshService[] {
    return this.#services;
  }
  service(hostname: string): MeshService | undefined {
    return this.#byHost.get(hostname)?.service;
  }
  endpoints(hostname: string, servicePortName: string): ReadonlyMap<ClusterId, readonly MeshEndpoint[]> {
    const eps = (this.#byHost.get(hostname)?.endpoints ?? []).filter((e) => e.servicePortName === servicePortName);
    const shards = new Map<ClusterId, MeshEndpoint[]>();
    for (const ep of eps) {
      const list = shards.get(ep.clusterId) ?? [];
      list.push(ep);
      shards.set(ep.clusterId, list);
    }
    return new Map([...shards.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  servicesOfWorkload(clusterId: ClusterId, ip: string): readonly MeshService[] {
    return [...this.#byHost.values()]
      .filter((i) => i.endpoints.some((e) => e.clusterId === clusterId && e.address === ip))
      .map((i) => i.service);
  }
  /** A copy with one service's endpoints replaced (others shared): for endpoint-only changes in tests. */
  withEndpoints(hostname: string, endpoints: readonly MeshEndpoint[]): StaticServiceView {
    return new StaticServiceView(
      [...this.#byHost.values()].map((i) => (i.service.hostname === hostname ? { service: i.service, endpoints } : i)),
    );
  }
}
