/**
 * Hand-written protobuf encoding of the one message the server sends most: a state-of-the-world
 * DiscoveryResponse. Each resource is encoded once per push as a ready-made `resources` field and
 * shared by every proxy it goes to, so a response costs one concatenation instead of a re-encode
 * of every resource. Field numbers are those of envoy.service.discovery.v3.DiscoveryResponse
 * (version_info 1, resources 2, type_url 4, nonce 5), DeltaDiscoveryResponse (system_version_info 1,
 * resources 2, type_url 4, nonce 5, removed_resources 6), Resource (version 1, resource 2, name 3)
 * and google.protobuf.Any (type_url 1, value 2).
 */
import { framed } from "./framed.js";

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A length-delimited field: tag, length, bytes. */
export function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

/** The `resources` field (2) of a DiscoveryResponse holding one packed resource. */
export function encodeResourceField(typeUrl: string, value: Uint8Array): Buffer {
  const any = Buffer.concat([lengthDelimited(1, Buffer.from(typeUrl)), lengthDelimited(2, value)]);
  return lengthDelimited(2, any);
}

/** A whole DiscoveryResponse from pre-encoded resource fields, framed for gRPC when it can be (framed.ts). */
export function encodeDiscoveryResponse(
  versionInfo: string,
  typeUrl: string,
  nonce: string,
  resourceFields: readonly Buffer[],
): Buffer {
  const parts: Buffer[] = [];
  if (versionInfo !== "") parts.push(lengthDelimited(1, Buffer.from(versionInfo)));
  parts.push(...resourceFields);
  if (typeUrl !== "") parts.push(lengthDelimited(4, Buffer.from(typeUrl)));
  if (nonce !== "") parts.push(lengthDelimited(5, Buffer.from(nonce)));
  return framed(parts);
}

/**
 * The `resources` field (2) of a DeltaDiscoveryResponse: a Resource holding `version`, the packed
 * resource and `name`. `anyField` is what encodeResourceField returned: Resource keeps its Any in
 * field 2 as well, so those bytes are reused as they are.
 */
export function encodeDeltaResourceField(name: string, version: string, anyField: Buffer): Buffer {
  return lengthDelimited(
    2,
    Buffer.concat([lengthDelimited(1, Buffer.from(version)), anyField, lengthDelimited(3, Buffer.from(name))]),
  );
}

/** A whole DeltaDiscoveryResponse from pre-encoded Resource fields and the names removed, framed as above. */
export function encodeDeltaDiscoveryResponse(
  systemVersionInfo: string,
  typeUrl: string,
  nonce: string,
  resourceFields: readonly Buffer[],
  removedResources: readonly string[],
): Buffer {
  const parts: Buffer[] = [];
  if (systemVersionInfo !== "") parts.push(lengthDelimited(1, Buffer.from(systemVersionInfo)));
  parts.push(...resourceFields);
  if (typeUrl !== "") parts.push(lengthDelimited(4, Buffer.from(typeUrl)));
  if (nonce !== "") parts.push(lengthDelimited(5, Buffer.from(nonce)));
  for (const name of removedResources) parts.push(lengthDelimited(6, Buffer.from(name)));
  return framed(parts);
}
