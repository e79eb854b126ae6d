/**
 * Outbound HTTP, after the listener has chosen a route table: route by Host and path, choose
 * an endpoint, forward over a pooled (mutual TLS) connection, retry as the route says, and
 * stream the response back. Status codes and bodies on failure follow Envoy's.
 */
import http from "node:http";
import https from "node:https";
import { endpointKey } from "../balance/balancer.js";
import { type Endpoint, findRoute, findVirtualHost, type Route, type UpstreamCluster } from "../config/types.js";
import { formatPeerMetadata, peerMetadataHeader } from "../peer-metadata.js";
import type { ProxyRuntime } from "../runtime.js";

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "http2-settings",
]);
/** Bodies up to this size are buffered so that a failed attempt can be retried. */
const retryBufferLimit = 1 << 20;

/** Headers to send upstream: the client's, minus hop-by-hop ones and any the Connection header names. */
export function forwardHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ""),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || hopByHop.has(k) || named.has(k) || k.startsWith(":")) continue;
    out[k] = v;
  }
  return out;
}

/** Sends a small text reply in Envoy's style (used for 404 no route, 503 no upstream). */
export function replyText(res: http.ServerResponse, status: number, body: string, flags: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, {
    "content-type": "text/plain",
    "content-length": Buffer.byteLength(body),
    "x-isthmus-flags": flags,
  });
  res.end(body);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const length = Number(req.headers["content-length"] ?? "0");
  if (req.headers["transfer-encoding"] === undefined && length === 0) return Buffer.alloc(0);
  if (length > retryBufferLimit) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    chunks.push(b);
    if (size > retryBufferLimit) {
      // Too large to keep for retries: the caller streams what was read and the rest.
      req.unshift(Buffer.concat(chunks));
      return undefined;
    }
  }
  return Buffer.concat(chunks);
}

type Attempt =
  | { kind: "response"; upstream: http.IncomingMessage }
  | { kind: "connect-failure"; error: Error }
  | { kind: "reset"; error: Error };

function attempt(
  rt: ProxyRuntime,
  cluster: UpstreamCluster,
  ep: Endpoint,
  req: http.IncomingMessage,
  body: Buffer | undefined,
  timeoutMs: number,
): Promise<Attempt> {
  return new Promise((resolve) => {
    let agentInfo: { agent: http.Agent; secure: boolean };
    try {
      agentInfo = rt.connector.agentFor(cluster, ep);
    } catch (err) {
      resolve({ kind: "connect-failure", error: err as Error });
      return;
    }
    const headers = forwardHeaders(req.headers);
    headers.host = req.headers.host ?? `${ep.address}:${ep.port}`;
    headers["x-forwarded-proto"] ??= "http";
    delete headers[peerMetadataHeader];
    if (agentInfo.secure) {
      const w = rt.workload;
      headers[peerMetadataHeader] = formatPeerMetadata({
        cluster: w.clusterId,
        workload: w.workloadName,
        namespace: w.namespace,
      });
    }
    if (body !== undefined) {
      delete headers["transfer-encoding"];
      headers["content-length"] = String(body.length);
    }
    const send = agentInfo.secure ? https.request : http.request;
    let connected = false;
    const upstreamReq = send({
      agent: agentInfo.agent,
      host: ep.address,
      port: ep.port,
      method: req.method,
      path: req.url,
      headers,
      timeout: cluster.connectTimeoutMs,
    });
    // Agents do not pass noDelay on to TLS sockets; without it Nagle holds a request behind the delayed ACK of the last one.
    upstreamReq.setNoDelay(true);
    upstreamReq.on("socket", (s) => {
      const mark = () => {
        connected = true;
      };
      if (!s.connecting) mark();
      else {
        rt.metrics.inc("envoy_cluster_upstream_cx_total", { cluster_name: cluster.name });
        s.once(agentInfo.secure ? "secureConnect" : "connect", mark);
      }
    });
    upstreamReq.on("timeout", () =>
      upstreamReq.destroy(new Error(connected ? "upstream request timeout" : "connect timeout")),
    );
    let routeTimer: NodeJS.Timeout | undefined;
    if (timeoutMs > 0)
      routeTimer = setTimeout(() => upstreamReq.destroy(new Error("upstream request timeout")), timeoutMs);
    upstreamReq.on("response", (upstream) => {
      if (routeTimer) clearTimeout(routeTimer);
      upstreamReq.setTimeout(0);
      resolve({ kind: "response", upstream });
    });
    upstreamReq.on("error", (error) => {
      if (routeTimer) clearTimeout(routeTimer);
      resolve(connected ? { kind: "reset", error } : { kind: "connect-failure", error });
    });
    if (body !== undefined) upstreamReq.end(body);
    else {
      // A client that goes away mid-body takes the upstream request with it.
      req.once("error", (err) => upstreamReq.destroy(err));
      req.pipe(upstreamReq);
    }
  });
}

/** Whether the route's retry policy allows another attempt after this outcome. */
function shouldRetry(route: Route, outcome: Attempt): boolean {
  const retry = route.retry;
  if (retry === undefined) return false;
  if (outcome.kind === "connect-failure") return retry.retryOn.has("connect-failure") || retry.retryOn.has("reset");
  if (outcome.kind === "reset") return retry.retryOn.has("reset") || retry.retryOn.has("refused-stream");
  const status = outcome.upstream.statusCode ?? 0;
  if (retry.retryOn.has("retriable-status-codes") && retry.retriableStatusCodes.has(status)) return true;
  if (retry.retryOn.has("5xx") && status >= 500) return true;
  if (retry.retryOn.has("gateway-error") && status >= 502 && status <= 504) return true;
  return false;
}

/** Metric labels for a request this sidecar sent out (reporter=source). */
function outboundLabels(
  rt: ProxyRuntime,
  host: string,
  ep: Endpoint | undefined,
  status: number,
): Record<string, string> {
  const w = rt.workload;
  return {
    reporter: "source",
    source_workload: w.workloadName,
    source_workload_namespace: w.namespace,
    source_cluster: w.clusterId,
    destination_service: host,
    destination_workload: ep?.workload.split(";")[0] ?? "unknown",
    destination_cluster: ep?.clusterId || "unknown",
    response_code: String(status),
    connection_security_policy: "unknown",
  };
}

/** Handles one outbound HTTP request for the route table `routeConfigName`. */
export async function handleOutboundHttp(
  rt: ProxyRuntime,
  routeConfigName: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const started = performance.now();
  const host = req.headers.host ?? "";
  const table = rt.config.routes.get(routeConfigName);
  const vh = table ? findVirtualHost(table, host) : undefined;
  const route = vh ? findRoute(vh, req.url ?? "/") : undefined;
  if (route === undefined) {
    replyText(res, 404, "", "NR");
    rt.metrics.recordRequest(outboundLabels(rt, host, undefined, 404), performance.now() - started);
    return;
  }
  const cluster = rt.config.clusters.get(route.cluster);
  const endpoints = cluster ? rt.endpointsOf(cluster) : [];
  if (cluster === undefined || cluster.blackHole || endpoints.length === 0) {
    replyText(res, 503, "no healthy upstream", "UH");
    rt.metrics.recordRequest(outboundLabels(rt, host, undefined, 503), performance.now() - started);
    return;
  }
  const body = await readBody(req);
  const balancer = rt.balancer(cluster);
  const tried = new Set<string>();
  const maxAttempts = 1 + (body !== undefined ? (route.retry?.numRetries ?? 0) : 0);
  let last: Attempt | undefined;
  let ep: Endpoint | undefined;
  for (let n = 0; n < maxAttempts; n++) {
    ep = balancer.pick(endpoints, route.retry?.avoidPreviousHosts === false ? undefined : tried);
    if (ep === undefined) break;
    tried.add(endpointKey(ep));
    const done = balancer.begin(ep);
    last = await attempt(rt, cluster, ep, req, body, route.timeoutMs);
    if (last.kind === "response") {
      const upstream = last.upstream;
      if (n + 1 < maxAttempts && shouldRetry(route, last)) {
        upstream.resume();
        done();
        rt.metrics.inc("envoy_cluster_upstream_rq_retry", { cluster_name: cluster.name });
        continue;
      }
      const status = upstream.statusCode ?? 502;
      res.writeHead(status, upstream.statusMessage, forwardHeaders(upstream.headers) as http.OutgoingHttpHeaders);
      // An upstream reset mid-body can only be passed on as a reset: the status line is already sent.
      upstream.once("error", () => res.destroy());
      upstream.pipe(res);
      const finish = () => {
        done();
        rt.metrics.recordRequest(outboundLabels(rt, host, ep, status), performance.now() - started);
      };
      res.once("finish", finish);
      res.once("close", () => {
        if (!res.writableFinished) {
          upstream.destroy();
          done();
        }
      });
      return;
    }
    done();
    if (!(n + 1 < maxAttempts && shouldRetry(route, last))) break;
    rt.metrics.inc("envoy_cluster_upstream_rq_retry", { cluster_name: cluster.name });
  }
  const reason = last?.kind === "reset" ? "connection termination" : "connection failure";
  const detail = last && last.kind !== "response" ? `, transport failure reason: ${last.error.message}` : "";
  replyText(
    res,
    503,
    `upstream connect error or disconnect/reset before headers. reset reason: ${reason}${detail}`,
    last?.kind === "reset" ? "UC" : "UF",
  );
  rt.metrics.recordRequest(outboundLabels(rt, host, ep, 503), performance.now() - started);
}
