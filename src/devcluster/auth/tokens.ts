/**
 * Service-account tokens: bound tokens (TokenRequest, projected volumes) and legacy tokens
 * (Secrets of type kubernetes.io/service-account-token), signed with the cluster's
 * service-account key and checked against the objects they name, as kube-apiserver does.
 */
import { randomUUID } from "node:crypto";
import { type ApiClient, isApiError, type KubeObject, Resources, type UserInfo } from "../api/types.js";
import { rec, str } from "./fields.js";
import { type JwtKey, jwtKeyFromPem, signJwt, verifyJwt } from "./jwt.js";

/** Issuer of bound tokens, and the API server's own audience, unless the cluster sets others. */
export const defaultIssuer = "https://kubernetes.default.svc.cluster.local";
/** Issuer Kubernetes puts in legacy (Secret-based) tokens. */
export const legacyIssuer = "kubernetes/serviceaccount";
/** Clock skew tolerated on exp and nbf, as Kubernetes allows. */
const leewaySeconds = 60;
/** A pod being deleted keeps its tokens valid this long after its deletionTimestamp (graceful shutdown). */
const deletedPodGraceSeconds = 60;

export interface ServiceAccountTokensOptions {
  /** PEM private key (PKCS#8 RSA or P-256): ClusterPki.serviceAccountKeyPem. */
  signingKeyPem: string;
  /** Reads ServiceAccounts, Pods and Secrets to check that a token's objects still exist. */
  client: ApiClient;
  /** `iss` of bound tokens; default defaultIssuer. */
  issuer?: string;
  /** Audiences the API server itself accepts; default [issuer]. Tokens requested without audiences get these. */
  apiAudiences?: string[];
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** The object a bound token is tied to; the token dies with it. */
export interface BoundObject {
  kind: "Pod" | "Secret";
  name: string;
  uid: string;
}

export interface IssueRequest {
  namespace: string;
  serviceAccount: { name: string; uid: string };
  /** Default: the API server's audiences. */
  audiences?: string[];
  /** Lifetime; default 3600. The caller enforces minimums (TokenRequest: 600). */
  expirationSeconds?: number;
  boundObject?: BoundObject;
}

export interface IssuedToken {
  token: string;
  /** RFC 3339, second precision, as TokenRequest.status.expirationTimestamp. */
  expirationTimestamp: string;
}

/**
 * What a token proved. `recognized: false` means the token is not one of this cluster's
 * service-account tokens at all (another authenticator may know it); true with ok=false means
 * it is ours but no longer (or not here) valid, and `reason` says why.
 */
export type TokenVerification =
  | { readonly ok: true; readonly user: UserInfo; readonly audiences: string[] }
  | { readonly ok: false; readonly recognized: boolean; readonly reason: string };

interface Claims {
  iss?: unknown;
  sub?: unknown;
  aud?: unknown;
  exp?: unknown;
  nbf?: unknown;
  iat?: unknown;
  jti?: unknown;
  "kubernetes.io"?: unknown;
  [legacy: string]: unknown;
}

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Issues and verifies one cluster's service-account tokens. No I/O until verify() reads objects. */
export class ServiceAccountTokens {
  readonly issuer: string;
  readonly apiAudiences: readonly string[];
  readonly #key: JwtKey;
  readonly #client: ApiClient;
  readonly #now: () => number;

  constructor(opts: ServiceAccountTokensOptions) {
    this.#key = jwtKeyFromPem(opts.signingKeyPem);
    this.#client = opts.client;
    this.issuer = opts.issuer ?? defaultIssuer;
    this.apiAudiences = opts.apiAudiences ?? [this.issuer];
    this.#now = opts.now ?? Date.now;
  }

  /** Signs a bound token with exp/iat/nbf and the `kubernetes.io` claim Kubernetes uses. */
  issue(req: IssueRequest): IssuedToken {
    const iat = Math.floor(this.#now() / 1000);
    const exp = iat + (req.expirationSeconds ?? 3600);
    const k8s: Record<string, unknown> = {
      namespace: req.namespace,
      serviceaccount: { name: req.serviceAccount.name, uid: req.serviceAccount.uid },
    };
    if (req.boundObject?.kind === "Pod") k8s.pod = { name: req.boundObject.name, uid: req.boundObject.uid };
    if (req.boundObject?.kind === "Secret") k8s.secret = { name: req.boundObject.name, uid: req.boundObject.uid };
    const token = signJwt(this.#key, {
      aud: req.audiences && req.audiences.length > 0 ? req.audiences : [...this.apiAudiences],
      exp,
      iat,
      iss: this.issuer,
      jti: randomUUID(),
      "kubernetes.io": k8s,
      nbf: iat,
      sub: `system:serviceaccount:${req.namespace}:${req.serviceAccount.name}`,
    });
    return { token, expirationTimestamp: rfc3339(exp) };
  }

  /**
   * Signs a legacy token for a kubernetes.io/service-account-token Secret: no expiry, valid
   * while the Secret (holding exactly this token) and the ServiceAccount exist.
   */
  issueLegacy(req: { namespace: string; serviceAccount: { name: string; uid: string }; secretName: string }): string {
    return signJwt(this.#key, {
      iss: legacyIssuer,
      "kubernetes.io/serviceaccount/namespace": req.namespace,
      "kubernetes.io/serviceaccount/secret.name": req.secretName,
      "kubernetes.io/serviceaccount/service-account.name": req.serviceAccount.name,
      "kubernetes.io/serviceaccount/service-account.uid": req.serviceAccount.uid,
      sub: `system:serviceaccount:${req.namespace}:${req.serviceAccount.name}`,
    });
  }

  /**
   * Verifies signature, issuer, time, audience (one of `audiences`, default the API server's)
   * and that the ServiceAccount, and the Pod or Secret a token is bound to, still exist with
   * the uid in the token. Expected failures are values; only unexpected API errors reject.
   */
  async verify(token: string, audiences?: readonly string[]): Promise<TokenVerification> {
    const decoded = verifyJwt(this.#key, token);
    if (!decoded.ok) return { ok: false, recognized: false, reason: decoded.reason };
    const claims = decoded.claims as Claims;
    const wanted = audiences && audiences.length > 0 ? audiences : this.apiAudiences;
    if (claims.iss === legacyIssuer) return this.#verifyLegacy(token, claims, wanted);
    if (claims.iss !== this.issuer) {
      return {
        ok: false,
        recognized: false,
        reason: `token issuer ${JSON.stringify(claims.iss)} is not this cluster's`,
      };
    }

    const now = Math.floor(this.#now() / 1000);
    if (typeof claims.exp !== "number") return fail("token has no expiry");
    if (now > claims.exp + leewaySeconds) return fail("service account token has expired");
    if (typeof claims.nbf === "number" && now < claims.nbf - leewaySeconds) {
      return fail("service account token is not valid yet");
    }
    const tokenAudiences = Array.isArray(claims.aud) ? claims.aud.map(str) : [str(claims.aud)];
    const matched = tokenAudiences.filter((a) => a !== "" && wanted.includes(a));
    if (matched.length === 0) {
      return fail(
        `token audiences ${JSON.stringify(tokenAudiences)} is invalid for the target audiences ${JSON.stringify(wanted)}`,
      );
    }

    const k8s = rec(claims["kubernetes.io"]);
    const namespace = str(k8s.namespace);
    const sa = rec(k8s.serviceaccount);
    const saName = str(sa.name);
    const saUid = str(sa.uid);
    if (!namespace || !saName || claims.sub !== `system:serviceaccount:${namespace}:${saName}`) {
      return fail("token claims do not name a service account");
    }
    const saCheck = await this.#checkObject(Resources.serviceaccounts, namespace, saName, saUid, "service account");
    if (saCheck) return fail(saCheck);

    const extra: Record<string, string[]> = {};
    const pod = rec(k8s.pod);
    if (str(pod.name)) {
      const podCheck = await this.#checkObject(Resources.pods, namespace, str(pod.name), str(pod.uid), "pod");
      if (podCheck) return fail(podCheck);
      extra["authentication.kubernetes.io/pod-name"] = [str(pod.name)];
      extra["authentication.kubernetes.io/pod-uid"] = [str(pod.uid)];
    }
    const secret = rec(k8s.secret);
    if (str(secret.name)) {
      const secretCheck = await this.#checkObject(
        Resources.secrets,
        namespace,
        str(secret.name),
        str(secret.uid),
        "secret",
      );
      if (secretCheck) return fail(secretCheck);
    }
    if (str(claims.jti)) extra["authentication.kubernetes.io/credential-id"] = [`JTI=${str(claims.jti)}`];
    return { ok: true, user: serviceAccountUser(namespace, saName, saUid, extra), audiences: matched };
  }

  async #verifyLegacy(token: string, claims: Claims, wanted: readonly string[]): Promise<TokenVerification> {
    // Legacy tokens carry no audience; they are good for the API server's own audiences only.
    const matched = this.apiAudiences.filter((a) => wanted.includes(a));
    if (matched.length === 0) {
      return fail(
        `token audiences ${JSON.stringify(this.apiAudiences)} is invalid for the target audiences ${JSON.stringify(wanted)}`,
      );
    }
    const namespace = str(claims["kubernetes.io/serviceaccount/namespace"]);
    const secretName = str(claims["kubernetes.io/serviceaccount/secret.name"]);
    const saName = str(claims["kubernetes.io/serviceaccount/service-account.name"]);
    const saUid = str(claims["kubernetes.io/serviceaccount/service-account.uid"]);
    if (!namespace || !secretName || !saName || claims.sub !== `system:serviceaccount:${namespace}:${saName}`) {
      return fail("token claims do not name a service account");
    }
    let secret: KubeObject;
    try {
      secret = await this.#client.get(Resources.secrets, namespace, secretName);
    } catch (err) {
      if (isApiError(err, 404)) return fail(`secret "${namespace}/${secretName}" holding the token no longer exists`);
      throw err;
    }
    if (secret.metadata.deletionTimestamp) return fail(`secret "${namespace}/${secretName}" is being deleted`);
    const stored = str(rec(secret.data).token);
    if (Buffer.from(stored, "base64").toString("utf8") !== token) {
      return fail(`token does not match the one in secret "${namespace}/${secretName}"`);
    }
    const saCheck = await this.#checkObject(Resources.serviceaccounts, namespace, saName, saUid, "service account");
    if (saCheck) return fail(saCheck);
    return { ok: true, user: serviceAccountUser(namespace, saName, saUid, {}), audiences: matched };
  }

  /** Undefined when the object exists with `uid` and is usable; else why not. */
  async #checkObject(
    ref: (typeof Resources)["pods" | "secrets" | "serviceaccounts"],
    namespace: string,
    name: string,
    uid: string,
    what: string,
  ): Promise<string | undefined> {
    let obj: KubeObject;
    try {
      obj = await this.#client.get(ref, namespace, name);
    } catch (err) {
      if (isApiError(err, 404)) return `${what} "${namespace}/${name}" no longer exists`;
      throw err;
    }
    if (uid && obj.metadata.uid !== uid) {
      return `${what} "${namespace}/${name}" has been recreated (uid ${obj.metadata.uid}, token names ${uid})`;
    }
    const deleted = obj.metadata.deletionTimestamp;
    if (deleted) {
      const graceOver = what === "pod" ? Date.parse(deleted) + deletedPodGraceSeconds * 1000 < this.#now() : true;
      if (graceOver) return `${what} "${namespace}/${name}" has been deleted`;
    }
    return undefined;
  }
}

function fail(reason: string): TokenVerification {
  return { ok: false, recognized: true, reason };
}

/** The user a service account authenticates as, with the groups Kubernetes gives it. */
export function serviceAccountUser(
  namespace: string,
  name: string,
  uid: string,
  extra: Record<string, string[]> = {},
): UserInfo {
  return {
    username: `system:serviceaccount:${namespace}:${name}`,
    ...(uid ? { uid } : {}),
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}
