/**
 * The workload's mesh identity and the TLS settings built from it: what the sidecar presents,
 * which roots it trusts, and the SPIFFE check on the peer (the SAN must name an allowed
 * identity; the chain must end at the mesh root).
 */
import type { ConnectionOptions, PeerCertificate, SecureContextOptions } from "node:tls";

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
    return new PeerIdentityError(`peer identity ${ids.join(", ")} is not one of ${allowed.join(", ")}`);
  }
  return undefined;
}

/** ALPN the sidecars use between themselves; the application protocol rides inside unchanged. */
export const meshAlpn = ["istio-peer-exchange", "istio"];

/** TLS options for a connection to an upstream sidecar, verifying its chain and SPIFFE identity. */
export function upstreamTlsOptions(
  cert: WorkloadCertificate,
  allowedSpiffeIds: readonly string[],
  sni: string,
): ConnectionOptions {
  return {
    cert: cert.certChainPem,
    key: cert.keyPem,
    ca: cert.rootPem,
    servername: sni === "" ? undefined : sni,
    ALPNProtocols: meshAlpn,
    rejectUnauthorized: true,
    // Hostnames are not part of mesh identity; the SPIFFE URI SAN is.
    checkServerIdentity: (_host, peer) => checkPeerIdentity(peer, allowedSpiffeIds),
  };
}

/** The server side of mutual TLS: our certificate and the root client certificates must chain to. */
export function inboundSecureOptions(cert: WorkloadCertificate): SecureContextOptions {
  return { cert: cert.certChainPem, key: cert.keyPem, ca: cert.rootPem };
}
