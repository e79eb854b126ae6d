/**
 * The sidecar's local servers: admin on 15000 (loopback only: config_dump, clusters, stats),
 * readiness on 15021 (/healthz/ready) and Prometheus stats on 15090 (/stats/prometheus).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ProxyRuntime } from "../runtime.js";
import { endpointKey } from "../balance/balancer.js";

export interface AdminSources {
  readonly runtime: ProxyRuntime;
  /** The raw xDS configuration as JSON (Envoy's config_dump shape). */
  configDump(): unknown;
  /** Whether the sidecar is ready to serve (has a certificate and its first configuration). */
  isReady(): { ready: boolean; reason: string };
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Envoy's /clusters: every endpoint of every Envoy cluster with its health, weight, cluster ID,
 * requests in flight and outlier state (`outlierCheck` FAILED while ejected, with the last
 * failure's reason, e.g. a TLS handshake that ended at an unknown root).
 */
export function clustersView(rt: ProxyRuntime) {
  return [...rt.config.clusters.values()].map((c) => {
    const balancer = rt.balancer(c);
    return {
      name: c.name,
      hosts: rt.endpointsOf(c).map((e) => {
        const outlier = rt.outliers.state(c.name, endpointKey(e));
        return {
          address: endpointKey(e),
          health: e.healthy ? "HEALTHY" : "UNHEALTHY",
          outlierCheck: outlier.ejected ? "FAILED" : "OK",
          weight: e.weight,
          clusterId: e.clusterId,
          locality: e.locality,
          tlsMode: e.tlsMode,
          activeRequests: balancer.active(e),
          consecutiveFailures: outlier.consecutiveFailures,
          ejections: outlier.ejections,
          ...(outlier.ejected ? { ejectedUntil: new Date(outlier.ejectedUntil).toISOString() } : {}),
          ...(outlier.lastFailure !== "" ? { lastFailure: outlier.lastFailure } : {}),
        };
      }),
    };
  });
}

function clustersText(rt: ProxyRuntime): string {
  const lines: string[] = [];
  for (const c of clustersView(rt)) {
    for (const h of c.hosts) {
      const p = `${c.name}::${h.address}`;
      const flags = [
        ...(h.health === "HEALTHY" ? [] : ["/failed_eds_health"]),
        ...(h.outlierCheck === "FAILED" ? ["/failed_outlier_check"] : []),
      ];
      lines.push(
        `${p}::rq_active::${h.activeRequests}`,
        `${p}::health_flags::${flags.length === 0 ? "healthy" : flags.join("")}`,
        `${p}::weight::${h.weight}`,
        `${p}::cluster_id::${h.clusterId}`,
        `${p}::locality::${h.locality}`,
      );
      if (h.lastFailure !== undefined) lines.push(`${p}::last_failure::${h.lastFailure}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function adminHandler(src: AdminSources): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    switch (url.pathname) {
      case "/config_dump":
        return send(res, 200, "application/json", `${JSON.stringify(src.configDump(), null, 2)}\n`);
      case "/clusters":
        return url.searchParams.get("format") === "json"
          ? send(
              res,
              200,
              "application/json",
              `${JSON.stringify({ cluster_statuses: clustersView(src.runtime) }, null, 2)}\n`,
            )
          : send(res, 200, "text/plain", clustersText(src.runtime));
      case "/stats":
      case "/stats/prometheus":
        return send(res, 200, "text/plain; version=0.0.4", src.runtime.metrics.render());
      case "/ready":
      case "/healthz/ready": {
        const r = src.isReady();
        return send(res, r.ready ? 200 : 503, "text/plain", r.ready ? "LIVE\n" : `${r.reason}\n`);
      }
      default:
        return send(res, 404, "text/plain", "not found: try /config_dump, /clusters, /stats, /ready\n");
    }
  };
}

export interface AdminPorts {
  readonly admin: number;
  readonly health: number;
  readonly prometheus: number;
  /** Where the health and Prometheus servers listen (admin is always loopback). */
  readonly host?: string;
}

/** Starts the three servers; returns their bound ports and a close function. */
export async function startAdminServers(
  src: AdminSources,
  ports: AdminPorts,
): Promise<{ ports: AdminPorts; close(): void }> {
  const handler = adminHandler(src);
  const listen = (port: number, host: string, h: http.RequestListener) =>
    new Promise<http.Server>((resolve, reject) => {
      const s = http.createServer(h);
      s.once("error", reject);
      s.listen(port, host, () => resolve(s));
    });
  const host = ports.host ?? "0.0.0.0";
  const admin = await listen(ports.admin, "127.0.0.1", handler);
  const health = await listen(ports.health, host, (req, res) =>
    req.url?.startsWith("/healthz/ready") ? handler(req, res) : send(res, 404, "text/plain", "not found\n"),
  );
  const prom = await listen(ports.prometheus, host, (req, res) =>
    req.url?.startsWith("/stats/prometheus") ? handler(req, res) : send(res, 404, "text/plain", "not found\n"),
  );
  const port = (s: http.Server) => (s.address() as AddressInfo).port;
  return {
    ports: { admin: port(admin), health: port(health), prometheus: port(prom), host },
    close: () => {
      for (const s of [admin, health, prom]) {
        s.close();
        s.closeAllConnections();
      }
    },
  };
}
