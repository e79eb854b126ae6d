/**
 * Bearer-token authentication for the local API server: the admin token from the cluster's
 * PKI, and service-account tokens. Also answers TokenReview, which asks the same question
 * with explicit audiences.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Authenticator } from "../api/plugins.js";
import type { UserInfo } from "../api/types.js";
import type { ServiceAccountTokens } from "./tokens.js";

/** The user the admin token authenticates as (kubeadm's name for it). */
export const adminUser: UserInfo = Object.freeze({
  username: "kubernetes-admin",
  groups: Object.freeze(["system:masters", "system:authenticated"]) as string[],
});

export interface TokenAuthenticatorOptions {
  /** ClusterPki.adminToken. */
  adminToken: string;
  tokens: ServiceAccountTokens;
}

/** The answer to "who holds this token, for these audiences", as TokenReview.status carries it. */
export type TokenReviewResult =
  | { readonly authenticated: true; readonly user: UserInfo; readonly audiences: string[] }
  | { readonly authenticated: false; readonly error: string };

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Authenticator over the admin token and service-account tokens. Stateless apart from its options. */
export class TokenAuthenticator implements Authenticator {
  readonly #adminDigest: Buffer;
  readonly #tokens: ServiceAccountTokens;

  constructor(opts: TokenAuthenticatorOptions) {
    if (opts.adminToken.length < 32) throw new Error("the admin token must be at least 32 characters");
    this.#adminDigest = digest(opts.adminToken);
    this.#tokens = opts.tokens;
  }

  /** The user for a request's bearer token (without "Bearer "), or undefined for 401. */
  async authenticate(bearerToken: string | undefined): Promise<UserInfo | undefined> {
    if (!bearerToken) return undefined;
    const result = await this.review(bearerToken);
    return result.authenticated ? result.user : undefined;
  }

  /**
   * TokenReview semantics: `audiences` empty means the API server's own. The admin token has no
   * audience of its own, so it passes only when the API server's audiences are among those asked.
   */
  async review(token: string, audiences: readonly string[] = []): Promise<TokenReviewResult> {
    // Digests of equal length make the comparison constant-time whatever the token's length.
    if (timingSafeEqual(digest(token), this.#adminDigest)) {
      const wanted = audiences.length > 0 ? audiences : this.#tokens.apiAudiences;
      const matched = this.#tokens.apiAudiences.filter((a) => wanted.includes(a));
      if (matched.length === 0) {
        return {
          authenticated: false,
          error: `token audiences ${JSON.stringify(this.#tokens.apiAudiences)} is invalid for the target audiences ${JSON.stringify(audiences)}`,
        };
      }
      return { authenticated: true, user: { ...adminUser, groups: [...adminUser.groups] }, audiences: matched };
    }
    const v = await this.#tokens.verify(token, audiences);
    if (v.ok) return { authenticated: true, user: v.user, audiences: v.audiences };
    return {
      authenticated: false,
      error: v.recognized ? `[invalid bearer token, ${v.reason}]` : "[invalid bearer token, token lookup failed]",
    };
  }
}
