/**
 * The inbound capture listener (15006): connections to the pod's ports arrive here,
 * redirected by iptables. Mutual TLS from other sidecars is terminated and the peer's SPIFFE
 * identity checked against the mesh root; plaintext is accepted too unless the port is STRICT
 * (Istio's PERMISSIVE default). HTTP ports are parsed so the peer identity can be passed on
 * (x-forwarded-client-cert) and counted: HTTP/2 when the peer negotiated ALPN istio-h2 (or sent
 * the h2c preface in plaintext), HTTP/1.1 otherwise; the app gets h2c on GRPC/HTTP2 ports and
 * HTTP/1.1 on the others. Other ports are spliced to the app on 127.0.0.1.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { originalDestination } from "../capture/index.js";
import type { InboundPort } from "../config/types.js";
import { forwardHeaders, replyText } from "../outbound/http.js";
import { splice } from "../outbound/tcp.js";
import { parsePeerMetadata, peerMetadataHeader } from "../peer-metadata.js";
import { createDownstreamServer, type DownstreamLimits, defaultDownstreamLimits, onFirstBytes } from "../downstream.js";
import { listenOn } from "../listen.js";
import type { ProxyRuntime } from "../runtime.js";
import {
  connectH2c,
  forwardH2Stream,
  H2Downstream,
  H2SessionPool,
  h2ForwardHeaders,
  isH2Preface,
  replyH2,
} from "../h2.js";
import { alpnIsH2, inboundAlpn, inboundSecureOptions, spiffeIdsOf, type WorkloadCertificate } from "../tls/identity.js";

interface InboundContext {
  readonly port: InboundPort;
  /** The verified SPIFFE ID of the peer; undefined for plaintext. */
  readonly peer: string | undefined;
}

export interface InboundServerOptions {
  readonly runtime: ProxyRuntime;
  /** Limits on downstream requests (defaults: Envoy's). */
  readonly limits?: DownstreamLimits;
  readonly host?: string;
  readonly port: number;
  /** For tests without iptables: the pod port to assume for every connection. */
  readonly fixedPort?: number;
}

/** Istio's reserved sidecar ports (admin, capture, agent); never forwarded to from outside. */
const sidecarOwnPorts: ReadonlySet<number> = new Set([15000, 15001, 15004, 15006, 15008, 15020, 15053]);

function defaultInbound(port: number): InboundPort {
  return { port, kind: "tcp", targetHost: "127.0.0.1", targetPort: port, mtlsMode: "PERMISSIVE" };
}

export class InboundServer {
  readonly #opts: InboundServerOptions;
  readonly #server: net.Server;
  readonly #http: http.Server;
  readonly #contexts = new WeakMap<net.Socket, InboundContext>();
  /** Inbound ports of connections whose TLS handshake is under way, by peer `address:port`. */
  readonly #pending = new Map<string, InboundPort>();
  readonly #agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, noDelay: true } as http.AgentOptions);
  readonly #h2: H2Downstream<InboundContext>;
  /** h2c sessions to apps on GRPC/HTTP2 ports. */
  readonly #appSessions = new H2SessionPool();
  /**
   * Never listens: raw sockets are handed to it after the first byte said TLS. Node's TLS server
   * feeds bytes already read from a socket into the handshake, verifies the client's chain
   * against the root (rejectUnauthorized), and then reads the socket's handle natively.
   */
  readonly #tls: tls.Server;
  #hasCertificate = false;

  constructor(opts: InboundServerOptions) {
    this.#opts = opts;
    this.#http = createDownstreamServer(opts.limits ?? {}, (req, res) => {
      const ctx = this.#contexts.get(req.socket);
      if (ctx === undefined) {
        res.destroy();
        return;
      }
      this.#forward(ctx, req, res);
    });
    this.#h2 = new H2Downstream<InboundContext>((stream, headers, ctx) => this.#forwardH2(ctx, stream, headers));
    this.#server = net.createServer((socket) => this.#accept(socket));
    this.#tls = tls.createServer({ requestCert: true, rejectUnauthorized: true, ALPNProtocols: inboundAlpn });
    this.#tls.on("secureConnection", (tlsSocket: tls.TLSSocket) => this.#secured(tlsSocket));
    this.#tls.on("tlsClientError", (_err, tlsSocket) => {
      this.#opts.runtime.metrics.inc("isthmus_inbound_rejected_total", { reason: "tls_handshake" });
      tlsSocket.destroy();
    });
  }

  /** Installs (or rotates) the certificate presented to peers. */
  setCertificate(cert: WorkloadCertificate): void {
    this.#tls.setSecureContext(inboundSecureOptions(cert));
    this.#hasCertificate = true;
  }

  start(): Promise<number> {
    return listenOn(this.#server, this.#opts.port, this.#opts.host);
  }

  #accept(socket: net.Socket): void {
    socket.on("error", () => socket.destroy());
    socket.setNoDelay(true);
    const dstPort = this.#opts.fixedPort ?? originalDestination(socket)?.port ?? socket.localPort ?? 0;
    if (sidecarOwnPorts.has(dstPort)) {
      // Undeclared ports are forwarded to the pod's loopback, where the sidecar's own admin and
      // capture ports listen: never hand those to a connection from outside the pod.
      this.#opts.runtime.metrics.inc("isthmus_inbound_rejected_total", { reason: "sidecar_port" });
      socket.destroy();
      return;
    }
    const port = this.#opts.runtime.config.inbound.get(dstPort) ?? defaultInbound(dstPort);
    onFirstBytes(
      socket,
      this.#opts.limits?.headersTimeoutMs ?? defaultDownstreamLimits.headersTimeoutMs,
      (first) => {
        if (first[0] === 0x16) this.#acceptTls(socket, port);
        else if (port.mtlsMode === "STRICT") socket.destroy();
        else this.#serve(socket, { port, peer: undefined }, isH2Preface(first));
      },
      // A server-first protocol (the app speaks first) on a PERMISSIVE TCP port: plaintext it is.
      () => {
        if (port.kind === "tcp" && port.mtlsMode === "PERMISSIVE")
          this.#serve(socket, { port, peer: undefined }, false);
        else socket.destroy();
      },
    );
  }

  #acceptTls(socket: net.Socket, port: InboundPort): void {
    if (!this.#hasCertificate) {
      socket.destroy();
      return;
    }
    // The TLS socket the server makes is a new object; the peer's address and port name the connection.
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#pending.set(key, port);
    socket.once("close", () => this.#pending.delete(key));
    this.#tls.emit("connection", socket);
  }

  #secured(tlsSocket: tls.TLSSocket): void {
    const key = `${tlsSocket.remoteAddress}:${tlsSocket.remotePort}`;
    const port = this.#pending.get(key);
    this.#pending.delete(key);
    const peer = spiffeIdsOf(tlsSocket.getPeerCertificate())[0];
    if (port === undefined || peer === undefined) {
      this.#opts.runtime.metrics.inc("isthmus_inbound_rejected_total", { reason: "no_spiffe_id" });
      tlsSocket.destroy();
      return;
    }
    tlsSocket.on("error", () => tlsSocket.destroy());
    this.#opts.runtime.metrics.inc("isthmus_inbound_mtls_connections_total");
    this.#serve(tlsSocket, { port, peer }, alpnIsH2(tlsSocket.alpnProtocol));
  }

  #serve(socket: net.Socket, ctx: InboundContext, h2: boolean): void {
    if (ctx.port.kind === "http") {
      // The HTTP/2 session reads what was unshifted itself; resuming first would hand it to nobody.
      if (h2) this.#h2.accept(socket, ctx);
      else {
        this.#contexts.set(socket, ctx);
        this.#http.emit("connection", socket);
        socket.resume();
      }
      return;
    }
    const app = net.connect({ host: ctx.port.targetHost, port: ctx.port.targetPort });
    app.once("connect", () => {
      splice(socket, app);
      socket.resume();
    });
    app.once("error", () => socket.destroy());
  }

  /**
   * The peer's identity for the app (x-forwarded-client-cert, replacing whatever the client sent)
   * and the metrics recorder for one request, reporter=destination.
   */
  #requestContext(ctx: InboundContext, incoming: http.IncomingHttpHeaders, headers: http.OutgoingHttpHeaders) {
    const started = performance.now();
    const rt = this.#opts.runtime;
    const meta = ctx.peer ? parsePeerMetadata(incoming[peerMetadataHeader]) : {};
    delete headers[peerMetadataHeader];
    delete headers["x-forwarded-client-cert"];
    const self = `spiffe://${rt.workload.trustDomain}/ns/${rt.workload.namespace}/sa/${rt.workload.serviceAccount}`;
    if (ctx.peer) headers["x-forwarded-client-cert"] = `By=${self};URI=${ctx.peer}`;
    return (status: number) =>
      rt.metrics.recordRequest(
        {
          reporter: "destination",
          source_principal: ctx.peer ?? "unknown",
          source_workload: meta.workload ?? "unknown",
          source_workload_namespace: meta.namespace ?? "unknown",
          source_cluster: meta.cluster ?? "unknown",
          destination_workload: rt.workload.workloadName,
          destination_workload_namespace: rt.workload.namespace,
          destination_cluster: rt.workload.clusterId,
          destination_principal: ctx.peer ? self : "unknown",
          response_code: String(status),
          connection_security_policy: ctx.peer ? "mutual_tls" : "none",
        },
        performance.now() - started,
      );
  }

  /** One HTTP/2 stream to the app: h2c on GRPC/HTTP2 ports, else translated to an HTTP/1.1 request. */
  #forwardH2(ctx: InboundContext, stream: http2.ServerHttp2Stream, incoming: http2.IncomingHttpHeaders): void {
    const headers = h2ForwardHeaders(incoming);
    const record = this.#requestContext(ctx, incoming, headers);
    const target = ctx.port;
    if (target.appProtocol === "h2") {
      stream.pause();
      this.#appSessions
        .get(`${target.targetHost}:${target.targetPort}`, () => connectH2c(target.targetHost, target.targetPort))
        .then(
          (session) => {
            forwardH2Stream({ downstream: stream, headers, session, timeoutMs: 0, onDone: (o) => record(o.status) });
            stream.resume();
          },
          (err: Error) => {
            replyH2(
              stream,
              503,
              `upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`,
              "UF",
            );
            record(503);
          },
        );
      return;
    }
    const h1Headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(":") && k !== "te") h1Headers[k] = v;
    h1Headers.host = String(incoming[":authority"] ?? incoming.host ?? "");
    const upstream = http.request(
      {
        agent: this.#agent,
        host: target.targetHost,
        port: target.targetPort,
        method: String(incoming[":method"] ?? "GET"),
        path: String(incoming[":path"] ?? "/"),
        headers: h1Headers,
      },
      (appRes) => {
        const status = appRes.statusCode ?? 502;
        if (stream.closed || stream.destroyed) {
          appRes.destroy();
          return;
        }
        stream.respond({ ...forwardHeaders(appRes.headers), ":status": status });
        appRes.once("error", () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
        appRes.pipe(stream);
        stream.once("finish", () => record(status));
      },
    );
    upstream.on("error", (err) => {
      replyH2(
        stream,
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`,
        "UF",
      );
      record(503);
    });
    stream.once("close", () => {
      if (!stream.writableFinished) upstream.destroy();
    });
    stream.pipe(upstream);
  }

  #forward(ctx: InboundContext, req: http.IncomingMessage, res: http.ServerResponse): void {
    const headers = forwardHeaders(req.headers);
    const record = this.#requestContext(ctx, req.headers, headers);
    if (ctx.port.appProtocol === "h2") {
      this.#forwardH1ToH2(ctx, req, res, headers, record);
      return;
    }
    const upstream = http.request(
      {
        agent: this.#agent,
        host: ctx.port.targetHost,
        port: ctx.port.targetPort,
        method: req.method,
        path: req.url,
        headers,
      },
      (appRes) => {
        const status = appRes.statusCode ?? 502;
        res.writeHead(status, appRes.statusMessage, forwardHeaders(appRes.headers) as http.OutgoingHttpHeaders);
        appRes.once("error", () => res.destroy());
        appRes.pipe(res);
        res.once("finish", () => record(status));
      },
    );
    upstream.on("error", (err) => {
      replyText(
        res,
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`,
        "UF",
      );
      record(503);
    });
    req.once("error", (err) => upstream.destroy(err));
    res.once("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /** An HTTP/1.1 request to an app that speaks only HTTP/2 (a GRPC/HTTP2 port): carried as one h2c stream. */
  #forwardH1ToH2(
    ctx: InboundContext,
    req: http.IncomingMessage,
    res: http.ServerResponse,
    headers: http.OutgoingHttpHeaders,
    record: (status: number) => void,
  ): void {
    const target = ctx.port;
    const fail = (err: Error) => {
      replyText(
        res,
        503,
        `upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`,
        "UF",
      );
      record(503);
    };
    req.pause();
    this.#appSessions
      .get(`${target.targetHost}:${target.targetPort}`, () => connectH2c(target.targetHost, target.targetPort))
      .then((session) => {
        const h2Headers: http2.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(headers)) if (k !== "host") h2Headers[k] = v;
        h2Headers[":method"] = req.method ?? "GET";
        h2Headers[":path"] = req.url ?? "/";
        h2Headers[":authority"] = req.headers.host ?? `${target.targetHost}:${target.targetPort}`;
        h2Headers[":scheme"] = "http";
        const upstream = session.request(h2Headers);
        upstream.on("response", (h) => {
          const status = Number(h[":status"] ?? 502);
          const out: http.OutgoingHttpHeaders = {};
          for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) out[k] = v;
          res.writeHead(status, out);
          upstream.pipe(res);
          res.once("finish", () => record(status));
        });
        upstream.on("error", (err) => (res.headersSent ? res.destroy() : fail(err)));
        res.once("close", () => {
          if (!res.writableFinished) upstream.close(http2.constants.NGHTTP2_CANCEL);
        });
        req.pipe(upstream);
        req.resume();
      }, fail);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#http.close();
    this.#h2.close();
    this.#agent.destroy();
    this.#appSessions.close();
  }

  destroy(): void {
    this.#server.close();
    this.#http.close();
    this.#http.closeAllConnections();
    this.#h2.destroy();
    this.#agent.destroy();
    this.#appSessions.destroy();
  }
}
