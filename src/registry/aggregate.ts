/**
 * The aggregate view over every Kubernetes cluster's registry: services merged by hostname
 * (the first cluster that has a hostname gives its ports, every cluster adds its ClusterIP,
 * service accounts are unioned), endpoints kept in one shard per cluster ID. Each change is
 * classified as Istio does: a service or service-account change needs a full push, an
 * endpoint-only change needs EDS for that hostname only.
 */
import type { Logger } from "../base/index.js";
import type { ClusterId, MeshEndpoint, MeshService, ServiceView } from "../model/index.js";
import type { ClusterService } from "./convert.js";

/** What changed since the last notification. */
export interface RegistryChange {
  /** True when services, their ports, VIPs or service accounts changed, or a cluster came or went. */
  readonly full: boolean;
  /** Hostnames whose endpoints changed (meaningful when `full` is false). */
  readonly edsHostnames: ReadonlySet<string>;
  /** Short reasons, for push logs. */
  readonly reasons: readonly string[];
}

/** Where one cluster's registry writes. Writes to a shard that is not active are kept but not shown. */
export interface ShardWriter {
  readonly clusterId: ClusterId;
  setService(hostname: string, svc: ClusterService | undefined): void;
  setEndpoints(hostname: string, endpoints: readonly MeshEndpoint[]): void;
}

class Shard implements ShardWriter {
  readonly clusterId: ClusterId;
  readonly services = new Map<string, ClusterService>();
  readonly endpoints = new Map<string, readonly MeshEndpoint[]>();
  readonly #owner: Aggregate;
  constructor(owner: Aggregate, clusterId: ClusterId) {
    this.#owner = owner;
    this.clusterId = clusterId;
  }
  setService(hostname: string, svc: ClusterService | undefined): void {
    const prev = this.services.get(hostname);
    if (svc === undefined) {
      if (prev === undefined) return;
      this.services.delete(hostname);
      this.endpoints.delete(hostname);
    } else {
      if (prev !== undefined && JSON.stringify(prev) === JSON.stringify(svc)) return;
      this.services.set(hostname, svc);
    }
    this.#owner.changed(this, { full: true, hostname, reason: `service ${hostname} in ${this.clusterId}` });
  }
  setEndpoints(hostname: string, endpoints: readonly MeshEndpoint[]): void {
    const prev = this.endpoints.get(hostname) ?? [];
    if (JSON.stringify(prev) === JSON.stringify(endpoints)) return;
    const saBefore = serviceAccountsOf(prev).join(",");
    if (endpoints.length === 0) this.endpoints.delete(hostname);
    else this.endpoints.set(hostname, endpoints);
    // A changed service-account set changes the SAN lists every client verifies: a full push (as Istio).
    const full = serviceAccountsOf(endpoints).join(",") !== saBefore;
    this.#owner.changed(this, { full, hostname, reason: `endpoints ${hostname} in ${this.clusterId}` });
  }
}

function serviceAccountsOf(eps: readonly MeshEndpoint[]): string[] {
  return [...new Set(eps.map((e) => e.serviceAccount).filter((s) => s !== ""))].sort();
}

export interface AggregateOptions {
  /** The control plane's own cluster: its service definitions win a hostname. */
  readonly ownClusterId: ClusterId;
  readonly log: Logger;
}

/** The merged registry. Listeners are notified once per burst of writes (coalesced in a microtask). */
export class Aggregate {
  readonly #opts: AggregateOptions;
  /** Active shards in the order clusters were added, own cluster first. */
  readonly #active = new Map<ClusterId, Shard>();
  readonly #listeners = new Set<(c: RegistryChange) => void>();
  #pending: { full: boolean; eds: Set<string>; reasons: string[] } | undefined;
  #view: Snapshot | undefined;

  constructor(opts: AggregateOptions) {
    this.#opts = opts;
  }

  /** A new, inactive shard for `clusterId`. It becomes visible through activate(). */
  createShard(clusterId: ClusterId): ShardWriter {
    return new Shard(this, clusterId);
  }

  /**
   * Makes `shard` the one shown for its cluster ID, replacing any previous one (make-before-break:
   * call it once the new registry has synced). Always a full push.
   */
  activate(shard: ShardWriter): void {
    if (!(shard instanceof Shard)) throw new TypeError("activate() takes a shard made by createShard()");
    const prev = this.#active.get(shard.clusterId);
    if (prev === shard) return;
    if (prev === undefined && shard.clusterId === this.#opts.ownClusterId) {
      const rest = [...this.#active];
      this.#active.clear();
      this.#active.set(shard.clusterId, shard);
      for (const [k, v] of rest) this.#active.set(k, v);
    } else {
      this.#active.set(shard.clusterId, shard);
    }
    this.#note(true, undefined, prev ? `cluster ${shard.clusterId} replaced` : `cluster ${shard.clusterId} added`);
  }

  /** Removes every service and endpoint of `clusterId` (only if `shard` is given, when it is still the active one). */
  removeCluster(clusterId: ClusterId, shard?: ShardWriter): void {
    const cur = this.#active.get(clusterId);
    if (cur === undefined || (shard !== undefined && cur !== shard)) return;
    this.#active.delete(clusterId);
    this.#note(true, undefined, `cluster ${clusterId} removed`);
  }

  /** True when `shard` is the one shown for its cluster. */
  isActive(shard: ShardWriter): boolean {
    return this.#active.get(shard.clusterId) === shard;
  }

  /** Cluster IDs shown, own cluster first. */
  clusterIds(): ClusterId[] {
    return [...this.#active.keys()];
  }

  /** Adds a change listener; returns its remover. */
  onChange(listener: (c: RegistryChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** @internal Called by shards. */
  changed(shard: Shard, c: { full: boolean; hostname: string; reason: string }): void {
    if (!this.isActive(shard)) return;
    this.#note(c.full, c.hostname, c.reason);
  }

  #note(full: boolean, hostname: string | undefined, reason: string): void {
    this.#view = undefined;
    if (this.#pending === undefined) {
      this.#pending = { full: false, eds: new Set(), reasons: [] };
      queueMicrotask(() => this.#flush());
    }
    const p = this.#pending;
    p.full ||= full;
    if (hostname !== undefined) p.eds.add(hostname);
    if (p.reasons.length < 20) p.reasons.push(reason);
  }

  #flush(): void {
    const p = this.#pending;
    this.#pending = undefined;
    if (p === undefined) return;
    const change: RegistryChange = { full: p.full, edsHostnames: p.eds, reasons: p.reasons };
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (err) {
        this.#opts.log.error("registry change listener threw", { err });
      }
    }
  }

  /** The current merged view: an immutable snapshot, rebuilt only after a change. */
  view(): ServiceView {
    this.#view ??= new Snapshot([...this.#active.values()]);
    return this.#view;
  }
}

/** An immutable merged view, the input of the pure xDS generators. */
class Snapshot implements ServiceView {
  readonly #services = new Map<string, MeshService>();
  readonly #sorted: MeshService[];
  /** hostname -> clusterId -> endpoints (all ports) */
  readonly #endpoints = new Map<string, Map<ClusterId, readonly MeshEndpoint[]>>();
  /** `clusterId|ip` -> hostnames */
  readonly #byWorkload = new Map<string, Set<string>>();

  constructor(shards: readonly Shard[]) {
    const merged = new Map<string, { first: ClusterService; vips: Map<ClusterId, string>; sas: Set<string> }>();
    for (const shard of shards) {
      for (const [host, svc] of shard.services) {
        let m = merged.get(host);
        if (m === undefined) {
          m = { first: svc, vips: new Map(), sas: new Set() };
          merged.set(host, m);
        }
        if (svc.vip !== undefined) m.vips.set(shard.clusterId, svc.vip);
        const eps = shard.endpoints.get(host) ?? [];
        for (const ep of eps) {
          if (ep.serviceAccount) m.sas.add(ep.serviceAccount);
          const key = `${shard.clusterId}|${ep.address}`;
          let hosts = this.#byWorkload.get(key);
          if (hosts === undefined) {
            hosts = new Set();
            this.#byWorkload.set(key, hosts);
          }
          hosts.add(host);
        }
        if (eps.length > 0) {
          let byCluster = this.#endpoints.get(host);
          if (byCluster === undefined) {
            byCluster = new Map();
            this.#endpoints.set(host, byCluster);
          }
          byCluster.set(shard.clusterId, eps);
        }
      }
    }
    for (const [host, m] of merged) {
      this.#services.set(host, {
        hostname: host,
        name: m.first.name,
        namespace: m.first.namespace,
        ports: m.first.ports,
        clusterVips: m.vips,
        serviceAccounts: [...m.sas].sort(),
        clusterLocal: m.first.clusterLocal,
      });
    }
    this.#sorted = [...this.#services.values()].sort((a, b) =>
      a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0,
    );
  }

  services(): readonly MeshService[] {
    return this.#sorted;
  }

  service(hostname: string): MeshService | undefined {
    return this.#services.get(hostname);
  }

  endpoints(hostname: string, servicePortName: string): ReadonlyMap<ClusterId, readonly MeshEndpoint[]> {
    const out = new Map<ClusterId, readonly MeshEndpoint[]>();
    const byCluster = this.#endpoints.get(hostname);
    if (byCluster === undefined) return out;
    for (const id of [...byCluster.keys()].sort()) {
      const eps = (byCluster.get(id) ?? []).filter((e) => e.servicePortName === servicePortName);
      if (eps.length > 0) out.set(id, eps);
    }
    return out;
  }

  servicesOfWorkload(clusterId: ClusterId, ip: string): readonly MeshService[] {
    const hosts = this.#byWorkload.get(`${clusterId}|${ip}`);
    if (hosts === undefined) return [];
    return [...hosts]
      .sort()
      .map((h) => this.#services.get(h))
      .filter((s): s is MeshService => s !== undefined);
  }
}
