/**
 * The outbound capture listener (15001): every TCP connection the app makes arrives here,
 * redirected by iptables. Its original destination selects a listener from LDS (the VIP's,
 * else the port's wildcard); HTTP listeners parse requests and route them, TCP listeners splice,
 * and destinations the mesh does not know pass through to where the app meant to go.
 */
import type http from "node:http";
import net from "node:net";
import { originalDestination } from "../capture/index.js";
import { findOutboundListener } from "../config/types.js";
import { createDownstreamServer, type DownstreamLimits, defaultDownstreamLimits, onFirstBytes } from "../downstream.js";
import { H2Downstream, isH2Preface } from "../h2.js";
import { listenOn } from "../listen.js";
import type { ProxyRuntime } from "../runtime.js";
import { handleOutboundH2 } from "./h2.js";
import { handleOutboundHttp } from "./http.js";
import { proxyTcp, splice } from "./tcp.js";

export interface OutboundServerOptions {
  readonly runtime: ProxyRuntime;
  /** Limits on downstream requests (defaults: Envoy's). */
  readonly limits?: DownstreamLimits;
  readonly host?: string;
  readonly port: number;
  /** For tests without iptables: the destination to assume for every connection. */
  readonly fixedDestination?: { address: string; port: number };
}

export class OutboundServer {
  readonly #opts: OutboundServerOptions;
  readonly #server: net.Server;
  readonly #http: http.Server;
  readonly #h2: H2Downstream<string>;
  readonly #routeOf = new WeakMap<net.Socket, string>();
  readonly #firstBytesTimeoutMs: number;

  constructor(opts: OutboundServerOptions) {
    this.#opts = opts;
    this.#firstBytesTimeoutMs = opts.limits?.headersTimeoutMs ?? defaultDownstreamLimits.headersTimeoutMs;
    this.#http = createDownstreamServer(opts.limits ?? {}, (req, res) => {
      const route = this.#routeOf.get(req.socket);
      if (route === undefined) {
        res.destroy();
        return;
      }
      handleOutboundHttp(opts.runtime, route, req, res).catch(() => res.destroy());
    });
    this.#h2 = new H2Downstream<string>((stream, headers, route) => {
      handleOutboundH2(opts.runtime, route, stream, headers).catch(() => stream.destroy());
    });
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  start(): Promise<number> {
    return listenOn(this.#server, this.#opts.port, this.#opts.host);
  }

  #accept(socket: net.Socket): void {
    socket.on("error", () => socket.destroy());
    // Requests and responses are written in pieces; Nagle would hold each piece for the peer's delayed ACK.
    socket.setNoDelay(true);
    const rt = this.#opts.runtime;
    const dst = this.#opts.fixedDestination ??
      originalDestination(socket) ?? { address: socket.localAddress ?? "", port: socket.localPort ?? 0 };
    if (dst.port === (this.#server.address() as net.AddressInfo).port && this.#opts.fixedDestination === undefined) {
      // Connected to the capture port itself, not redirected: nothing to proxy to (and a loop otherwise).
      socket.destroy();
      return;
    }
    const listener = findOutboundListener(rt.config, dst.address, dst.port);
    if (listener === undefined) {
      this.#passthrough(socket, dst);
      return;
    }
    if (listener.action.kind === "tcp") {
      const cluster = rt.config.clusters.get(listener.action.cluster);
      if (cluster === undefined) {
        socket.destroy();
        return;
      }
      if (cluster.type === "ORIGINAL_DST") {
        this.#passthrough(socket, dst);
        return;
      }
      void proxyTcp(rt, cluster, socket);
      return;
    }
    const routeConfigName = listener.action.routeConfigName;
    // HTTP/2 with prior knowledge (h2c, gRPC) announces itself with its connection preface.
    onFirstBytes(socket, this.#firstBytesTimeoutMs, (first) => {
      // The HTTP/2 session reads the unshifted preface itself; resuming first would hand it to nobody.
      if (isH2Preface(first)) this.#h2.accept(socket, routeConfigName);
      else {
        this.#routeOf.set(socket, routeConfigName);
        this.#http.emit("connection", socket);
        socket.resume();
      }
    });
  }

  /** Istio's ALLOW_ANY: unknown destinations are reached directly (the sidecar's own traffic is not captured). */
  #passthrough(socket: net.Socket, dst: { address: string; port: number }): void {
    socket.pause();
    const upstream = net.connect({ host: dst.address, port: dst.port });
    upstream.once("connect", () => {
      splice(socket, upstream);
      socket.resume();
    });
    upstream.once("error", () => socket.destroy());
  }

  /** Stops accepting; open connections finish. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#http.close();
    this.#h2.close();
  }

  /** Stops now, dropping open connections. */
  destroy(): void {
    this.#server.close();
    this.#http.close();
    this.#http.closeAllConnections();
    this.#h2.destroy();
  }
}
