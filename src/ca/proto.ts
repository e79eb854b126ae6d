/**
 * The CA server's codec for Istio's certificate-service messages, on the generated types of
 * src/gen/istio/v1/auth/ca_pb.ts (the sidecar's CA client uses the same ones). Malformed bytes
 * throw an Error, which grpc-js turns into a failed call.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type IstioCertificateRequest,
  IstioCertificateRequestSchema,
  type IstioCertificateResponse,
  IstioCertificateResponseSchema,
} from "../gen/istio/v1/auth/ca_pb.js";

export type { IstioCertificateRequest, IstioCertificateResponse };

/** Decodes a CreateCertificate request. */
export function decodeCertificateRequest(bytes: Uint8Array): IstioCertificateRequest {
  return fromBinary(IstioCertificateRequestSchema, bytes);
}

/** Encodes a CreateCertificate request; `validityDuration` in seconds, 0 for the CA's default. */
export function encodeCertificateRequest(req: { csr: string; validityDuration: number | bigint }): Uint8Array {
  return toBinary(
    IstioCertificateRequestSchema,
    create(IstioCertificateRequestSchema, { csr: req.csr, validityDuration: BigInt(req.validityDuration) }),
  );
}

/** Encodes a CreateCertificate response: the chain, leaf first. */
export function encodeCertificateResponse(res: { certChain: readonly string[] }): Uint8Array {
  return toBinary(
    IstioCertificateResponseSchema,
    create(IstioCertificateResponseSchema, { certChain: [...res.certChain] }),
  );
}

/** Decodes a CreateCertificate response. */
export function decodeCertificateResponse(bytes: Uint8Array): IstioCertificateResponse {
  return fromBinary(IstioCertificateResponseSchema, bytes);
}
