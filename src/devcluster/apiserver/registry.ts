/**
 * The resource registry: every resource the local API server serves, built-in or defined by a
 * CustomResourceDefinition, with what discovery and OpenAPI need (kinds, scopes, shortNames,
 * verbs, subresources, categories). The HTTP layer builds discovery from it; the store routes by it.
 */
import type { KubeObject, ResourceRef } from "../api/types.js";

/** One served resource (one group/version/plural). */
export interface ResourceInfo {
  readonly group: string;
  readonly version: string;
  /** The plural, as in URLs: "deployments". */
  readonly resource: string;
  readonly kind: string;
  readonly listKind: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
  /** e.g. ["status", "scale"]; "token" on serviceaccounts (a virtual resource). */
  readonly subresources: readonly string[];
  readonly categories: readonly string[];
  /** True when metadata.generation is kept and bumped on spec changes. */
  readonly generation: boolean;
  /** Computed, not stored (TokenReview, SubjectAccessReview ...): only `create`, routed to a VirtualResource. */
  readonly virtual: boolean;
  /** Served because a CustomResourceDefinition exists; its name. */
  readonly crd?: string;
  /** For custom resources: the CRD version's openAPIV3Schema, when it has one. */
  readonly schema?: unknown;
  /** For custom resources: the CRD version's additionalPrinterColumns (for Table output). */
  readonly printerColumns?: readonly PrinterColumn[];
}

const allVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"] as const;

interface Spec {
  g: string;
  k: string;
  r: string;
  ns: boolean;
  short?: string[];
  sub?: string[];
  cat?: string[];
  gen?: boolean;
  verbs?: readonly string[];
  virtual?: boolean;
}

const builtins: Spec[] = [
  {
    g: "",
    k: "Namespace",
    r: "namespaces",
    ns: false,
    short: ["ns"],
    sub: ["status", "finalize"],
    verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
  },
  { g: "", k: "Pod", r: "pods", ns: true, short: ["po"], sub: ["status", "binding"], cat: ["all"] },
  { g: "", k: "Service", r: "services", ns: true, short: ["svc"], sub: ["status"], cat: ["all"] },
  { g: "", k: "Endpoints", r: "endpoints", ns: true, short: ["ep"] },
  { g: "", k: "Secret", r: "secrets", ns: true },
  { g: "", k: "ConfigMap", r: "configmaps", ns: true, short: ["cm"] },
  { g: "", k: "ServiceAccount", r: "serviceaccounts", ns: true, short: ["sa"], sub: ["token"] },
  { g: "", k: "Node", r: "nodes", ns: false, short: ["no"], sub: ["status"] },
  { g: "", k: "Event", r: "events", ns: true, short: ["ev"] },
  {
    g: "apps",
    k: "Deployment",
    r: "deployments",
    ns: true,
    short: ["deploy"],
    sub: ["status", "scale"],
    cat: ["all"],
    gen: true,
  },
  {
    g: "apps",
    k: "ReplicaSet",
    r: "replicasets",
    ns: true,
    short: ["rs"],
    sub: ["status", "scale"],
    cat: ["all"],
    gen: true,
  },
  { g: "discovery.k8s.io", k: "EndpointSlice", r: "endpointslices", ns: true },
  { g: "rbac.authorization.k8s.io", k: "Role", r: "roles", ns: true },
  { g: "rbac.authorization.k8s.io", k: "RoleBinding", r: "rolebindings", ns: true },
  { g: "rbac.authorization.k8s.io", k: "ClusterRole", r: "clusterroles", ns: false },
  { g: "rbac.authorization.k8s.io", k: "ClusterRoleBinding", r: "clusterrolebindings", ns: false },
  {
    g: "admissionregistration.k8s.io",
    k: "MutatingWebhookConfiguration",
    r: "mutatingwebhookconfigurations",
    ns: false,
    gen: true,
  },
  {
    g: "admissionregistration.k8s.io",
    k: "ValidatingWebhookConfiguration",
    r: "validatingwebhookconfigurations",
    ns: false,
    gen: true,
  },
  {
    g: "apiextensions.k8s.io",
    k: "CustomResourceDefinition",
    r: "customresourcedefinitions",
    ns: false,
    short: ["crd", "crds"],
    sub: ["status"],
    gen: true,
  },
  { g: "coordination.k8s.io", k: "Lease", r: "leases", ns: true },
  { g: "authentication.k8s.io", k: "TokenReview", r: "tokenreviews", ns: false, verbs: ["create"], virtual: true },
  {
    g: "authentication.k8s.io",
    k: "SelfSubjectReview",
    r: "selfsubjectreviews",
    ns: false,
    verbs: ["create"],
    virtual: true,
  },
  {
    g: "authorization.k8s.io",
    k: "SubjectAccessReview",
    r: "subjectaccessreviews",
    ns: false,
    verbs: ["create"],
    virtual: true,
  },
  {
    g: "authorization.k8s.io",
    k: "SelfSubjectAccessReview",
    r: "selfsubjectaccessreviews",
    ns: false,
    verbs: ["create"],
    virtual: true,
  },
  {
    g: "authorization.k8s.io",
    k: "SelfSubjectRulesReview",
    r: "selfsubjectrulesreviews",
    ns: false,
    verbs: ["create"],
    virtual: true,
  },
  {
    g: "authorization.k8s.io",
    k: "LocalSubjectAccessReview",
    r: "localsubjectaccessreviews",
    ns: true,
    verbs: ["create"],
    virtual: true,
  },
];

function fromSpec(s: Spec): ResourceInfo {
  return {
    group: s.g,
    version: "v1",
    resource: s.r,
    kind: s.k,
    listKind: `${s.k}List`,
    singular: s.k.toLowerCase(),
    shortNames: s.short ?? [],
    namespaced: s.ns,
    verbs: s.verbs ?? allVerbs,
    subresources: s.sub ?? [],
    categories: s.cat ?? [],
    generation: s.gen ?? false,
    virtual: s.virtual ?? false,
  };
}

/** The apiVersion string for a group/version: "v1" for core, else "group/version". */
export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** Key identifying a served resource: `group/version/resource`. */
export function refKey(ref: ResourceRef): string {
  return `${ref.group}/${ref.version}/${ref.resource}`;
}

/**
 * Every resource served now. Built-ins are fixed; custom resources come and go with their CRD
 * (`syncCrd` / `removeCrd`, called by the store as CRDs are written). Listeners hear about changes
 * so discovery can be rebuilt.
 */
export class ResourceRegistry {
  readonly #byKey = new Map<string, ResourceInfo>();
  readonly #crdKeys = new Map<string, string[]>();
  readonly #listeners = new Set<() => void>();

  constructor() {
    for (const s of builtins) this.#add(fromSpec(s));
  }

  #add(info: ResourceInfo): void {
    this.#byKey.set(refKey(info), info);
  }

  /** The resource behind `ref`, or undefined when it is not served. */
  lookup(ref: ResourceRef): ResourceInfo | undefined {
    return this.#byKey.get(refKey(ref));
  }

  /** Every served resource, built-ins first. */
  all(): ResourceInfo[] {
    return [...this.#byKey.values()];
  }

  /** Resolves a kind in a group/version ("apps", "v1", "Deployment") to its resource. */
  byKind(group: string, version: string, kind: string): ResourceInfo | undefined {
    for (const r of this.#byKey.values()) {
      if (r.group === group && r.version === version && r.kind === kind) return r;
    }
    return undefined;
  }

  /** Calls `fn` whenever the set of served resources changes (a CRD created, changed or deleted). */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Serves the versions of a CRD (established right away); replaces what it served before. */
  syncCrd(crd: KubeObject): void {
    const name = crd.metadata.name ?? "";
    const spec = (crd.spec ?? {}) as CrdSpec;
    const names = spec.names ?? {};
    const keys: string[] = [];
    for (const v of spec.versions ?? []) {
      if (v.served === false || !v.name || !spec.group || !names.plural || !names.kind) continue;
      const info: ResourceInfo = {
        group: spec.group,
        version: v.name,
        resource: names.plural,
        kind: names.kind,
        listKind: names.listKind ?? `${names.kind}List`,
        singular: names.singular ?? names.kind.toLowerCase(),
        shortNames: names.shortNames ?? [],
        namespaced: spec.scope !== "Cluster",
        verbs: allVerbs,
        subresources: [
          ...(v.subresources?.status !== undefined ? ["status"] : []),
          ...(v.subresources?.scale !== undefined ? ["scale"] : []),
        ],
        categories: names.categories ?? [],
        generation: true,
        virtual: false,
        crd: name,
        schema: v.schema?.openAPIV3Schema,
        printerColumns: v.additionalPrinterColumns ?? [],
      };
      keys.push(refKey(info));
      this.#add(info);
    }
    for (const old of this.#crdKeys.get(name) ?? []) if (!keys.includes(old)) this.#byKey.delete(old);
    this.#crdKeys.set(name, keys);
    this.#changed();
  }

  /** Stops serving a CRD's resources. */
  removeCrd(name: string): void {
    for (const k of this.#crdKeys.get(name) ?? []) this.#byKey.delete(k);
    this.#crdKeys.delete(name);
    this.#changed();
  }

  #changed(): void {
    for (const fn of this.#listeners) fn();
  }
}

/** The parts of a CRD's spec the registry reads. */
export interface CrdSpec {
  group?: string;
  scope?: string;
  names?: {
    plural?: string;
    singular?: string;
    kind?: string;
    listKind?: string;
    shortNames?: string[];
    categories?: string[];
  };
  versions?: {
    name?: string;
    served?: boolean;
    storage?: boolean;
    schema?: { openAPIV3Schema?: unknown };
    subresources?: { status?: unknown; scale?: unknown };
    additionalPrinterColumns?: PrinterColumn[];
  }[];
}

/** One additionalPrinterColumns entry of a CRD version. */
export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  format?: string;
  priority?: number;
}
