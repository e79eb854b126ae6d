/**
 * Wire encoding of Istio's IstioCertificateRequest/Response (proto/istio/v1/auth/ca.proto),
 * written by hand: two messages do not justify a generated module. `metadata` is skipped.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export interface IstioCertificateRequest {
  readonly csr: string;
  /** Seconds; 0 for the CA's default. */
  readonly validityDuration: number;
}

export interface IstioCertificateResponse {
  readonly certChain: readonly string[];
}

export function decodeCertificateRequest(bytes: Uint8Array): IstioCertificateRequest {
  const reader = new BinaryReader(bytes);
  let csr = "";
  let validityDuration = 0;
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === 1 && wire === WireType.LengthDelimited) csr = reader.string();
    else if (field === 3 && wire === WireType.Varint) validityDuration = Number(reader.int64());
    else reader.skip(wire, field);
  }
  return { csr, validityDuration };
}

export function encodeCertificateRequest(req: IstioCertificateRequest): Uint8Array {
  const w = new BinaryWriter();
  if (req.csr !== "") w.tag(1, WireType.LengthDelimited).string(req.csr);
  if (req.validityDuration !== 0) w.tag(3, WireType.Varint).int64(req.validityDuration);
  return w.finish();
}

export function encodeCertificateResponse(res: IstioCertificateResponse): Uint8Array {
  const w = new BinaryWriter();
  for (const pem of res.certChain) w.tag(1, WireType.LengthDelimited).string(pem);
  return w.finish();
}

export function decodeCertificateResponse(bytes: Uint8Array): IstioCertificateResponse {
  const reader = new BinaryReader(bytes);
  const certChain: string[] = [];
  while (reader.pos < reader.len) {
    const [field, wire] = reader.tag();
    if (field === 1 && wire === WireType.LengthDelimited) certChain.push(reader.string());
    else reader.skip(wire, field);
  }
  return { certChain };
}
