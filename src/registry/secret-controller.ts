/**
 * The multicluster secret controller: Secrets in the system namespace labelled
 * `istio/multiCluster=true`, each data key a cluster ID holding a kubeconfig, become remote
 * cluster registries. Add, replace (make-before-break: the new registry is shown only once it
 * has synced), remove; the control plane's own cluster ID is ignored; the first secret wins a
 * cluster ID. A kubeconfig that cannot be used is reported with the secret's name and the reason,
 * and disturbs nothing else.
 */
import { createHash } from "node:crypto";
import type { Checked, Logger } from "../base/index.js";
import type { Informer, Secret } from "../kube/index.js";
import type { ClusterId } from "../model/index.js";

export const MultiClusterSecretLabel = "istio/multiCluster";

/** Istio's remote cluster sync states. */
export type SyncStatus = "syncing" | "synced" | "timeout" | "closed";

/** A remote cluster's registry, as the secret controller drives it. */
export interface RemoteCluster {
  /** Starts watching the remote API server. */
  start(): void;
  /** True once the initial state has been converted. */
  hasSynced(): boolean;
  /** Resolves when synced (never rejects; it may never resolve for an unreachable server). */
  whenSynced(): Promise<void>;
  /** Makes its services and endpoints visible (replacing any previous registry of the same cluster ID). */
  activate(): void;
  /** Stops watching; if still visible, its services and endpoints disappear. */
  stop(): void;
  /** The current connection problem, if any (unreachable server, rejected token). */
  lastError(): string | undefined;
}

export interface RemoteClusterInput {
  readonly clusterId: ClusterId;
  /** `namespace/name` of the Secret. */
  readonly secretName: string;
  readonly kubeconfig: string;
}

/** Builds a remote cluster from a kubeconfig, or says why it cannot. Does no I/O. */
export type RemoteClusterFactory<C extends RemoteCluster = RemoteCluster> = (input: RemoteClusterInput) => Checked<C>;

/** Timers, injected so tests drive the sync timeout. */
export interface Clock {
  setTimeout(fn: () => void, ms: number): () => void;
}
export const realClock: Clock = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** One row of `/debug/clusterz`: Istio's fields, plus `error` when something is wrong. */
export interface ClusterDebugInfo {
  readonly id: ClusterId;
  readonly secretName: string;
  readonly syncStatus: SyncStatus | "failed";
  readonly error?: string;
}

export interface SecretControllerOptions<C extends RemoteCluster = RemoteCluster> {
  readonly ownClusterId: ClusterId;
  /** An informer on Secrets in the system namespace with the multicluster label selector. */
  readonly secrets: Informer<Secret>;
  readonly factory: RemoteClusterFactory<C>;
  /** PILOT_REMOTE_CLUSTER_TIMEOUT in ms; 0 disables the timeout. */
  readonly syncTimeoutMs: number;
  readonly clock?: Clock;
  readonly log: Logger;
  /** Called when a remote cluster fails to sync in time (for remote_cluster_sync_timeouts_total). */
  readonly onSyncTimeout?: (clusterId: ClusterId) => void;
}

interface Entry<C extends RemoteCluster> {
  readonly clusterId: ClusterId;
  readonly secretKey: string;
  hash: string;
  cluster: C;
  /** A replacement waiting to sync. */
  next: { cluster: C; hash: string } | undefined;
  closed: boolean;
  timedOut: boolean;
  cancelTimer: () => void;
}

/** A Secret's values as text: data (base64 as served by the API) over stringData. */
function decodeData(secret: Secret): Map<string, string> {
  const out = new Map<string, string>();
  // A real API server folds stringData into data; one that keeps it as written is read too.
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out.set(k, v);
  for (const [k, v] of Object.entries(secret.data ?? {})) out.set(k, Buffer.from(v, "base64").toString("utf8"));
  return out;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The controller. The constructor subscribes to the informer; the informer's owner runs it. */
export class SecretController<C extends RemoteCluster = RemoteCluster> {
  readonly #opts: SecretControllerOptions<C>;
  readonly #clock: Clock;
  readonly #entries = new Map<ClusterId, Entry<C>>();
  /** `secretKey|clusterId` -> reason */
  readonly #failures = new Map<string, { secretName: string; clusterId: ClusterId; reason: string }>();
  readonly #listeners = new Set<() => void>();

  constructor(opts: SecretControllerOptions<C>) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    opts.secrets.subscribe((e) => {
      const m = e.object.metadata;
      this.#process(`${m.namespace}/${m.name}`, e.type === "deleted" ? undefined : e.object);
      this.#notify();
    });
  }

  /** Adds a listener called after any change of clusters, statuses or failures; returns its remover. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #notify(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.#opts.log.error("secret controller listener threw", { err });
      }
    }
  }

  /** True once the secrets are listed and every remote cluster has synced, timed out or closed. */
  hasSynced(): boolean {
    if (!this.#opts.secrets.hasSynced()) return false;
    for (const e of this.#entries.values()) if (!e.closed && !e.timedOut && !e.cluster.hasSynced()) return false;
    return true;
  }

  /** Istio's status string of a remote cluster, or undefined when none is registered under that ID. */
  status(clusterId: ClusterId): SyncStatus | undefined {
    const e = this.#entries.get(clusterId);
    return e === undefined ? undefined : statusOf(e);
  }

  /** The active remote cluster registered under `clusterId` (for token reviews in that cluster). */
  cluster(clusterId: ClusterId): C | undefined {
    const e = this.#entries.get(clusterId);
    return e === undefined || e.closed ? undefined : e.cluster;
  }

  /** Remote cluster IDs in the order their secrets were processed. */
  clusterIds(): ClusterId[] {
    return [...this.#entries.keys()];
  }

  /** Rows for `/debug/clusterz`: every remote cluster, then every secret key that could not be used. */
  debugInfo(): ClusterDebugInfo[] {
    const rows: ClusterDebugInfo[] = [];
    for (const e of this.#entries.values()) {
      const nextErr = e.next?.cluster.lastError();
      // A replacement that cannot sync never takes over; say why, or the old kubeconfig looks current.
      const err = nextErr ? `the changed kubeconfig has not taken over: ${nextErr}` : e.cluster.lastError();
      rows.push({ id: e.clusterId, secretName: e.secretKey, syncStatus: statusOf(e), ...(err ? { error: err } : {}) });
    }
    for (const f of this.#failures.values()) {
      rows.push({ id: f.clusterId, secretName: f.secretName, syncStatus: "failed", error: f.reason });
    }
    return rows;
  }

  /** Stops every remote cluster (at shutdown). */
  close(): void {
    for (const e of this.#entries.values()) this.#close(e);
    this.#entries.clear();
  }

  #process(secretKey: string, secret: Secret | undefined): void {
    const { log, ownClusterId } = this.#opts;
    const data = secret ? decodeData(secret) : new Map<string, string>();
    for (const e of [...this.#entries.values()]) {
      if (e.secretKey === secretKey && !data.has(e.clusterId)) {
        log.info("remote cluster removed", { cluster: e.clusterId, secret: secretKey });
        this.#close(e);
        this.#entries.delete(e.clusterId);
      }
    }
    for (const [k, f] of [...this.#failures])
      if (f.secretName === secretKey && !data.has(f.clusterId)) this.#failures.delete(k);

    for (const [clusterId, kubeconfig] of data) {
      const failKey = `${secretKey}|${clusterId}`;
      if (clusterId === ownClusterId) {
        log.warn("ignoring remote secret key: it names this control plane's own cluster ID and would overwrite it", {
          cluster: clusterId,
          secret: secretKey,
        });
        continue;
      }
      const hash = sha256(kubeconfig);
      const existing = this.#entries.get(clusterId);
      if (existing !== undefined && existing.secretKey !== secretKey) {
        log.warn(
          "ignoring remote secret key: the cluster ID is already registered by another secret (the first wins)",
          {
            cluster: clusterId,
            secret: secretKey,
            registeredBy: existing.secretKey,
          },
        );
        continue;
      }
      if (existing !== undefined && (existing.next?.hash ?? existing.hash) === hash) continue;
      const built = this.#opts.factory({ clusterId, secretName: secretKey, kubeconfig });
      if (!built.ok) {
        const reason = built.reasons.join("; ");
        log.error("remote secret key cannot be used; nothing else changes", {
          cluster: clusterId,
          secret: secretKey,
          reason,
        });
        this.#failures.set(failKey, { secretName: secretKey, clusterId, reason });
        continue;
      }
      this.#failures.delete(failKey);
      if (existing === undefined) this.#add(clusterId, secretKey, hash, built.value);
      else this.#update(existing, hash, built.value);
    }
  }

  #add(clusterId: ClusterId, secretKey: string, hash: string, cluster: C): void {
    const e: Entry<C> = {
      clusterId,
      secretKey,
      hash,
      cluster,
      next: undefined,
      closed: false,
      timedOut: false,
      cancelTimer: () => {},
    };
    this.#entries.set(clusterId, e);
    this.#opts.log.info("remote cluster added", { cluster: clusterId, secret: secretKey });
    cluster.activate();
    cluster.start();
    this.#armTimeout(e, cluster);
    void cluster.whenSynced().then(() => {
      if (!e.closed && e.cluster === cluster && cluster.hasSynced()) this.#notify();
    });
  }

  #armTimeout(e: Entry<C>, cluster: C): void {
    e.cancelTimer();
    e.timedOut = false;
    if (this.#opts.syncTimeoutMs <= 0) return;
    e.cancelTimer = this.#clock.setTimeout(() => {
      if (e.closed || e.cluster !== cluster || cluster.hasSynced()) return;
      e.timedOut = true;
      this.#opts.log.warn(`remote cluster ${e.clusterId} failed to sync after ${this.#opts.syncTimeoutMs / 1000}s`, {
        cluster: e.clusterId,
        secret: e.secretKey,
        err: cluster.lastError(),
      });
      this.#opts.onSyncTimeout?.(e.clusterId);
      this.#notify();
    }, this.#opts.syncTimeoutMs);
  }

  #update(e: Entry<C>, hash: string, cluster: C): void {
    this.#opts.log.info("remote cluster kubeconfig changed; the new one takes over once synced", {
      cluster: e.clusterId,
      secret: e.secretKey,
    });
    e.next?.cluster.stop();
    e.next = { cluster, hash };
    cluster.start();
    void cluster.whenSynced().then(() => {
      if (e.closed || e.next?.cluster !== cluster) return;
      const old = e.cluster;
      cluster.activate();
      e.cluster = cluster;
      e.hash = hash;
      e.next = undefined;
      e.cancelTimer();
      e.timedOut = false;
      old.stop();
      this.#opts.log.info("remote cluster replaced", { cluster: e.clusterId, secret: e.secretKey });
      this.#notify();
    });
  }

  #close(e: Entry<C>): void {
    e.closed = true;
    e.cancelTimer();
    e.next?.cluster.stop();
    e.cluster.stop();
  }
}

function statusOf(e: Entry<RemoteCluster>): SyncStatus {
  if (e.closed) return "closed";
  if (e.cluster.hasSynced()) return "synced";
  if (e.timedOut) return "timeout";
  return "syncing";
}
