/**
 * The workload's mesh identity and the TLS settings built from it: what the sidecar presents,
 * which roots it trusts, and the SPIFFE check on the peer (the SAN must name an allowed
 * identity; the chain must end at the mesh root).
 */
import {
  type ConnectionOptions,
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
  type SecureContextOptions,
} from "node:tls";

/** A certificate issued to this workload by the mesh CA. */
export interface WorkloadCertificate {
  /** Leaf first, then intermediates. */
  readonly certChainPem: string;
  readonly keyPem: string;
  /** The mesh root(s) peers must chain to. */
  readonly rootPem: string;
  readonly spiffeId: string;
  readonly notAfter: Date;
}

/** The SPIFFE IDs in a peer certificate's subjectAltName (URI entries starting with spiffe://). */
export function spiffeIdsOf(cert: Pick<PeerCertificate, "subjectaltname"> | undefined): string[] {
  const san = cert?.subjectaltname;
  if (!san) return [];
  return san
    .split(/,\s*/)
    .filter((s) => s.startsWith("URI:spiffe://"))
    .map((s) => s.slice(4));
}

/** Thrown (returned to node:tls) when a peer's identity is not one the cluster allows. */
export class PeerIdentityError extends Error {
  readonly code = "ISTHMUS_ERR_PEER_IDENTITY";
}

/**
 * Checks a server's SPIFFE identity: it must carry a spiffe:// URI SAN, and one of them must be
 * in `allowed` (when `allowed` is not empty). Returns undefined when the identity is acceptable.
 */
export function checkPeerIdentity(
  cert: Pick<PeerCertificate, "subjectaltname"> | undefined,
  allowed: readonly string[],
): PeerIdentityError | undefined {
  const ids = spiffeIdsOf(cert);
  if (ids.length === 0) return new PeerIdentityError("peer certificate carries no SPIFFE identity");
  if (allowed.length > 0 && !ids.some((id) => allowed.includes(id))) {
    return new PeerIdentityError(`peer is ${ids.join(", ")} but the cluster expects ${allowed.join(" or ")}`);
  }
  return undefined;
}

/** ALPN a client sidecar offers for opaque TCP (Istio's cluster default); the bytes ride inside unchanged. */
export const meshAlpn = ["istio-peer-exchange", "istio"];

/**
 * ALPN a client sidecar offers for HTTP, by the protocol it will speak inside (Istio's ALPN
 * override): the server sidecar picks its HTTP/2 or HTTP/1.1 codec from it without sniffing.
 */
export const meshAlpnHttp = { h2: ["istio-h2"], "http/1.1": ["istio-http/1.1"] } as const;

/** Every ALPN value a server sidecar accepts from peers; the first one the client offers wins. */
export const inboundAlpn = [
  "istio-h2",
  "istio-http/1.1",
  "istio-http/1.0",
  "istio-peer-exchange",
  "istio",
  "h2",
  "http/1.1",
];

/** True when a negotiated ALPN value means HTTP/2 inside the TLS connection. */
export function alpnIsH2(alpn: string | false | null | undefined): boolean {
  return alpn === "istio-h2" || alpn === "h2";
}

/** Why a handshake to an upstream failed, in words an operator can act on, with a short kind for counters. */
export interface HandshakeFailure {
  readonly kind: "unknown_root" | "peer_identity" | "certificate_refused" | "expired" | "other";
  readonly reason: string;
}

const unknownRootCodes = new Set([
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "CERT_SIGNATURE_FAILURE",
]);

/**
 * Classifies an error from a TLS connection attempt. Undefined when the error is not about
 * certificates (refused, reset, timeout): those are ordinary connect failures.
 */
export function describeHandshakeFailure(err: unknown): HandshakeFailure | undefined {
  if (err instanceof PeerIdentityError) return { kind: "peer_identity", reason: err.message };
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== "string") return undefined;
  if (unknownRootCodes.has(code))
    return { kind: "unknown_root", reason: `certificate chain ends at an unknown root (${code})` };
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID")
    return { kind: "expired", reason: `peer certificate is outside its validity period (${code})` };
  if (code.startsWith("ERR_SSL_TLSV1_ALERT_") || code.startsWith("ERR_SSL_SSLV3_ALERT_"))
    return {
      kind: "certificate_refused",
      reason: `the endpoint refused the handshake (${code}): it may not trust this mesh's root`,
    };
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_"))
    return { kind: "other", reason: `TLS handshake failed (${code})` };
  return undefined;
}

const clientContexts = new WeakMap<WorkloadCertificate, SecureContext>();

/**
 * One TLS context per certificate, shared by every upstream connection: PEM parsing happens
 * once, and https agents key their pools by a short name instead of the PEM texts.
 */
function clientContext(cert: WorkloadCertificate): SecureContext {
  let ctx = clientContexts.get(cert);
  if (ctx === undefined) {
    ctx = createSecureContext({ cert: cert.certChainPem, key: cert.keyPem, ca: cert.rootPem });
    clientContexts.set(cert, ctx);
  }
  return ctx;
}

/** TLS options for a connection to an upstream sidecar, verifying its chain and SPIFFE identity. */
export function upstreamTlsOptions(
  cert: WorkloadCertificate,
  allowedSpiffeIds: readonly string[],
  sni: string,
  alpn: readonly string[] = meshAlpn,
): ConnectionOptions {
  return {
    secureContext: clientContext(cert),
    servername: sni === "" ? undefined : sni,
    ALPNProtocols: [...alpn],
    rejectUnauthorized: true,
    // Hostnames are not part of mesh identity; the SPIFFE URI SAN is.
    checkServerIdentity: (_host, peer) => checkPeerIdentity(peer, allowedSpiffeIds),
  };
}

/** The server side of mutual TLS: our certificate and the root client certificates must chain to. */
export function inboundSecureOptions(cert: WorkloadCertificate): SecureContextOptions {
  return { cert: cert.certChainPem, key: cert.keyPem, ca: cert.rootPem };
}
