/**
 * The real RemoteClusterFactory: a remote secret's kubeconfig, sanitised, becomes a KubeClient
 * and a ClusterRegistry writing to its own shard of the aggregate.
 */
import { setMaxListeners } from "node:events";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../base/index.js";
import { KubeClient, type ListWatcher, kubeConfigFromRemoteSecret } from "../kube/index.js";
import type { Aggregate } from "./aggregate.js";
import { ClusterRegistry } from "./cluster-registry.js";
import type { RemoteCluster, RemoteClusterFactory } from "./secret-controller.js";

export interface KubeRemoteClusterOptions {
  readonly aggregate: Aggregate;
  readonly trustDomain: string;
  readonly systemNamespace: string;
  readonly domainSuffix?: string;
  /** Network for remote endpoints whose pod and system namespace name none (Istio leaves it empty). */
  readonly defaultNetwork?: string;
  /** PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS. */
  readonly allow?: ReadonlySet<string>;
  readonly log: Logger;
  /** Builds the API client; tests may wrap it. Default: KubeClient. */
  readonly client?: (kc: KubeConfig) => ListWatcher;
}

/** A remote cluster backed by a ClusterRegistry; `client` also serves token reviews in that cluster. */
export interface KubeRemoteCluster extends RemoteCluster {
  readonly registry: ClusterRegistry;
  readonly client: ListWatcher;
}

/** Registry-backed remote clusters. Returned clusters do no I/O until start(). */
export function kubeRemoteClusterFactory(opts: KubeRemoteClusterOptions): RemoteClusterFactory<KubeRemoteCluster> {
  return (input) => {
    const kc = kubeConfigFromRemoteSecret({
      secretName: input.secretName,
      key: input.clusterId,
      kubeconfig: input.kubeconfig,
      ...(opts.allow ? { allow: opts.allow } : {}),
    });
    if (!kc.ok) return kc;
    const shard = opts.aggregate.createShard(input.clusterId);
    const log = opts.log.child(input.clusterId);
    const client = opts.client ? opts.client(kc.value) : new KubeClient(kc.value);
    const registry = new ClusterRegistry({
      clusterId: input.clusterId,
      client,
      shard,
      trustDomain: opts.trustDomain,
      defaultNetwork: opts.defaultNetwork ?? "",
      systemNamespace: opts.systemNamespace,
      ...(opts.domainSuffix ? { domainSuffix: opts.domainSuffix } : {}),
      log,
    });
    const abort = new AbortController();
    // Five informers and their requests listen on this one signal.
    setMaxListeners(0, abort.signal);
    let started = false;
    const cluster: KubeRemoteCluster = {
      registry,
      client,
      start() {
        if (started) return;
        started = true;
        registry.run(abort.signal).catch((err: unknown) => log.error("remote cluster registry stopped", { err }));
      },
      hasSynced: () => registry.hasSynced(),
      whenSynced: () => registry.waitForSync(abort.signal),
      activate: () => opts.aggregate.activate(shard),
      stop() {
        abort.abort();
        opts.aggregate.removeCluster(input.clusterId, shard);
      },
      lastError: () => registry.lastError(),
    };
    return { ok: true, value: cluster };
  };
}
