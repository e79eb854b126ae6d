/**
 * HTTP/2 pieces both capture listeners share: detecting the client preface (prior knowledge,
 * h2c), the server that takes such connections, header filtering, and carrying one stream to an
 * upstream HTTP/2 session with its body, response, trailers and resets (what gRPC needs).
 */
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import { connectionHeaders } from "./headers.js";

/** The first bytes of every HTTP/2 connection (RFC 9113 §3.4); HTTP/1.1 never starts with them. */
const prefaceStart = Buffer.from("PRI * HTTP/2.0");

/** True when the first bytes a client sent are (the start of) the HTTP/2 connection preface. */
export function isH2Preface(first: Buffer): boolean {
  const n = Math.min(first.length, prefaceStart.length);
  return n >= 3 && first.subarray(0, n).equals(prefaceStart.subarray(0, n));
}

/**
 * An HTTP/2 server that never listens: connections (plain sockets after the preface was seen,
 * or TLS sockets that negotiated istio-h2) are given to `accept`. `close()` sends GOAWAY and lets
 * open streams finish; `destroy()` drops every session now.
 */
export class H2Downstream<C> {
  readonly #server: http2.Http2Server;
  readonly #sessions = new Set<http2.ServerHttp2Session>();

  constructor(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, context: C) => void) {
    this.#server = http2.createServer();
    this.#server.on("session", (session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      session.on("error", () => session.destroy());
    });
    this.#server.on("stream", (stream, headers) => {
      stream.on("error", () => stream.destroy());
      // session.socket is a Proxy of the socket given to accept(): identity differs, properties pass through.
      const context = (stream.session?.socket as unknown as Record<symbol, C> | undefined)?.[contextKey];
      if (context === undefined) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      onStream(stream, headers, context);
    });
  }

  /** Serves HTTP/2 on `socket`; every stream of it is handed over with `context`. */
  accept(socket: Duplex, context: C): void {
    Object.defineProperty(socket, contextKey, { value: context });
    this.#server.emit("connection", socket);
  }

  close(): void {
    for (const s of this.#sessions) s.close();
  }

  destroy(): void {
    for (const s of this.#sessions) s.destroy();
  }
}

const contextKey = Symbol("isthmus.h2.context");

// HTTP/2 carries the authority as `:authority`; `te: trailers` stays (gRPC needs it).
const hopByHop = new Set([...connectionHeaders, "host"]);

/** Request or response headers to pass on: no connection-specific ones; `te: trailers` stays (gRPC needs it). */
export function h2ForwardHeaders(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || hopByHop.has(k)) continue;
    if (k === "te" && v !== "trailers") continue;
    out[k] = v;
  }
  return out;
}

/** The request's authority, whether it came as `:authority` (HTTP/2) or `host`. */
export function authorityOf(headers: http2.IncomingHttpHeaders): string {
  return String(headers[":authority"] ?? headers.host ?? "");
}

/** Answers a stream with a small text body in Envoy's style (404 NR, 503 UH/UF, 504 UT). */
export function replyH2(stream: http2.ServerHttp2Stream, status: number, body: string, flags: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({
    ":status": status,
    "content-type": "text/plain",
    "content-length": Buffer.byteLength(body),
    "x-isthmus-flags": flags,
  });
  stream.end(body);
}

/** How a forwarded stream ended, for metrics and outlier detection. */
export interface H2Outcome {
  /** The status sent downstream (the upstream's, or the sidecar's own 503/504). */
  readonly status: number;
  /** True when the upstream answered (even with an error status). */
  readonly answered: boolean;
  readonly error?: Error;
}

export interface H2ForwardOptions {
  readonly downstream: http2.ServerHttp2Stream;
  /** Request headers for the upstream, pseudo-headers included. */
  readonly headers: http2.OutgoingHttpHeaders;
  readonly session: http2.ClientHttp2Session;
  /** Deadline for the whole exchange up to the response headers, ms (0 = none). */
  readonly timeoutMs: number;
  /** Called once, when the downstream stream has closed. */
  readonly onDone: (outcome: H2Outcome) => void;
}

/**
 * Carries one downstream stream over `session`: request body streamed up, response headers,
 * body and trailers streamed down; a reset on either side resets the other.
 */
export function forwardH2Stream(o: H2ForwardOptions): void {
  const { downstream } = o;
  let status = 0;
  let answered = false;
  let error: Error | undefined;
  let upstream: http2.ClientHttp2Stream;
  try {
    upstream = o.session.request(o.headers, { endStream: downstream.readableEnded });
  } catch (err) {
    error = err as Error;
    replyH2(
      downstream,
      503,
      `upstream connect error or disconnect/reset before headers. reset reason: ${error.message}`,
      "UF",
    );
    o.onDone({ status: 503, answered: false, error });
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  if (o.timeoutMs > 0) {
    timer = setTimeout(() => {
      error = new Error("upstream request timeout");
      status = 504;
      replyH2(downstream, 504, "upstream request timeout", "UT");
      upstream.close(http2.constants.NGHTTP2_CANCEL);
    }, o.timeoutMs);
  }
  let trailers: http2.IncomingHttpHeaders | undefined;
  upstream.on("response", (headers, flags) => {
    if (timer) clearTimeout(timer);
    if (downstream.destroyed || downstream.closed) return;
    answered = true;
    status = Number(headers[":status"] ?? 502);
    const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    // gRPC's answer ends in trailers; the downstream must wait for them rather than close after the data.
    downstream.respond(h2ForwardHeaders(headers), endStream ? { endStream: true } : { waitForTrailers: true });
    if (!endStream) upstream.pipe(downstream);
  });
  upstream.on("trailers", (t) => {
    trailers = t;
  });
  downstream.on("wantTrailers", () => downstream.sendTrailers(trailers ? h2ForwardHeaders(trailers) : {}));
  upstream.on("error", (err) => {
    if (timer) clearTimeout(timer);
    error ??= err;
    if (!answered) {
      status = 503;
      replyH2(
        downstream,
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`,
        "UC",
      );
    } else downstream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  upstream.on("close", () => {
    if (timer) clearTimeout(timer);
    // A reset from the upstream after its headers is passed on as a reset, with the same code.
    if (answered && !upstream.readableEnded && !downstream.closed)
      downstream.close(upstream.rstCode || http2.constants.NGHTTP2_INTERNAL_ERROR);
    else if (!answered && !downstream.headersSent && status === 0) {
      status = 503;
      replyH2(downstream, 503, "upstream reset before headers", "UC");
    }
  });
  downstream.on("close", () => {
    if (timer) clearTimeout(timer);
    if (!upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL);
    o.onDone({ status: status || 503, answered, ...(error ? { error } : {}) });
  });
  if (!downstream.readableEnded) downstream.pipe(upstream);
}

/**
 * Pooled client sessions, one per key (an upstream and the TLS settings used for it): a session
 * is forgotten once it closes, fails or is told to go away, and the next stream opens a new one.
 */
export class H2SessionPool {
  #sessions = new Map<string, Promise<http2.ClientHttp2Session>>();

  /** The pooled session for `key`, opened with `open` when there is none; rejects with `open`'s error. */
  get(key: string, open: () => Promise<http2.ClientHttp2Session>): Promise<http2.ClientHttp2Session> {
    const pooled = this.#sessions.get(key);
    if (pooled !== undefined) return pooled;
    const sessions = this.#sessions;
    const forget = () => {
      if (sessions.get(key) === opened) sessions.delete(key);
    };
    const opened = open().then((session) => {
      session.once("close", forget);
      session.once("goaway", forget);
      session.on("error", forget);
      // An idle pooled session must not keep the process alive.
      session.unref();
      return session;
    });
    opened.catch(forget);
    sessions.set(key, opened);
    return opened;
  }

  /** Closes every session gracefully (open streams finish) and starts afresh. */
  close(): void {
    const old = this.#sessions;
    this.#sessions = new Map();
    for (const s of old.values()) s.then((session) => session.close()).catch(() => {});
  }

  /** Drops every session now. */
  destroy(): void {
    const old = this.#sessions;
    this.#sessions = new Map();
    for (const s of old.values()) s.then((session) => session.destroy()).catch(() => {});
  }
}

/** Opens an h2c (prior knowledge) session to `host:port`, resolved once the connection is up. */
export function connectH2c(host: string, port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${host}:${port}`);
    session.once("connect", () => {
      session.off("error", reject);
      resolve(session);
    });
    session.once("error", reject);
  });
}
