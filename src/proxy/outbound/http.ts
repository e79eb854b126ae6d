/**
 * Outbound HTTP, after the listener has chosen a route table: route by Host and path, choose
 * an endpoint, forward over a pooled (mutual TLS) connection, retry as the route says, and
 * stream the response back. Status codes and bodies on failure follow Envoy's.
 */
import http from "node:http";
import https from "node:https";
import { endpointKey } from "../balance/balancer.js";
import { type Endpoint, findRoute, findVirtualHost, type Route, type UpstreamCluster } from "../config/types.js";
import { connectionHeaders } from "../headers.js";
import { formatPeerMetadata, peerMetadataHeader } from "../peer-metadata.js";
import type { ProxyRuntime } from "../runtime.js";

// HTTP/1.1 to HTTP/1.1: TE and Trailer are hop-by-hop too.
const hopByHop = new Set([...connectionHeaders, "te", "trailer"]);
/** Bodies up to this size are buffered so that a failed attempt can be retried. */
const retryBufferLimit = 1 << 20;

/** Headers to send upstream: the client's, minus hop-by-hop ones and any the Connection header names. */
export function forwardHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  // Runs twice per request on each side: no allocations beyond the result when nothing is named.
  const connection = headers.connection;
  const named =
    connection === undefined || connection === "keep-alive" || connection === "close"
      ? undefined
      : new Set(
          String(connection)
            .split(",")
            .map((s) => s.trim().toLowerCase())
            .filter((s) => s !== ""),
        );
  const out: http.OutgoingHttpHeaders = {};
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || hopByHop.has(k) || named?.has(k) || k.charCodeAt(0) === 58) continue;
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
  | { kind: "response"; upstream: http.IncomingMessage; request: http.ClientRequest }
  | { kind: "connect-failure"; error: Error }
  | { kind: "reset"; error: Error }
  | { kind: "timeout"; error: Error; global: boolean };

interface AttemptOptions {
  readonly cluster: UpstreamCluster;
  readonly ep: Endpoint;
  readonly req: http.IncomingMessage;
  readonly body: Buffer | undefined;
  /** This attempt's deadline up to the response headers, ms (0 = none). */
  readonly timeoutMs: number;
  /** Whether running out of `timeoutMs` means the route's own deadline (no further retry). */
  readonly timeoutIsGlobal: boolean;
}

function attempt(rt: ProxyRuntime, o: AttemptOptions): Promise<Attempt> {
  const { cluster, ep, req, body } = o;
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
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const settle = (a: Attempt) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      resolve(a);
    };
    const upstreamReq = send({
      agent: agentInfo.agent,
      host: ep.address,
      port: ep.port,
      method: req.method,
      path: req.url,
      headers,
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
        // The connect timeout covers the connection (and handshake) only; the route decides how long an answer may take.
        timers.push(
          setTimeout(() => {
            if (!connected) upstreamReq.destroy(new Error(`connect timeout after ${cluster.connectTimeoutMs} ms`));
          }, cluster.connectTimeoutMs),
        );
      }
    });
    if (o.timeoutMs > 0) {
      timers.push(
        setTimeout(() => {
          const error = new Error("upstream request timeout");
          settle({ kind: "timeout", error, global: o.timeoutIsGlobal });
          upstreamReq.destroy(error);
        }, o.timeoutMs),
      );
    }
    upstreamReq.on("response", (upstream) => settle({ kind: "response", upstream, request: upstreamReq }));
    upstreamReq.on("error", (error) =>
      settle(connected ? { kind: "reset", error } : { kind: "connect-failure", error }),
    );
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
  if (outcome.kind === "timeout")
    return (
      !outcome.global && (retry.retryOn.has("5xx") || retry.retryOn.has("gateway-error") || retry.retryOn.has("reset"))
    );
  const status = outcome.upstream.statusCode ?? 0;
  if (retry.retryOn.has("retriable-status-codes") && retry.retriableStatusCodes.has(status)) return true;
  if (retry.retryOn.has("5xx") && status >= 500) return true;
  if (retry.retryOn.has("gateway-error") && status >= 502 && status <= 504) return true;
  return false;
}

/** Metric labels for a request this sidecar sent out (reporter=source). */
export function outboundLabels(
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
  // Envoy's route timeout spans every attempt and the response body; per_try_timeout bounds each attempt.
  const deadline = route.timeoutMs > 0 ? performance.now() + route.timeoutMs : 0;
  const perTry = route.retry?.perTryTimeoutMs ?? 0;
  const balancer = rt.balancer(cluster);
  const tried = new Set<string>();
  const maxAttempts = 1 + (body !== undefined ? (route.retry?.numRetries ?? 0) : 0);
  let last: Attempt | undefined;
  let ep: Endpoint | undefined;
  for (let n = 0; n < maxAttempts; n++) {
    // A client that went away while an attempt waited (e.g. a 10 s connect timeout) gets no retry.
    if (res.destroyed) return;
    ep = rt.pick(cluster, endpoints, route.retry?.avoidPreviousHosts === false ? undefined : tried);
    if (ep === undefined) break;
    tried.add(endpointKey(ep));
    const done = balancer.begin(ep);
    const remaining = deadline > 0 ? Math.max(1, deadline - performance.now()) : 0;
    const tryTimeout = perTry > 0 && (remaining === 0 || perTry < remaining) ? perTry : remaining;
    last = await attempt(rt, {
      cluster,
      ep,
      req,
      body,
      timeoutMs: tryTimeout,
      timeoutIsGlobal: tryTimeout === remaining && remaining > 0,
    });
    if (last.kind === "response") {
      const upstream = last.upstream;
      const status = upstream.statusCode ?? 502;
      if (status >= 502 && status <= 504) rt.upstreamFailed(cluster, ep, new Error(`status ${status}`));
      else rt.upstreamSucceeded(cluster, ep);
      if (n + 1 < maxAttempts && shouldRetry(route, last)) {
        upstream.resume();
        done();
        rt.metrics.inc("envoy_cluster_upstream_rq_retry", { cluster_name: cluster.name });
        continue;
      }
      if (res.destroyed) {
        // The client is gone: its "close" has already fired, so nothing below would ever end
        // this request, and least request would count it in flight forever.
        upstream.destroy();
        done();
        return;
      }
      res.writeHead(status, upstream.statusMessage, forwardHeaders(upstream.headers) as http.OutgoingHttpHeaders);
      // An upstream reset mid-body can only be passed on as a reset: the status line is already sent.
      upstream.once("error", () => res.destroy());
      upstream.pipe(res);
      const request = last.request;
      const bodyTimer =
        deadline > 0
          ? setTimeout(
              () => {
                rt.metrics.inc("envoy_cluster_upstream_rq_timeout", { cluster_name: cluster.name });
                request.destroy(new Error("upstream request timeout"));
                res.destroy();
              },
              Math.max(1, deadline - performance.now()),
            )
          : undefined;
      const chosen = ep;
      const finish = () => {
        if (bodyTimer) clearTimeout(bodyTimer);
        done();
        rt.metrics.recordRequest(outboundLabels(rt, host, chosen, status), performance.now() - started);
      };
      res.once("finish", finish);
      res.once("close", () => {
        if (!res.writableFinished) {
          if (bodyTimer) clearTimeout(bodyTimer);
          upstream.destroy();
          done();
        }
      });
      return;
    }
    done();
    if (last.kind === "timeout") rt.metrics.inc("envoy_cluster_upstream_rq_timeout", { cluster_name: cluster.name });
    else rt.upstreamFailed(cluster, ep, last.error);
    if (!(n + 1 < maxAttempts && shouldRetry(route, last))) break;
    rt.metrics.inc("envoy_cluster_upstream_rq_retry", { cluster_name: cluster.name });
  }
  if (last?.kind === "timeout") {
    replyText(res, 504, "upstream request timeout", "UT");
    rt.metrics.recordRequest(outboundLabels(rt, host, ep, 504), performance.now() - started);
    return;
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
