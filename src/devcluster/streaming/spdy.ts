/**
 * SPDY/3.1 on the server side, as kubectl's SPDY transport (and the SPDY-over-WebSocket tunnel
 * of port-forward) speaks it, on top of spdy-transport 3.0.0 with the two fixes Kubernetes
 * needs: SYN_STREAMs without `:method`/`:path` are accepted, and every stream gets an error
 * listener (kubectl's GOAWAY makes spdy-transport emit errors on open streams).
 */
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";

/** One SPDY stream as spdy-transport exposes it. */
export interface SpdyStream extends Duplex {
  readonly headers: Record<string, string | undefined>;
  respond(status: number, headers: Record<string, string>): void;
}

/** One SPDY connection. */
export interface SpdyConnection extends EventEmitter {
  start(version: number): void;
  end(callback?: () => void): void;
}

interface ParserModule {
  create(opts: unknown): object;
}
interface ParserProto {
  __isthmusK8s?: boolean;
  parseKVs(buf: unknown, cb: (err: unknown, headers: Record<string, string> | undefined) => void): unknown;
}
interface TransportModule {
  connection: { create(socket: Duplex, opts: { protocol: string; isServer: boolean }): SpdyConnection };
}

const require = createRequire(import.meta.url);
let transport: TransportModule | undefined;

function load(): TransportModule {
  if (transport) return transport;
  const parser = require("spdy-transport/lib/spdy-transport/protocol/spdy/parser") as ParserModule;
  const create = parser.create;
  parser.create = function patchedCreate(this: unknown, opts: unknown) {
    const p = create.call(this, opts);
    const proto = Object.getPrototypeOf(p) as ParserProto;
    if (!proto.__isthmusK8s) {
      proto.__isthmusK8s = true;
      const parseKVs = proto.parseKVs;
      // Kubernetes' SYN_STREAMs carry only `streamtype` (and port headers): default the HTTP pseudo-headers.
      proto.parseKVs = function patchedParseKVs(this: unknown, buf, cb) {
        return parseKVs.call(this, buf, (err, headers) => {
          if (!err && headers && headers[":status"] === undefined) {
            headers[":method"] ??= "POST";
            headers[":path"] ??= "/";
          }
          cb(err, headers);
        });
      };
    }
    return p;
  };
  transport = require("spdy-transport") as TransportModule;
  return transport;
}

/**
 * Starts a server-side SPDY/3.1 connection on `socket` (after the 101 reply was written).
 * `onStream` gets every stream the client opens, already answered and guarded against errors.
 */
export function serveSpdy(socket: Duplex, onStream: (stream: SpdyStream) => void): SpdyConnection {
  const conn = load().connection.create(socket, { protocol: "spdy", isServer: true });
  conn.on("error", () => {});
  conn.on("stream", (s: SpdyStream) => {
    s.on("error", () => {});
    s.respond(200, {});
    onStream(s);
  });
  conn.start(3.1);
  return conn;
}

/** Values of a possibly repeated, comma-separated request header. */
export function headerValues(v: string | string[] | undefined): string[] {
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all
    .flatMap((x) => x.split(","))
    .map((x) => x.trim())
    .filter((x) => x !== "");
}
