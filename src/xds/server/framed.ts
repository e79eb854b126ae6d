/**
 * Pre-framed gRPC messages. grpc-js copies every response into a fresh buffer behind the 5-byte
 * gRPC frame header; for a response shared by hundreds of ADS streams that copy (and the page
 * faults of a fresh multi-megabyte buffer per stream) is most of a full push. A buffer made by
 * `framed()` already carries the header, and grpc-js is taught to write such a buffer as it is.
 * If grpc-js changes the method this relies on, the patch is not applied and `framed()` returns
 * plain messages: slower, never wrong (framed.test.ts says which is in force).
 */
import * as interceptors from "@grpc/grpc-js/build/src/server-interceptors.js";

type SerializeMessage = (this: unknown, value: unknown) => Buffer;

const preFramed = new WeakSet<Buffer>();

function install(): boolean {
  const cls = (interceptors as { BaseServerInterceptingCall?: { prototype: object } }).BaseServerInterceptingCall;
  const proto = cls?.prototype as { serializeMessage?: SerializeMessage } | undefined;
  const original = proto?.serializeMessage;
  if (proto === undefined || typeof original !== "function") return false;
  proto.serializeMessage = function (this: unknown, value: unknown): Buffer {
    if (Buffer.isBuffer(value) && preFramed.has(value)) return value;
    return original.call(this, value);
  };
  return true;
}

/** True when grpc-js writes pre-framed buffers without copying them. */
export const zeroCopyFraming: boolean = install();

/**
 * One message made of `parts`, framed for gRPC when zeroCopyFraming (uncompressed flag, 32-bit
 * big-endian length), so grpc-js sends these very bytes on every stream it is written to.
 */
export function framed(parts: readonly Uint8Array[]): Buffer {
  if (!zeroCopyFraming) return Buffer.concat(parts);
  let length = 0;
  for (const p of parts) length += p.length;
  const header = Buffer.alloc(5);
  header.writeUInt32BE(length, 1);
  const out = Buffer.concat([header, ...parts], length + 5);
  preFramed.add(out);
  return out;
}

/** The message inside a buffer made by `framed()` (without the gRPC header, when there is one). */
export function messageOf(buffer: Buffer): Buffer {
  return preFramed.has(buffer) ? buffer.subarray(5) : buffer;
}
