/**
 * Outbound HTTP/2 (prior knowledge, e.g. gRPC): each stream is routed by :authority and path as
 * HTTP/1.1 requests are, an endpoint is chosen by the Envoy cluster's balancer, and the stream
 * is carried over a pooled HTTP/2 session to it (mutual TLS with ALPN istio-h2 to a sidecar).
 * A failed connection or handshake is retried on another endpoint before the stream is sent.
 */
import type http2 from "node:http2";
import { endpointKey } from "../balance/balancer.js";
import { type Endpoint, findRoute, findVirtualHost } from "../config/types.js";
import { authorityOf, forwardH2Stream, h2ForwardHeaders, replyH2 } from "../h2.js";
import { formatPeerMetadata, peerMetadataHeader } from "../peer-metadata.js";
import type { ProxyRuntime } from "../runtime.js";
import { outboundLabels } from "./http.js";
import { usesMtls } from "./upstream.js";

/** Handles one outbound HTTP/2 stream for the route table `routeConfigName`. */
export async function handleOutboundH2(
  rt: ProxyRuntime,
  routeConfigName: string,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
): Promise<void> {
  const started = performance.now();
  const host = authorityOf(headers);
  const path = String(headers[":path"] ?? "/");
  const table = rt.config.routes.get(routeConfigName);
  const vh = table ? findVirtualHost(table, host) : undefined;
  const route = vh ? findRoute(vh, path) : undefined;
  if (route === undefined) {
    replyH2(stream, 404, "", "NR");
    rt.metrics.recordRequest(outboundLabels(rt, host, undefined, 404), performance.now() - started);
    return;
  }
  const cluster = rt.config.clusters.get(route.cluster);
  const endpoints = cluster ? rt.endpointsOf(cluster) : [];
  if (cluster === undefined || cluster.blackHole || endpoints.length === 0) {
    replyH2(stream, 503, "no healthy upstream", "UH");
    rt.metrics.recordRequest(outboundLabels(rt, host, undefined, 503), performance.now() - started);
    return;
  }
  // The stream's body is not read until a session is up, so connect failures can be retried freely.
  stream.pause();
  const deadline = route.timeoutMs > 0 ? Date.now() + route.timeoutMs : 0;
  const retry = route.retry;
  const maxAttempts = 1 + (retry?.retryOn.has("connect-failure") || retry?.retryOn.has("reset") ? retry.numRetries : 0);
  const tried = new Set<string>();
  let lastError: Error | undefined;
  let ep: Endpoint | undefined;
  for (let n = 0; n < maxAttempts; n++) {
    ep = rt.pick(cluster, endpoints, retry?.avoidPreviousHosts === false ? undefined : tried);
    if (ep === undefined) break;
    tried.add(endpointKey(ep));
    if (n > 0) rt.metrics.inc("envoy_cluster_upstream_rq_retry", { cluster_name: cluster.name });
    let session: http2.ClientHttp2Session;
    try {
      session = await rt.connector.h2SessionFor(cluster, ep);
    } catch (err) {
      lastError = err as Error;
      rt.metrics.inc("envoy_cluster_upstream_cx_connect_fail", { cluster_name: cluster.name });
      rt.upstreamFailed(cluster, ep, err);
      continue;
    }
    if (stream.closed || stream.destroyed) return;
    const out = h2ForwardHeaders(headers);
    delete out[peerMetadataHeader];
    out[":authority"] = host;
    out[":scheme"] = "http";
    if (usesMtls(cluster, ep)) {
      const w = rt.workload;
      out[peerMetadataHeader] = formatPeerMetadata({
        cluster: w.clusterId,
        workload: w.workloadName,
        namespace: w.namespace,
      });
    }
    const chosen = ep;
    const done = rt.balancer(cluster).begin(chosen);
    forwardH2Stream({
      downstream: stream,
      headers: out,
      session,
      timeoutMs: deadline > 0 ? Math.max(1, deadline - Date.now()) : 0,
      onDone: (outcome) => {
        done();
        if (outcome.status >= 502 && outcome.status <= 504)
          rt.upstreamFailed(cluster, chosen, outcome.error ?? new Error(`status ${outcome.status}`));
        else if (outcome.answered) rt.upstreamSucceeded(cluster, chosen);
        rt.metrics.recordRequest(outboundLabels(rt, host, chosen, outcome.status), performance.now() - started);
      },
    });
    stream.resume();
    return;
  }
  replyH2(
    stream,
    503,
    `upstream connect error or disconnect/reset before headers. reset reason: connection failure${lastError ? `, transport failure reason: ${lastError.message}` : ""}`,
    "UF",
  );
  rt.metrics.recordRequest(outboundLabels(rt, host, ep, 503), performance.now() - started);
}
