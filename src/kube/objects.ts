/**
 * Narrow views of the Kubernetes objects the mesh reads, as they arrive in JSON. Only the
 * fields the mesh uses are declared; everything is optional where the API allows it to be absent.
 */

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string;
  readonly ownerReferences?: readonly { readonly kind: string; readonly name: string; readonly controller?: boolean }[];
}

/** Any object with metadata; typed access goes through the interfaces below. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
}

export interface ServicePortSpec {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface Service extends KubeObject {
  readonly spec?: {
    readonly type?: string;
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
    readonly ports?: readonly ServicePortSpec[];
    readonly selector?: Readonly<Record<string, string>>;
    readonly externalName?: string;
  };
}

export interface EndpointSliceEndpoint {
  readonly addresses: readonly string[];
  readonly conditions?: {
    readonly ready?: boolean | null;
    readonly serving?: boolean | null;
    readonly terminating?: boolean | null;
  };
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string };
}

export interface EndpointSlice extends KubeObject {
  readonly addressType?: string;
  readonly endpoints?: readonly EndpointSliceEndpoint[] | null;
  readonly ports?:
    | readonly {
        readonly name?: string | null;
        readonly port?: number | null;
        readonly protocol?: string;
        readonly appProtocol?: string;
      }[]
    | null;
}

export interface Pod extends KubeObject {
  readonly spec?: { readonly serviceAccountName?: string; readonly nodeName?: string; readonly hostNetwork?: boolean };
  readonly status?: {
    readonly podIP?: string;
    readonly podIPs?: readonly { readonly ip: string }[];
    readonly phase?: string;
  };
}

export type Node = KubeObject;
export type Namespace = KubeObject;

export interface Secret extends KubeObject {
  /** Values are base64, as the API serves them. */
  readonly data?: Readonly<Record<string, string>>;
  /** Write-only in Kubernetes (merged into data); read too, for API servers that keep it. */
  readonly stringData?: Readonly<Record<string, string>>;
  readonly type?: string;
}

export interface ConfigMap extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

/** A resource collection as it appears in URLs: core group is "". */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

/** The collections the mesh reads. */
export const ResourceTypes = {
  services: { group: "", version: "v1", plural: "services", namespaced: true },
  pods: { group: "", version: "v1", plural: "pods", namespaced: true },
  namespaces: { group: "", version: "v1", plural: "namespaces", namespaced: false },
  nodes: { group: "", version: "v1", plural: "nodes", namespaced: false },
  secrets: { group: "", version: "v1", plural: "secrets", namespaced: true },
  configmaps: { group: "", version: "v1", plural: "configmaps", namespaced: true },
  endpointslices: { group: "discovery.k8s.io", version: "v1", plural: "endpointslices", namespaced: true },
} as const satisfies Record<string, ResourceType>;

/** The URL path of a collection, optionally in one namespace, optionally of one object. */
export function resourcePath(type: ResourceType, namespace?: string, name?: string): string {
  const base = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const ns = type.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const obj = name ? `/${encodeURIComponent(name)}` : "";
  return `${base}${ns}/${type.plural}${obj}`;
}

/** `namespace/name` (or `name` for cluster-scoped objects): the cache key of an object. */
export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

/** True when `value` looks like a Kubernetes object (has metadata.name). */
export function isKubeObject(value: unknown): value is KubeObject {
  if (typeof value !== "object" || value === null) return false;
  const meta = (value as { metadata?: unknown }).metadata;
  return typeof meta === "object" && meta !== null && typeof (meta as { name?: unknown }).name === "string";
}

/** Whether `labels` match every key=value of `selector`. */
export function labelsMatch(
  labels: Readonly<Record<string, string>> | undefined,
  selector: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}
