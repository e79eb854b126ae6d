/**
 * Test-only helpers for this folder's tests: a real in-memory local API (LocalApi, closed when
 * the test ends) and object builders. Not for production use.
 */
import { silentLogger } from "../../base/index.js";
import type { Admission, VirtualResource } from "../api/plugins.js";
import { type ApiClient, type KubeObject, type ResourceRef, Resources } from "../api/types.js";
import { LocalApi, type LocalApiClient } from "../apiserver/index.js";

/** Starts an in-memory LocalApi with `namespaces` created; closed in `t.after`. */
export async function testApi(
  t: { after(fn: () => Promise<void> | void): void },
  opts: { namespaces?: string[]; admission?: Admission; virtualResources?: Map<string, VirtualResource> } = {},
): Promise<{ api: LocalApi; client: LocalApiClient }> {
  const api = new LocalApi({
    serviceCidr: "10.201.250.0/24",
    clusterName: "auth-test",
    log: silentLogger,
    ...(opts.admission ? { admission: opts.admission } : {}),
    ...(opts.virtualResources ? { virtualResources: opts.virtualResources } : {}),
  });
  await api.start();
  t.after(() => api.close());
  const client = api.client();
  for (const name of opts.namespaces ?? []) {
    await client.create(Resources.namespaces, obj("v1", "Namespace", undefined, name));
  }
  return { api, client };
}

const rbacResources: Record<string, ResourceRef> = {
  Role: Resources.roles,
  RoleBinding: Resources.rolebindings,
  ClusterRole: Resources.clusterroles,
  ClusterRoleBinding: Resources.clusterrolebindings,
};

/** Creates Roles, RoleBindings, ClusterRoles and ClusterRoleBindings in order; any other kind is a test bug. */
export async function createRbacObjects(client: ApiClient, objects: readonly KubeObject[]): Promise<void> {
  for (const o of objects) {
    const ref = rbacResources[o.kind ?? ""];
    if (!ref) throw new Error(`createRbacObjects: ${o.kind} ${o.metadata.name} is not an RBAC kind`);
    await client.create(ref, o);
  }
}

/** An object skeleton; `rest` may replace metadata wholesale. */
export function obj(
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  name: string,
  rest = {},
): KubeObject {
  return { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) }, ...rest };
}

/** A valid Pod with one container. */
export function pod(namespace: string, name: string, serviceAccountName?: string): KubeObject {
  return obj("v1", "Pod", namespace, name, {
    spec: { ...(serviceAccountName ? { serviceAccountName } : {}), containers: [{ name: "main", image: "curl" }] },
  });
}
