/**
 * The HTTP/1.1 server both capture listeners hand parsed connections to, with the limits Envoy
 * applies to downstream clients: headers up to 60 KiB (431 beyond), a deadline for a request's
 * headers (408 for a client too slow to send them), 400 for a request that does not parse.
 * Bad input gets an answer and a closed connection, never an exception.
 */
import http from "node:http";
import type { Duplex } from "node:stream";

/** Limits on what a downstream client may send. */
export interface DownstreamLimits {
  /** Largest request head accepted, bytes (Envoy's max_request_headers_kb default is 60). */
  readonly maxHeaderBytes?: number;
  /** How long a client may take to send a request's headers, ms. */
  readonly headersTimeoutMs?: number;
}

export const defaultDownstreamLimits: Required<DownstreamLimits> = {
  maxHeaderBytes: 60 * 1024,
  headersTimeoutMs: 10_000,
};

function statusFor(err: Error & { code?: string }): { status: number; text: string } {
  if (err.code === "HPE_HEADER_OVERFLOW") return { status: 431, text: "Request Header Fields Too Large" };
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") return { status: 408, text: "Request Timeout" };
  return { status: 400, text: "Bad Request" };
}

/** Answers a request the parser refused (when the socket can still take it) and closes the connection. */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (socket.writable && !(err.code === "ECONNRESET" || err.code === "EPIPE")) {
    const { status, text } = statusFor(err);
    const body = `${text}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    socket.once("finish", () => socket.destroy());
    return;
  }
  socket.destroy();
}

/**
 * An http.Server that never listens: connections are given to it with `emit("connection", socket)`.
 * Its `close()` stops the deadline checks and closes idle connections.
 */
export function createDownstreamServer(limits: DownstreamLimits, handler: http.RequestListener): http.Server {
  const l = { ...defaultDownstreamLimits, ...limits };
  const server = http.createServer(
    {
      keepAlive: true,
      maxHeaderSize: l.maxHeaderBytes,
      headersTimeout: l.headersTimeoutMs,
      // Whole-request deadlines belong to the route (its timeout), not to the listener.
      requestTimeout: 0,
      // How often Node checks the headers deadline; the default (30 s) would let a slow client linger.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(l.headersTimeoutMs / 2))),
    },
    handler,
  );
  server.on("clientError", answerClientError);
  // Node tracks connections (the headers deadline, closeIdleConnections, closeAllConnections) only
  // from "listening" on; this server is fed sockets instead, so it is told it listens.
  server.emit("listening");
  return server;
}

/**
 * Waits for a connection's first bytes (they tell TLS from plaintext, HTTP/2 from HTTP/1.1),
 * pauses the socket and puts them back, then calls `then`. A client that stays silent past
 * `timeoutMs` goes to `onSilent` (default: closed; it would otherwise hold a connection before
 * any deadline applies).
 */
export function onFirstBytes(
  socket: Duplex,
  timeoutMs: number,
  then: (first: Buffer) => void,
  onSilent: () => void = () => socket.destroy(),
): void {
  const onData = (first: Buffer) => {
    clearTimeout(timer);
    socket.pause();
    socket.unshift(first);
    then(first);
  };
  const timer = setTimeout(() => {
    socket.off("data", onData);
    onSilent();
  }, timeoutMs);
  socket.once("close", () => clearTimeout(timer));
  socket.once("data", onData);
}
