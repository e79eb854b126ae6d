/**
 * The contract between the local cluster's API machinery and the components that run
 * inside the same process (controllers, the node). They use ApiClient, which has the
 * same semantics as the HTTP API (validation, admission, resourceVersion, watch), so a
 * pod created by the ReplicaSet controller is injected exactly like one created by kubectl.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  managedFields?: unknown[];
}

/** Any Kubernetes object, as JSON. Typed access goes through the caller's own narrow interfaces. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** Names a resource collection: `{ group: "apps", version: "v1", resource: "deployments" }`; core group is "". */
export interface ResourceRef {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

export const Resources = {
  namespaces: { group: "", version: "v1", resource: "namespaces" },
  pods: { group: "", version: "v1", resource: "pods" },
  services: { group: "", version: "v1", resource: "services" },
  endpoints: { group: "", version: "v1", resource: "endpoints" },
  secrets: { group: "", version: "v1", resource: "secrets" },
  configmaps: { group: "", version: "v1", resource: "configmaps" },
  serviceaccounts: { group: "", version: "v1", resource: "serviceaccounts" },
  nodes: { group: "", version: "v1", resource: "nodes" },
  events: { group: "", version: "v1", resource: "events" },
  deployments: { group: "apps", version: "v1", resource: "deployments" },
  replicasets: { group: "apps", version: "v1", resource: "replicasets" },
  endpointslices: { group: "discovery.k8s.io", version: "v1", resource: "endpointslices" },
  roles: { group: "rbac.authorization.k8s.io", version: "v1", resource: "roles" },
  rolebindings: { group: "rbac.authorization.k8s.io", version: "v1", resource: "rolebindings" },
  clusterroles: { group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles" },
  clusterrolebindings: { group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterrolebindings" },
  mutatingwebhookconfigurations: {
    group: "admissionregistration.k8s.io",
    version: "v1",
    resource: "mutatingwebhookconfigurations",
  },
  validatingwebhookconfigurations: {
    group: "admissionregistration.k8s.io",
    version: "v1",
    resource: "validatingwebhookconfigurations",
  },
  customresourcedefinitions: { group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions" },
  leases: { group: "coordination.k8s.io", version: "v1", resource: "leases" },
} as const satisfies Record<string, ResourceRef>;

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject;
}

export interface ListOptions {
  /** Omit for all namespaces (or for cluster-scoped resources). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
}

export interface WatchOptions extends ListOptions {
  /** Start after this resourceVersion; "" or "0" means "send the current state as ADDED first". */
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
}

export interface ObjectList {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
}

export type PatchType =
  | "application/merge-patch+json"
  | "application/json-patch+json"
  | "application/strategic-merge-patch+json";

export interface WriteOptions {
  /** "status", "scale", or "token" (TokenRequest on serviceaccounts), as in the URL. */
  subresource?: string;
  /** Who performs the write; defaults to the cluster's internal superuser `system:kube-controller-manager`. */
  user?: UserInfo;
  dryRun?: boolean;
  fieldManager?: string;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: "Orphan" | "Background" | "Foreground";
  preconditions?: { uid?: string; resourceVersion?: string };
  user?: UserInfo;
}

/** Kubernetes' user.Info. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** A `Status` body as the API server returns it for failures. */
export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure" | "Success";
  message: string;
  reason: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    uid?: string;
    causes?: { reason?: string; message: string; field?: string }[];
    retryAfterSeconds?: number;
  };
  code: number;
}

/** Thrown by ApiClient for every non-2xx outcome; `status` is exactly what HTTP clients receive. */
export class ApiError extends Error {
  readonly status: StatusBody;
  constructor(status: StatusBody) {
    super(status.message);
    this.name = "ApiError";
    this.status = status;
  }
  get code(): number {
    return this.status.code;
  }
  get reason(): string {
    return this.status.reason;
  }
}

/** True when `err` is an ApiError with the given HTTP code (e.g. 404, 409). */
export function isApiError(err: unknown, code?: number): err is ApiError {
  return err instanceof ApiError && (code === undefined || err.code === code);
}

/**
 * In-process access to one local cluster's API, with the HTTP API's semantics.
 * Every method rejects with ApiError where the HTTP API would answer non-2xx.
 */
export interface ApiClient {
  get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObject>;
  list(ref: ResourceRef, opts?: ListOptions): Promise<ObjectList>;
  /** Events until `signal` aborts or the watch expires (then one ERROR event with a 410 Status, and the iterator ends). */
  watch(ref: ResourceRef, opts: WatchOptions, signal: AbortSignal): AsyncIterable<WatchEvent>;
  create(ref: ResourceRef, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>;
  /** PUT; a stale metadata.resourceVersion rejects with 409 Conflict. */
  update(ref: ResourceRef, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>;
  patch(
    ref: ResourceRef,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts?: WriteOptions,
  ): Promise<KubeObject>;
  /** Returns the object as stored after the call: with deletionTimestamp set when finalizers hold it, else as it was. */
  delete(ref: ResourceRef, namespace: string | undefined, name: string, opts?: DeleteOptions): Promise<KubeObject>;
}
