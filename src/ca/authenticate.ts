/**
 * Who is asking for a certificate: the proxy's service-account token, reviewed by the API
 * server of the Kubernetes cluster the proxy says it is in (gRPC metadata `ClusterID`), as
 * Istio's KubeJWTAuthenticator does. The identity comes from the review, never from the CSR.
 */
import type { Checked } from "../base/index.js";
import { type ClusterId, spiffeId } from "../model/index.js";
import { type CaKubeClient, Refs } from "./kube-api.js";

/** The audience proxies' projected tokens carry (the injector's `istio-token` volume). */
export const CA_AUDIENCE = "istio-ca";

export interface CallerIdentity {
  readonly clusterId: ClusterId;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly spiffeId: string;
}

/** The Kubernetes clusters whose tokens the CA can review. */
export interface TokenClusters {
  /** The control plane's own cluster ID (`CLUSTER_ID`); an empty claimed ID means this one. */
  readonly localClusterId: ClusterId;
  /** A client for `clusterId` (local or remote), or undefined when the control plane does not know it. */
  readonly clusterClients: (clusterId: ClusterId) => Pick<CaKubeClient, "create"> | undefined;
  /** The remote cluster IDs known now, for the error message of an unknown cluster. */
  readonly remoteClusterIds: () => readonly ClusterId[];
}

export interface AuthenticateOptions extends TokenClusters {
  /** The `authorization` metadata value: `Bearer <jwt>`. */
  readonly authorization: string | undefined;
  /** The `ClusterID` metadata value the proxy sent. */
  readonly claimedClusterId: string | undefined;
  readonly trustDomain: string;
  readonly now?: Date;
}

/** The claims of a JWT, read without verifying (only to explain a refusal; the review decides). */
function unverifiedClaims(token: string): Record<string, unknown> | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Authenticates a certificate request. Refusals are values whose reasons say what was wrong
 * (never the token itself): no token, unknown cluster, expired, not accepted by the cluster,
 * wrong audience, not a service account.
 */
export async function authenticateCaller(opts: AuthenticateOptions): Promise<Checked<CallerIdentity>> {
  const refuse = (reason: string): Checked<CallerIdentity> => ({ ok: false, reasons: [reason] });
  const header = opts.authorization ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match?.[1]) return refuse('no bearer token: send gRPC metadata "authorization: Bearer <service-account token>"');
  const token = match[1];
  const clusterId =
    opts.claimedClusterId === undefined || opts.claimedClusterId === "" ? opts.localClusterId : opts.claimedClusterId;
  const client = opts.clusterClients(clusterId);
  if (client === undefined) {
    const remotes = [...opts.remoteClusterIds()].sort();
    return refuse(
      `client claims to be in cluster "${clusterId}", but we only know about local cluster "${opts.localClusterId}" and remote clusters [${remotes.join(" ")}]`,
    );
  }
  const claims = unverifiedClaims(token);
  const now = opts.now ?? new Date();
  if (typeof claims?.exp === "number" && claims.exp * 1000 <= now.getTime()) {
    return refuse(`the token expired at ${new Date(claims.exp * 1000).toISOString()}; the proxy must read a fresh one`);
  }
  let review: Record<string, unknown>;
  try {
    review = await client.create(Refs.tokenreviews, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      metadata: {},
      spec: { token, audiences: [CA_AUDIENCE] },
    });
  } catch (err) {
    return refuse(
      `could not review the token with cluster "${clusterId}": ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const status = (review.status ?? {}) as {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string };
  };
  if (status.authenticated !== true) {
    return refuse(
      `cluster "${clusterId}" did not accept the token${status.error ? `: ${status.error}` : ""} (a token from another cluster, expired, or for another audience than ${CA_AUDIENCE})`,
    );
  }
  if (status.audiences !== undefined && !status.audiences.includes(CA_AUDIENCE)) {
    return refuse(`the token is not for audience ${CA_AUDIENCE} (it is for ${status.audiences.join(", ") || "none"})`);
  }
  const parts = (status.user?.username ?? "").split(":");
  if (parts.length !== 4 || parts[0] !== "system" || parts[1] !== "serviceaccount" || !parts[2] || !parts[3]) {
    return refuse(`the token belongs to "${status.user?.username ?? ""}", which is not a service account`);
  }
  const [, , namespace, serviceAccount] = parts as [string, string, string, string];
  return {
    ok: true,
    value: { clusterId, namespace, serviceAccount, spiffeId: spiffeId(opts.trustDomain, namespace, serviceAccount) },
  };
}
