/**
 * apiserver: the local cluster's object store and in-process API semantics (no HTTP; that is
 * apiserver/http/, which builds on what this file exports). Imports only base and devcluster/api.
 *
 * Use:
 * ```ts
 * const api = new LocalApi({ stateDir, serviceCidr: "10.201.3.0/24", clusterName: "c1", log });
 * await api.start();                 // loads state (or nothing, when stateDir is undefined)
 * const client = api.client();       // ApiClient as the internal controller user
 * const asUser = api.client(user);   // the same, acting as an authenticated user (admission sees it)
 * api.resources.all();               // ResourceInfo for discovery/OpenAPI (changes with CRDs: onChange)
 * await api.close();
 * ```
 * Clients returned are `LocalApiClient`: the shared ApiClient contract plus deleteCollection,
 * getSubresource (status/scale), listJson (items as stored JSON text), and write options
 * fieldValidation ("Strict" | "Warn" | "Ignore", unknown fields are dropped in every mode) and onWarning.
 * Subresources on writes: "status", "scale" (autoscaling/v1 Scale), "finalize" (namespaces),
 * "binding" (pods, create), "token" and virtual resources (routed to `virtualResources`).
 * Server-side apply: `client.apply(ref, ns, name, decodedBody, { fieldManager, force })` (simplified:
 * per-manager FieldsV1 in managedFields, no conflicts; the HTTP layer may route apply-patch+yaml to it).
 * Watch: `sendInitialEvents` (watch-list) is honoured; BOOKMARKs carry kind, apiVersion and resourceVersion.
 * Events: `recordEvent(client, regarding, { type, reason, message, component })`.
 * The composition root calls `ensureKubernetesService({ ip, port })` once the HTTPS server listens.
 * Namespaces: delete sets deletionTimestamp, status.phase Terminating and keeps spec.finalizers
 * ["kubernetes"]; the namespace controller empties the namespace, then updates the `finalize`
 * subresource with spec.finalizers [] (client.update(Resources.namespaces, ns, { subresource: "finalize" })),
 * and the namespace is removed. Pods bound to a node (spec.nodeName) are deleted gracefully: delete
 * sets deletionTimestamp (+grace); the node deletes again with gracePeriodSeconds 0 when the pod is gone.
 */
import type { Logger } from "../../base/index.js";
import type { Admission, VirtualResource } from "../api/plugins.js";
import { type KubeObject, Resources, type UserInfo, isApiError } from "../api/types.js";
import { Engine, type LocalApiClient, internalUser } from "./api.js";
import { ResourceRegistry } from "./registry.js";
import { Store } from "./store.js";
import { Wal } from "./wal.js";

export type { EngineWatchOptions, EngineWriteOptions, LocalApiClient } from "./api.js";
export { internalUser, selectorString } from "./api.js";
export type { PrinterColumn, ResourceInfo } from "./registry.js";
export { ResourceRegistry, apiVersionOf } from "./registry.js";
export { checkFields, kubeTypes, modelOf, openApiSchemas, patchMeta, pruneFields, rootModels } from "./schema.js";
export type { KubeTypeTable } from "./schema.js";
export { parseFieldSelector, parseLabelSelector, matchLabelSelector } from "./selectors.js";
export type { LabelSelector } from "./selectors.js";
export * as statusErrors from "./errors.js";
export { type EventRecord, newEvent, recordEvent } from "./events.js";

export interface LocalApiOptions {
  /** Folder for the object log and snapshot; undefined keeps everything in memory. */
  stateDir?: string;
  /** IPv4 CIDR ClusterIPs come from, e.g. "10.201.3.0/24"; `.1` is the `kubernetes` Service's, `.10` kube-dns's. */
  serviceCidr: string;
  clusterName: string;
  admission?: Admission;
  /** Keyed by virtualResourceKey(): TokenReview, SubjectAccessReview, serviceaccounts/token ... */
  virtualResources?: Map<string, VirtualResource>;
  log: Logger;
  /** Changes kept for watches from an older resourceVersion (default 10,000). */
  historyWindow?: number;
  /** Events one watcher may have queued before it is closed with 410 (default 10,000). */
  watcherQueueLimit?: number;
  /** Interval of BOOKMARK events for watches that allow them (default 30 s). */
  bookmarkIntervalMs?: number;
  /** Log records after which the object log is compacted into a snapshot (default 50,000). */
  compactAfter?: number;
  /** Create default, kube-system, kube-public and kube-node-lease when missing (default true). */
  bootstrapNamespaces?: boolean;
  /** Delete node-bound pods gracefully, as Kubernetes does (default true). */
  gracefulPodDeletion?: boolean;
}

/**
 * One local cluster's API: store, persistence and semantics. The constructor does no I/O;
 * `start()` loads state; `close()` waits for queued writes and ends every watch.
 */
export class LocalApi {
  /** Every served resource; custom resources appear when their CRD is created. */
  readonly resources = new ResourceRegistry();
  readonly #opts: LocalApiOptions;
  readonly #store: Store;
  readonly #engine: Engine;
  #wal: Wal | undefined;
  #started = false;

  constructor(opts: LocalApiOptions) {
    this.#opts = opts;
    this.#store = new Store({
      log: opts.log,
      ...(opts.historyWindow !== undefined ? { historyWindow: opts.historyWindow } : {}),
      ...(opts.watcherQueueLimit !== undefined ? { watcherQueueLimit: opts.watcherQueueLimit } : {}),
      ...(opts.bookmarkIntervalMs !== undefined ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
    });
    this.#engine = new Engine({
      store: this.#store,
      registry: this.resources,
      serviceCidr: opts.serviceCidr,
      log: opts.log,
      ...(opts.admission !== undefined ? { admission: opts.admission } : {}),
      ...(opts.virtualResources !== undefined ? { virtualResources: opts.virtualResources } : {}),
      ...(opts.gracefulPodDeletion !== undefined ? { gracefulPodDeletion: opts.gracefulPodDeletion } : {}),
    });
  }

  /** Loads stored objects (the resourceVersion counter continues), then creates the system namespaces if missing. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#opts.stateDir !== undefined) {
      const wal = new Wal({
        dir: this.#opts.stateDir,
        log: this.#opts.log,
        snapshot: () => this.#store.snapshot(),
        ...(this.#opts.compactAfter !== undefined ? { compactAfter: this.#opts.compactAfter } : {}),
      });
      const state = await wal.load();
      this.#wal = wal;
      this.#store.loadFrom(state, wal);
    }
    this.#engine.reindex();
    if (this.#opts.bootstrapNamespaces !== false) {
      const c = this.client();
      for (const name of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
        try {
          await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
        } catch (err) {
          if (!isApiError(err, 409)) throw err;
        }
      }
    }
  }

  /** An ApiClient acting as `user` (default: the internal controller-manager user, who passes admission as any caller). */
  client(user: UserInfo = internalUser): LocalApiClient {
    return this.#engine.client(user);
  }

  /** The newest resourceVersion (diagnostics, /metrics, tests). */
  get resourceVersion(): string {
    return String(this.#store.resourceVersion);
  }

  /** Open watches (diagnostics, tests). */
  watcherCount(): number {
    return this.#store.watcherCount();
  }

  /** The ClusterIP at `offset` of the service range (1: the `kubernetes` Service, 10: kube-dns). */
  serviceIp(offset: number): string {
    return this.#engine.ips.at(offset);
  }

  /**
   * Creates or refreshes the `kubernetes` Service in `default` (ClusterIP `.1`, port 443) with
   * Endpoints and an EndpointSlice naming the API server's address, as kube-apiserver does at start.
   */
  async ensureKubernetesService(endpoint: { ip: string; port: number }): Promise<void> {
    const c = this.client();
    const svc: KubeObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "kubernetes",
        namespace: "default",
        labels: { component: "apiserver", provider: "kubernetes" },
      },
      spec: {
        type: "ClusterIP",
        clusterIP: this.serviceIp(1),
        ports: [{ name: "https", port: 443, protocol: "TCP", targetPort: endpoint.port }],
        sessionAffinity: "None",
      },
    };
    try {
      await c.create(Resources.services, svc);
    } catch (err) {
      if (!isApiError(err, 409)) throw err;
      const cur = await c.get(Resources.services, "default", "kubernetes");
      await c.update(Resources.services, { ...cur, spec: { ...(cur.spec as object), ...(svc.spec as object) } });
    }
    const eps: KubeObject = {
      apiVersion: "v1",
      kind: "Endpoints",
      metadata: {
        name: "kubernetes",
        namespace: "default",
        labels: { "endpointslice.kubernetes.io/skip-mirror": "true" },
      },
      subsets: [{ addresses: [{ ip: endpoint.ip }], ports: [{ name: "https", port: endpoint.port, protocol: "TCP" }] }],
    };
    const slice: KubeObject = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: "kubernetes",
        namespace: "default",
        labels: {
          "kubernetes.io/service-name": "kubernetes",
          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        },
      },
      addressType: "IPv4",
      endpoints: [{ addresses: [endpoint.ip], conditions: { ready: true } }],
      ports: [{ name: "https", port: endpoint.port, protocol: "TCP" }],
    };
    for (const [ref, obj] of [
      [Resources.endpoints, eps],
      [Resources.endpointslices, slice],
    ] as const) {
      try {
        await c.create(ref, obj);
      } catch (err) {
        if (!isApiError(err, 409)) throw err;
        const cur = await c.get(ref, "default", "kubernetes");
        await c.update(ref, { ...obj, metadata: { ...obj.metadata, resourceVersion: cur.metadata.resourceVersion } });
      }
    }
  }

  /** Ends every watch and waits for queued writes to reach the disk. */
  async close(): Promise<void> {
    this.#store.closeWatchers();
    await this.#wal?.close();
  }
}
