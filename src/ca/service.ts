/**
 * Istio's certificate service, `istio.v1.auth.IstioCertificateService/CreateCertificate`, for
 * istiod's 15012 gRPC server: authenticate the caller's token in its own cluster, then sign
 * its CSR for the identity the review gave. Register with
 * `server.addService(istioCertificateServiceDefinition, createCertificateServiceHandlers(opts))`.
 */
import {
  type Metadata,
  type ServiceDefinition,
  type ServiceError,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { type Logger, silentLogger } from "../base/index.js";
import { authenticateCaller, type TokenClusters } from "./authenticate.js";
import type { CertificateAuthority } from "./authority.js";
import {
  decodeCertificateRequest,
  decodeCertificateResponse,
  encodeCertificateRequest,
  encodeCertificateResponse,
} from "./proto.js";

export const CREATE_CERTIFICATE_PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/** What CreateCertificate reads from a request: the CSR, and the validity asked for in seconds (0: the CA's default). */
export interface CertificateRequest {
  readonly csr: string;
  readonly validityDuration: number | bigint;
}

/** The grpc-js service definition (generated message types, see proto.ts). */
export const istioCertificateServiceDefinition: ServiceDefinition = {
  CreateCertificate: {
    path: CREATE_CERTIFICATE_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (req: CertificateRequest) => Buffer.from(encodeCertificateRequest(req)),
    requestDeserialize: (buf: Buffer) => decodeCertificateRequest(buf),
    responseSerialize: (res: { certChain: readonly string[] }) => Buffer.from(encodeCertificateResponse(res)),
    responseDeserialize: (buf: Buffer) => decodeCertificateResponse(buf),
  },
};

export interface CertificateServiceOptions extends TokenClusters {
  readonly ca: CertificateAuthority;
  readonly trustDomain: string;
  readonly log?: Logger;
  readonly now?: () => Date;
}

/** The outcome of one request: the chain, or a gRPC code and a reason the caller can act on. */
export type CreateCertificateResult =
  | { readonly ok: true; readonly certChain: string[] }
  | { readonly ok: false; readonly code: status; readonly reason: string };

/** Handles one CreateCertificate call given its request and metadata. Never throws for bad input. */
export async function createCertificate(
  request: CertificateRequest,
  metadata: { authorization?: string; clusterId?: string },
  opts: CertificateServiceOptions,
): Promise<CreateCertificateResult> {
  const now = opts.now?.() ?? new Date();
  const caller = await authenticateCaller({
    ...opts,
    authorization: metadata.authorization,
    claimedClusterId: metadata.clusterId,
    now,
  });
  if (!caller.ok) return { ok: false, code: status.UNAUTHENTICATED, reason: caller.reasons.join("; ") };
  const signed = await opts.ca.signWorkloadCsr({
    csrPem: request.csr,
    spiffeId: caller.value.spiffeId,
    ttlMs: Number(request.validityDuration) * 1000,
    now,
  });
  if (!signed.ok) return { ok: false, code: status.INVALID_ARGUMENT, reason: signed.reasons.join("; ") };
  return { ok: true, certChain: signed.value };
}

function metadataValue(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return v === undefined ? undefined : typeof v === "string" ? v : v.toString("utf8");
}

/** grpc-js handlers for istioCertificateServiceDefinition. */
export function createCertificateServiceHandlers(opts: CertificateServiceOptions): UntypedServiceImplementation {
  const log = opts.log ?? silentLogger;
  return {
    CreateCertificate: (
      call: { request: CertificateRequest; metadata: Metadata; getPeer(): string },
      callback: (err: Partial<ServiceError> | null, res?: { certChain: string[] }) => void,
    ) => {
      const md = {
        authorization: metadataValue(call.metadata, "authorization"),
        clusterId: metadataValue(call.metadata, "clusterid"),
      };
      createCertificate(call.request, md, opts)
        .then((result) => {
          if (result.ok) {
            log.debug("signed a workload certificate", { peer: call.getPeer(), cluster: md.clusterId });
            callback(null, { certChain: result.certChain });
          } else {
            log.warn("refused a certificate request", {
              peer: call.getPeer(),
              cluster: md.clusterId,
              reason: result.reason,
            });
            callback({ code: result.code, details: result.reason, message: result.reason });
          }
        })
        .catch((err: unknown) => {
          log.error("certificate request failed", { err });
          callback({ code: status.INTERNAL, details: "internal error signing the certificate" });
        });
    },
  } as UntypedServiceImplementation;
}
