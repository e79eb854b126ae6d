/**
 * Which resources exist, for the controllers that walk all of them (namespace drain, garbage
 * collection). The daemon passes the API server's own registry; without one, the built-in
 * kinds of a local cluster plus whatever CustomResourceDefinitions the API lists.
 */
import type { ApiClient, ResourceRef } from "../api/types.js";
import { Resources } from "../api/types.js";

/** One served resource, as discovery describes it (the apiserver's ResourceInfo fits). */
export interface ServedResource extends ResourceRef {
  readonly kind: string;
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
  /** Computed resources (reviews) are never listed. */
  readonly virtual?: boolean;
}

/** Returns the resources served now. */
export type Discovery = () => Promise<readonly ServedResource[]> | readonly ServedResource[];

const allVerbs = ["create", "delete", "get", "list", "patch", "update", "watch"] as const;

function builtin(ref: ResourceRef, kind: string, namespaced: boolean): ServedResource {
  return { ...ref, kind, namespaced, verbs: allVerbs };
}

/** The built-in resources of a local cluster that are stored (not computed). */
export const builtinResources: readonly ServedResource[] = [
  builtin(Resources.namespaces, "Namespace", false),
  builtin(Resources.pods, "Pod", true),
  builtin(Resources.services, "Service", true),
  builtin(Resources.endpoints, "Endpoints", true),
  builtin(Resources.secrets, "Secret", true),
  builtin(Resources.configmaps, "ConfigMap", true),
  builtin(Resources.serviceaccounts, "ServiceAccount", true),
  builtin(Resources.nodes, "Node", false),
  builtin(Resources.events, "Event", true),
  builtin(Resources.deployments, "Deployment", true),
  builtin(Resources.replicasets, "ReplicaSet", true),
  builtin(Resources.endpointslices, "EndpointSlice", true),
  builtin(Resources.roles, "Role", true),
  builtin(Resources.rolebindings, "RoleBinding", true),
  builtin(Resources.clusterroles, "ClusterRole", false),
  builtin(Resources.clusterrolebindings, "ClusterRoleBinding", false),
  builtin(Resources.mutatingwebhookconfigurations, "MutatingWebhookConfiguration", false),
  builtin(Resources.validatingwebhookconfigurations, "ValidatingWebhookConfiguration", false),
  builtin(Resources.customresourcedefinitions, "CustomResourceDefinition", false),
  builtin(Resources.leases, "Lease", true),
];

interface CrdView {
  spec?: {
    group?: string;
    scope?: string;
    names?: { plural?: string; kind?: string };
    versions?: { name?: string; served?: boolean; storage?: boolean }[];
  };
}

/** Discovery through the API alone: the built-ins above plus every served version of every CRD. */
export function clientDiscovery(client: ApiClient): Discovery {
  return async () => {
    const crds = await client.list(Resources.customresourcedefinitions);
    const out: ServedResource[] = [...builtinResources];
    for (const item of crds.items) {
      const spec = (item as CrdView).spec;
      if (!spec?.group || !spec.names?.plural || !spec.names.kind) continue;
      for (const v of spec.versions ?? []) {
        if (v.served === false || !v.name) continue;
        out.push({
          group: spec.group,
          version: v.name,
          resource: spec.names.plural,
          kind: spec.names.kind,
          namespaced: spec.scope !== "Cluster",
          verbs: allVerbs,
        });
      }
    }
    return out;
  };
}

/**
 * One version per group/resource (the first listed), since every version of a resource
 * holds the same objects; stored, listable resources only.
 */
export function uniqueListable(resources: readonly ServedResource[]): ServedResource[] {
  const seen = new Set<string>();
  const out: ServedResource[] = [];
  for (const r of resources) {
    if (r.virtual || !r.verbs.includes("list") || !r.verbs.includes("delete")) continue;
    const key = `${r.group}/${r.resource}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}
