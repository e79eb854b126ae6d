/**
 * Test-only helpers for this folder's tests: a real in-memory local API (LocalApi, closed when
 * the test ends), auth wired onto it as the daemon wires it, and object builders. Not for production use.
 */
import { silentLogger } from "../../base/index.js";
import type { Admission, VirtualResource } from "../api/plugins.js";
import { type KubeObject, Resources } from "../api/types.js";
import { LocalApi, type LocalApiClient } from "../apiserver/index.js";
import { TokenAuthenticator } from "./authenticator.js";
import type { ClusterPki } from "./pki.js";
import { bootstrapRbacObjects, liveRbacSource, RbacAuthorizer } from "./rbac.js";
import { createVirtualResources } from "./reviews.js";
import { ServiceAccountTokens } from "./tokens.js";

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

/**
 * Auth over `client` as the daemon wires it: service-account tokens signed with the PKI's key, the
 * token authenticator, RBAC on live objects, the review and TokenRequest resources added to
 * `virtualResources`, and the bootstrap ClusterRoles and bindings created.
 */
export async function wireAuth(opts: {
  client: LocalApiClient;
  pki: ClusterPki;
  virtualResources: Map<string, VirtualResource>;
}): Promise<{ tokens: ServiceAccountTokens; authenticator: TokenAuthenticator; authorizer: RbacAuthorizer }> {
  const { client, pki, virtualResources } = opts;
  const tokens = new ServiceAccountTokens({ signingKeyPem: pki.serviceAccountKeyPem, client });
  const authenticator = new TokenAuthenticator({ adminToken: pki.adminToken, tokens });
  const authorizer = new RbacAuthorizer({ source: liveRbacSource(client) });
  for (const [k, v] of createVirtualResources({ client, tokens, authenticator, authorizer }))
    virtualResources.set(k, v);
  for (const o of bootstrapRbacObjects()) {
    await client.create(o.kind === "ClusterRole" ? Resources.clusterroles : Resources.clusterrolebindings, o);
  }
  return { tokens, authenticator, authorizer };
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
