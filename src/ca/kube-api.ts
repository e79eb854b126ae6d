/**
 * The few Kubernetes calls the CA makes, as a structural interface: the local cluster's
 * in-process ApiClient and any HTTP client with the same shape satisfy it, so the CA runs
 * unchanged against local and real clusters.
 */

/** Names a resource collection; core group is "". */
export interface ResourceRef {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

/** Any Kubernetes object, as JSON. */
export interface KubeObjectLike {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    uid?: string;
    deletionTimestamp?: string;
  };
  [field: string]: unknown;
}

export interface CaKubeClient {
  get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObjectLike>;
  list(
    ref: ResourceRef,
    opts?: { namespace?: string; fieldSelector?: string; labelSelector?: string },
  ): Promise<{ items: KubeObjectLike[]; resourceVersion: string }>;
  watch(
    ref: ResourceRef,
    opts: { namespace?: string; resourceVersion?: string; fieldSelector?: string },
    signal: AbortSignal,
  ): AsyncIterable<{ type: string; object: KubeObjectLike }>;
  create(ref: ResourceRef, obj: KubeObjectLike): Promise<KubeObjectLike>;
  update(ref: ResourceRef, obj: KubeObjectLike): Promise<KubeObjectLike>;
}

export const Refs = {
  namespaces: { group: "", version: "v1", resource: "namespaces" },
  secrets: { group: "", version: "v1", resource: "secrets" },
  configmaps: { group: "", version: "v1", resource: "configmaps" },
  tokenreviews: { group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" },
  mutatingwebhookconfigurations: {
    group: "admissionregistration.k8s.io",
    version: "v1",
    resource: "mutatingwebhookconfigurations",
  },
} as const satisfies Record<string, ResourceRef>;

/** The HTTP status carried by an API error from any client (ApiError, client-node's ApiException), if any. */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown; status?: unknown };
  if (typeof e.code === "number") return e.code;
  if (typeof e.statusCode === "number") return e.statusCode;
  if (typeof e.status === "object" && e.status !== null) {
    const c = (e.status as { code?: unknown }).code;
    if (typeof c === "number") return c;
  }
  return undefined;
}

/** Reads a Secret's key as text, from `data` (base64, as stored) or `stringData`. */
export function secretText(secret: KubeObjectLike, key: string): string | undefined {
  const data = secret.data as Record<string, string> | undefined;
  if (data?.[key] !== undefined) return Buffer.from(data[key], "base64").toString("utf8");
  const stringData = secret.stringData as Record<string, string> | undefined;
  return stringData?.[key];
}
