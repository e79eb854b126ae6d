/**
 * The registry of one Kubernetes cluster: informers on Services, EndpointSlices, Pods, Nodes and
 * Namespaces, turned into this cluster's shard of the aggregate. Handlers only mark services
 * dirty; a batch reconciles each dirty service from the caches, so a burst of events for one
 * service costs one conversion.
 */
import type { Logger } from "../base/index.js";
import {
  type EndpointSlice,
  Informer,
  type ListWatcher,
  type Namespace,
  type Node,
  type Pod,
  ResourceTypes,
  type Service,
  SyncGate,
} from "../kube/index.js";
import type { ClusterId, NetworkId } from "../model/index.js";
import type { ShardWriter } from "./aggregate.js";
import { LabelServiceName, serviceHostname, toClusterService, toMeshEndpoints } from "./convert.js";

export interface ClusterRegistryOptions {
  readonly clusterId: ClusterId;
  readonly client: ListWatcher;
  readonly shard: ShardWriter;
  readonly trustDomain: string;
  /** Network for endpoints whose pod and system namespace name none. */
  readonly defaultNetwork: NetworkId;
  /** Istio's system namespace, whose `topology.istio.io/network` label names the cluster's network. */
  readonly systemNamespace: string;
  readonly domainSuffix?: string;
  readonly log: Logger;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** One cluster's registry. The constructor only wires handlers; nothing runs until run(). */
export class ClusterRegistry {
  readonly clusterId: ClusterId;
  readonly #opts: ClusterRegistryOptions;
  readonly #services: Informer<Service>;
  readonly #slices: Informer<EndpointSlice>;
  readonly #pods: Informer<Pod>;
  readonly #nodes: Informer<Node>;
  readonly #namespaces: Informer<Namespace>;
  readonly #dirty = new Set<string>();
  /** `ns/pod` and `ip` and `node:<name>` -> service keys whose endpoints used them */
  readonly #uses = new Map<string, Set<string>>();
  /** service key -> what its last conversion used (to forget it on the next one) */
  readonly #usedBy = new Map<string, Set<string>>();
  readonly #synced = new SyncGate();
  #flushScheduled = false;
  #informersSynced = false;

  constructor(opts: ClusterRegistryOptions) {
    this.#opts = opts;
    this.clusterId = opts.clusterId;
    const mk = <T extends Service | EndpointSlice | Pod | Node | Namespace>(
      type: (typeof ResourceTypes)[keyof typeof ResourceTypes],
    ) =>
      new Informer<T>({
        client: opts.client,
        type,
        log: opts.log.child(type.plural),
        ...(opts.sleep ? { sleep: opts.sleep } : {}),
      });
    this.#services = mk<Service>(ResourceTypes.services);
    this.#slices = mk<EndpointSlice>(ResourceTypes.endpointslices);
    this.#pods = mk<Pod>(ResourceTypes.pods);
    this.#nodes = mk<Node>(ResourceTypes.nodes);
    this.#namespaces = mk<Namespace>(ResourceTypes.namespaces);

    this.#services.subscribe((e) => this.#mark(`${e.object.metadata.namespace}/${e.object.metadata.name}`));
    this.#slices.subscribe((e) => {
      for (const s of e.type === "updated" ? [e.object, e.previous] : [e.object]) {
        const svc = s.metadata.labels?.[LabelServiceName];
        if (svc) this.#mark(`${s.metadata.namespace}/${svc}`);
      }
    });
    this.#pods.subscribe((e) => {
      const p = e.object;
      this.#markUsers(`${p.metadata.namespace}/${p.metadata.name}`);
      for (const ip of podIps(p)) this.#markUsers(ip);
      if (e.type === "updated") for (const ip of podIps(e.previous)) this.#markUsers(ip);
    });
    this.#nodes.subscribe((e) => this.#markUsers(`node:${e.object.metadata.name}`));
    this.#namespaces.subscribe((e) => {
      if (e.object.metadata.name === opts.systemNamespace) for (const s of this.#services.list()) this.#mark(keyOf(s));
    });
  }

  /** True once every object present at start has been converted and written to the shard. */
  hasSynced(): boolean {
    return this.#synced.isOpen();
  }

  /** Resolves once synced or when `signal` aborts. */
  waitForSync(signal: AbortSignal): Promise<void> {
    return this.#synced.wait(signal);
  }

  /** The current list/watch failure of any informer (e.g. the API server is unreachable), else undefined. */
  lastError(): string | undefined {
    for (const inf of this.#informers()) {
      const e = inf.lastError();
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** A cached Namespace (for the injection webhook's namespace check). */
  namespace(name: string): Namespace | undefined {
    return this.#namespaces.get(name);
  }

  /** Cached pods, for the control plane's debug views and proxy lookups. */
  pods(): readonly Pod[] {
    return this.#pods.list();
  }

  #informers() {
    return [this.#services, this.#slices, this.#pods, this.#nodes, this.#namespaces] as const;
  }

  /** Runs every informer until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const runs = this.#informers().map((inf) => inf.run(signal));
    void (async () => {
      await Promise.all(this.#informers().map((inf) => inf.waitForSync(signal)));
      if (signal.aborted) return;
      this.#informersSynced = true;
      for (const s of this.#services.list()) this.#mark(keyOf(s));
      this.#flush();
      this.#synced.open();
      this.#opts.log.info("cluster registry synced", {
        cluster: this.clusterId,
        services: this.#services.list().length,
      });
    })();
    await Promise.all(runs);
  }

  #mark(key: string): void {
    this.#dirty.add(key);
    if (!this.#informersSynced || this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #markUsers(use: string): void {
    for (const key of this.#uses.get(use) ?? []) this.#mark(key);
  }

  #use(use: string, key: string): void {
    let s = this.#uses.get(use);
    if (s === undefined) {
      s = new Set();
      this.#uses.set(use, s);
    }
    s.add(key);
    let u = this.#usedBy.get(key);
    if (u === undefined) {
      u = new Set();
      this.#usedBy.set(key, u);
    }
    u.add(use);
  }

  /** Forgets what `key`'s last conversion used, so the index stays as large as the live endpoints. */
  #forget(key: string): void {
    for (const use of this.#usedBy.get(key) ?? []) {
      const s = this.#uses.get(use);
      s?.delete(key);
      if (s?.size === 0) this.#uses.delete(use);
    }
    this.#usedBy.delete(key);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const key of keys) this.#reconcile(key);
  }

  #reconcile(key: string): void {
    const { shard, domainSuffix, trustDomain, clusterId, defaultNetwork, systemNamespace } = this.#opts;
    this.#forget(key);
    const [namespace = "", name = ""] = key.split("/");
    const hostname = serviceHostname(name, namespace, domainSuffix);
    const svc = this.#services.get(name, namespace);
    const cs = svc ? toClusterService(svc, domainSuffix) : undefined;
    if (cs === undefined) {
      shard.setEndpoints(hostname, []);
      shard.setService(hostname, undefined);
      return;
    }
    const slices = this.#slices.list(namespace, { [LabelServiceName]: name });
    const endpoints = toMeshEndpoints(cs, slices, {
      clusterId,
      trustDomain,
      defaultNetwork,
      systemNamespace: this.#namespaces.get(systemNamespace),
      pod: (ns, podName, ip) => {
        this.#use(ip, key);
        if (podName !== undefined) {
          this.#use(`${ns}/${podName}`, key);
          const p = this.#pods.get(podName, ns);
          if (p !== undefined) return p;
        }
        return this.#pods.list(ns).find((p) => podIps(p).includes(ip));
      },
      node: (n) => {
        this.#use(`node:${n}`, key);
        return this.#nodes.get(n);
      },
    });
    shard.setService(hostname, cs);
    shard.setEndpoints(hostname, endpoints);
  }
}

function keyOf(s: Service): string {
  return `${s.metadata.namespace}/${s.metadata.name}`;
}

function podIps(p: Pod): string[] {
  const ips = (p.status?.podIPs ?? []).map((x) => x.ip);
  if (p.status?.podIP && !ips.includes(p.status.podIP)) ips.push(p.status.podIP);
  return ips;
}
