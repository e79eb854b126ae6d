/**
 * Connections from the sidecar to endpoints: pooled HTTP agents per endpoint (mutual TLS when
 * the endpoint's sidecar accepts it, plaintext otherwise) and single TCP connections for TCP
 * proxying. Certificates rotate by replacing the pools; connections in flight finish on the old ones.
 */
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { Endpoint, UpstreamCluster } from "../config/types.js";
import { H2SessionPool } from "../h2.js";
import { meshAlpn, meshAlpnHttp, upstreamTlsOptions, type WorkloadCertificate } from "../tls/identity.js";

/** Thrown when the sidecar has no certificate yet but the endpoint needs mutual TLS. */
export class NoCertificateError extends Error {
  readonly code = "ISTHMUS_ERR_NO_CERTIFICATE";
}

/** True when traffic to `ep` of `cluster` must use mutual TLS. */
export function usesMtls(cluster: UpstreamCluster, ep: Endpoint): boolean {
  return cluster.tls !== undefined && ep.tlsMode === "istio";
}

export class UpstreamConnector {
  #cert: WorkloadCertificate | undefined;
  #agents = new Map<string, http.Agent>();
  #sessions = new H2SessionPool();

  /** Installs a new certificate; later requests use it, pooled connections of the old one are closed when idle. */
  setCertificate(cert: WorkloadCertificate): void {
    this.#cert = cert;
    const old = this.#agents;
    this.#agents = new Map();
    for (const a of old.values()) a.destroy();
    this.#sessions.close();
  }

  get certificate(): WorkloadCertificate | undefined {
    return this.#cert;
  }

  /** The keep-alive agent for HTTP requests to `ep`; secure when the cluster and endpoint call for mTLS. */
  agentFor(cluster: UpstreamCluster, ep: Endpoint): { agent: http.Agent; secure: boolean } {
    const secure = usesMtls(cluster, ep);
    const tlsKey = secure ? `|${cluster.tls?.allowedSpiffeIds.join(",")}|${cluster.tls?.sni}` : "";
    const key = `${secure ? "s" : "p"}|${ep.address}:${ep.port}${tlsKey}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      if (secure) {
        const cert = this.#cert;
        if (cert === undefined) throw new NoCertificateError("no workload certificate yet for mutual TLS");
        agent = new https.Agent({
          keepAlive: true,
          maxFreeSockets: 256,
          noDelay: true,
          ...upstreamTlsOptions(
            cert,
            cluster.tls?.allowedSpiffeIds ?? [],
            cluster.tls?.sni ?? "",
            meshAlpnHttp["http/1.1"],
          ),
        });
      } else {
        agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, noDelay: true } as http.AgentOptions);
      }
      this.#agents.set(key, agent);
    }
    return { agent, secure };
  }

  /**
   * A pooled HTTP/2 session to `ep` (h2 inside mutual TLS with ALPN istio-h2, or h2c prior
   * knowledge in plaintext), connected and handshaken; rejects with the connect or handshake
   * error so the caller can retry elsewhere before any stream is sent.
   */
  h2SessionFor(cluster: UpstreamCluster, ep: Endpoint): Promise<http2.ClientHttp2Session> {
    const secure = usesMtls(cluster, ep);
    const tlsKey = secure ? `|${cluster.tls?.allowedSpiffeIds.join(",")}|${cluster.tls?.sni}` : "";
    const key = `${secure ? "s" : "p"}|${ep.address}:${ep.port}${tlsKey}`;
    return this.#sessions.get(key, async () => {
      const socket = await this.connect(cluster, ep, meshAlpnHttp.h2);
      return http2.connect(`http://${ep.address}:${ep.port}`, { createConnection: () => socket });
    });
  }

  /**
   * Opens one TCP (or mutual TLS, offering `alpn`) connection to `ep`, rejecting on failure,
   * a failed handshake, or after the cluster's connect timeout.
   */
  connect(cluster: UpstreamCluster, ep: Endpoint, alpn: readonly string[] = meshAlpn): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      let socket: net.Socket;
      const secure = usesMtls(cluster, ep);
      if (secure) {
        const cert = this.#cert;
        if (cert === undefined) {
          reject(new NoCertificateError("no workload certificate yet for mutual TLS"));
          return;
        }
        socket = tls.connect({
          host: ep.address,
          port: ep.port,
          ...upstreamTlsOptions(cert, cluster.tls?.allowedSpiffeIds ?? [], cluster.tls?.sni ?? "", alpn),
        });
      } else {
        socket = net.connect({ host: ep.address, port: ep.port, noDelay: true });
      }
      const timer = setTimeout(() => {
        socket.destroy(new Error(`connect timeout after ${cluster.connectTimeoutMs} ms`));
      }, cluster.connectTimeoutMs);
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", onError);
      socket.once(secure ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        // tls.connect ignores noDelay; spliced bytes must not wait for the peer's delayed ACK.
        socket.setNoDelay(true);
        socket.off("error", onError);
        resolve(socket);
      });
    });
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
    this.#sessions.destroy();
  }
}
