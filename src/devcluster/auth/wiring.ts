/**
 * Auth composed onto one local cluster's API, the same way wherever a cluster is assembled: the
 * daemon (src/cmd/devcluster.ts), the node's in-process harness and the API server's test server.
 */
import type { Authorizer, VirtualResource } from "../api/plugins.js";
import { type ApiClient, isApiError, Resources } from "../api/types.js";
import { TokenAuthenticator } from "./authenticator.js";
import type { ClusterPki } from "./pki.js";
import { bootstrapRbacObjects, liveRbacSource, RbacAuthorizer } from "./rbac.js";
import { createVirtualResources } from "./reviews.js";
import { ServiceAccountTokens } from "./tokens.js";

export interface WireAuthOptions {
  /** The in-process client of the cluster's API (it creates the bootstrap RBAC objects). */
  client: ApiClient;
  pki: Pick<ClusterPki, "serviceAccountKeyPem" | "adminToken">;
  /** The map LocalApi was constructed with; the review and TokenRequest resources are added to it. */
  virtualResources: Map<string, VirtualResource>;
  /** Replaces RBAC on live objects (tests that want a fixed decision); the access reviews answer with it too. */
  authorizer?: Authorizer;
}

/** The parts of auth the API server and controllers take. */
export interface WiredAuth {
  tokens: ServiceAccountTokens;
  authenticator: TokenAuthenticator;
  authorizer: Authorizer;
}

/**
 * Service-account tokens signed with the PKI's key, the token authenticator, RBAC on live objects,
 * the review and TokenRequest resources added to `virtualResources`, and the bootstrap ClusterRoles
 * and bindings created in order. A bootstrap object that already exists (409, a restarted cluster
 * keeps its store) is left as it is; any other failure is thrown.
 */
export async function wireAuth(opts: WireAuthOptions): Promise<WiredAuth> {
  const { client, pki, virtualResources } = opts;
  const tokens = new ServiceAccountTokens({ signingKeyPem: pki.serviceAccountKeyPem, client });
  const authenticator = new TokenAuthenticator({ adminToken: pki.adminToken, tokens });
  const authorizer = opts.authorizer ?? new RbacAuthorizer({ source: liveRbacSource(client) });
  for (const [k, v] of createVirtualResources({ client, tokens, authenticator, authorizer }))
    virtualResources.set(k, v);
  for (const o of bootstrapRbacObjects()) {
    try {
      await client.create(o.kind === "ClusterRole" ? Resources.clusterroles : Resources.clusterrolebindings, o);
    } catch (err) {
      if (!isApiError(err, 409)) throw err;
    }
  }
  return { tokens, authenticator, authorizer };
}
