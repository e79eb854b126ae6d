/**
 * Who sent a request, told by the client sidecar to the server sidecar inside mutual TLS
 * (Istio does this with its metadata exchange). Trusted only over a verified mTLS connection;
 * never forwarded to the application.
 */
export const peerMetadataHeader = "x-isthmus-peer-metadata";

export function formatPeerMetadata(m: { cluster: string; workload: string; namespace: string }): string {
  return `cluster=${m.cluster};workload=${m.workload};namespace=${m.namespace}`;
}

export function parsePeerMetadata(raw: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of String(raw ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}
