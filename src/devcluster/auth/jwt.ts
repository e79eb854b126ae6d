/**
 * Compact JWS (JWT) signing and verification with node:crypto, for service-account tokens.
 * Only the algorithm that fits the key is accepted (RS256 for RSA keys, ES256 for P-256), so a
 * token cannot pick its own algorithm ("none", or HMAC keyed with the public key).
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

export type JwtAlgorithm = "RS256" | "ES256";

/** A key pair that signs and verifies JWTs; `kid` is derived from the public key, as Kubernetes does. */
export interface JwtKey {
  readonly alg: JwtAlgorithm;
  readonly kid: string;
  readonly privateKey?: KeyObject;
  readonly publicKey: KeyObject;
}

function algorithmFor(key: KeyObject): JwtAlgorithm {
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  throw new Error(
    `service-account signing key type ${key.asymmetricKeyType} is not supported; use RSA (RS256) or EC P-256 (ES256)`,
  );
}

/** Builds a JwtKey from a PEM private key (signs and verifies) or public key (verifies only). */
export function jwtKeyFromPem(pem: string): JwtKey {
  const isPrivate = pem.includes("PRIVATE KEY");
  const privateKey = isPrivate ? createPrivateKey(pem) : undefined;
  const publicKey = privateKey ? createPublicKey(privateKey) : createPublicKey(pem);
  const der = publicKey.export({ type: "spki", format: "der" });
  return {
    alg: algorithmFor(publicKey),
    kid: createHash("sha256").update(der).digest("base64url"),
    privateKey,
    publicKey,
  };
}

/** Signs `claims` as a compact JWS. Throws when the key has no private half. */
export function signJwt(key: JwtKey, claims: Record<string, unknown>): string {
  if (!key.privateKey) throw new Error("cannot sign a token with a public key");
  const header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid })).toString("base64url");
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const input = Buffer.from(`${header}.${payload}`);
  const signature =
    key.alg === "ES256"
      ? sign("sha256", input, { key: key.privateKey, dsaEncoding: "ieee-p1363" })
      : sign("sha256", input, key.privateKey);
  return `${header}.${payload}.${signature.toString("base64url")}`;
}

/** Outcome of decoding a token: the claims when the signature is ours, else why not. */
export type JwtResult =
  | { readonly ok: true; readonly claims: Record<string, unknown> }
  | { readonly ok: false; readonly malformed: boolean; readonly reason: string };

function decodeJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks the signature of a compact JWS with `key` and returns its claims. Time and audience
 * checks are the caller's (they depend on what the token is for).
 */
export function verifyJwt(key: JwtKey, token: string): JwtResult {
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    return { ok: false, malformed: true, reason: "not a JWT" };
  }
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h);
  const claims = decodeJson(p);
  if (!isRecord(header) || !isRecord(claims)) return { ok: false, malformed: true, reason: "not a JWT" };
  if (header.alg !== key.alg) {
    return { ok: false, malformed: false, reason: `unexpected signing algorithm ${JSON.stringify(header.alg)}` };
  }
  const input = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, "base64url");
  const good =
    key.alg === "ES256"
      ? verify("sha256", input, { key: key.publicKey, dsaEncoding: "ieee-p1363" }, signature)
      : verify("sha256", input, key.publicKey, signature);
  if (!good) return { ok: false, malformed: false, reason: "signature is not from this cluster's signing key" };
  return { ok: true, claims };
}
