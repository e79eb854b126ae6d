/**
 * Translation of what the control plane sends (Envoy v3 Listener, RouteConfiguration, Cluster,
 * ClusterLoadAssignment) into the sidecar's own configuration. Pure. Every function returns
 * either the translated value or the reasons it cannot be used: those reasons become the NACK's
 * error_detail, and the sidecar keeps its last good configuration.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { anyIs, anyUnpack, type Any, type Duration } from "@bufbuild/protobuf/wkt";
import type { Checked } from "../../base/index.js";
import type { Cluster } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { Cluster_DiscoveryType, Cluster_LbPolicy } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { HealthStatus } from "../../gen/envoy/config/core/v3/health_check_pb.js";
import type { ClusterLoadAssignment } from "../../gen/envoy/config/endpoint/v3/endpoint_pb.js";
import type { Filter, FilterChain } from "../../gen/envoy/config/listener/v3/listener_components_pb.js";
import type { Listener } from "../../gen/envoy/config/listener/v3/listener_pb.js";
import type { RouteConfiguration } from "../../gen/envoy/config/route/v3/route_pb.js";
import type {
  RetryPolicy as XdsRetryPolicy,
  VirtualHost as XdsVirtualHost,
} from "../../gen/envoy/config/route/v3/route_components_pb.js";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
} from "../../gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js";
import { HttpProtocolOptionsSchema } from "../../gen/envoy/extensions/upstreams/http/v3/http_protocol_options_pb.js";
import { TcpProxySchema } from "../../gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.js";
import { UpstreamTlsContextSchema } from "../../gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js";
import type {
  Endpoint,
  InboundPort,
  LbPolicy,
  ListenerAction,
  OutboundListener,
  RetryPolicy,
  RouteTable,
  UpstreamCluster,
  UpstreamTls,
  VirtualHost,
} from "./types.js";

type Result<T> = Checked<T>;
const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const fail = <T>(...reasons: string[]): Result<T> => ({ ok: false, reasons });

export function durationMs(d: Duration | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  return Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
}

function typedConfig(f: { configType: { case: string | undefined; value?: unknown } }): Any | undefined {
  return f.configType.case === "typedConfig" ? (f.configType.value as Any) : undefined;
}

/** What one network filter chain does: route HTTP (by RDS name or an inline table) or proxy TCP to a cluster. */
export function filterChainAction(
  chain: FilterChain,
  context: string,
): Result<{ action: ListenerAction; inlineRoutes?: RouteTable }> {
  const last: Filter | undefined = chain.filters.at(-1);
  const any = last ? typedConfig(last) : undefined;
  if (any === undefined) return fail(`${context}: filter chain has no typed network filter`);
  if (anyIs(any, HttpConnectionManagerSchema)) {
    const hcm = anyUnpack(any, HttpConnectionManagerSchema) as HttpConnectionManager;
    const spec = hcm.routeSpecifier;
    if (spec.case === "rds") return ok({ action: { kind: "http", routeConfigName: spec.value.routeConfigName } });
    if (spec.case === "routeConfig") {
      const table = routeTableFromXds(spec.value);
      if (!table.ok) return fail(...table.reasons.map((r) => `${context}: ${r}`));
      return ok({ action: { kind: "http", routeConfigName: spec.value.name }, inlineRoutes: table.value });
    }
    return fail(`${context}: HTTP connection manager has neither rds nor route_config`);
  }
  if (anyIs(any, TcpProxySchema)) {
    const tcp = anyUnpack(any, TcpProxySchema);
    if (tcp?.clusterSpecifier.case !== "cluster")
      return fail(`${context}: tcp_proxy without a cluster (weighted_clusters is not supported)`);
    return ok({ action: { kind: "tcp", cluster: tcp.clusterSpecifier.value } });
  }
  return fail(`${context}: unsupported network filter ${any.typeUrl}`);
}

/** The translated form of one Listener resource. */
export type ListenerPart =
  | { readonly kind: "outbound"; readonly listener: OutboundListener; readonly inlineRoutes?: RouteTable }
  | { readonly kind: "inbound"; readonly ports: readonly InboundPort[]; readonly inlineRoutes: readonly RouteTable[] }
  | { readonly kind: "ignored" };

/** Translates a Listener: `virtualInbound` gives the inbound ports; `virtualOutbound` and proxyless api listeners are not needed. */
export function listenerFromXds(
  l: Listener,
  inboundTargets: ReadonlyMap<string, { host: string; port: number; http2?: boolean }>,
): Result<ListenerPart> {
  if (l.apiListener !== undefined || l.name === "virtualOutbound") return ok({ kind: "ignored" });
  const sa = l.address?.address.case === "socketAddress" ? l.address.address.value : undefined;
  if (sa === undefined) return fail(`listener ${l.name}: no socket address`);
  const port = sa.portSpecifier.case === "portValue" ? sa.portSpecifier.value : 0;
  if (l.name === "virtualInbound") {
    const byPort = new Map<number, { tls: boolean; plain: boolean; kind: "http" | "tcp"; cluster: string }>();
    const inlineRoutes: RouteTable[] = [];
    const reasons: string[] = [];
    for (const chain of l.filterChains) {
      const dport = chain.filterChainMatch?.destinationPort;
      if (dport === undefined || dport === port) continue;
      const act = filterChainAction(chain, `listener ${l.name} chain ${chain.name}`);
      if (!act.ok) {
        reasons.push(...act.reasons);
        continue;
      }
      if (act.value.inlineRoutes) inlineRoutes.push(act.value.inlineRoutes);
      const isTls = chain.filterChainMatch?.transportProtocol === "tls";
      const cluster =
        act.value.action.kind === "tcp"
          ? act.value.action.cluster
          : (act.value.inlineRoutes?.virtualHosts[0]?.routes[0]?.cluster ?? `inbound|${dport}||`);
      const prev = byPort.get(dport) ?? { tls: false, plain: false, kind: act.value.action.kind, cluster };
      byPort.set(dport, { ...prev, tls: prev.tls || isTls, plain: prev.plain || !isTls });
    }
    if (reasons.length > 0) return fail(...reasons);
    const ports = [...byPort].map(([p, v]): InboundPort => {
      const target = inboundTargets.get(v.cluster) ?? { host: "127.0.0.1", port: p };
      return {
        port: p,
        kind: v.kind,
        targetHost: target.host,
        targetPort: target.port,
        appProtocol: v.kind === "http" && target.http2 === true ? "h2" : "http/1.1",
        mtlsMode: v.plain ? "PERMISSIVE" : "STRICT",
      };
    });
    return ok({ kind: "inbound", ports, inlineRoutes });
  }
  const chain = l.filterChains[0] ?? l.defaultFilterChain;
  if (chain === undefined) return fail(`listener ${l.name}: no filter chain`);
  const act = filterChainAction(chain, `listener ${l.name}`);
  if (!act.ok) return act;
  return ok({
    kind: "outbound",
    listener: { name: l.name, address: sa.address, port, action: act.value.action },
    ...(act.value.inlineRoutes ? { inlineRoutes: act.value.inlineRoutes } : {}),
  });
}

function retryFromXds(r: XdsRetryPolicy | undefined): RetryPolicy | undefined {
  if (r === undefined) return undefined;
  return {
    numRetries: r.numRetries ?? 1,
    retryOn: new Set(
      r.retryOn
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== ""),
    ),
    retriableStatusCodes: new Set(r.retriableStatusCodes),
    avoidPreviousHosts: r.retryHostPredicate.some((p) => p.name.includes("previous_hosts")),
    perTryTimeoutMs: durationMs(r.perTryTimeout, 0),
  };
}

function virtualHostFromXds(vh: XdsVirtualHost, table: string): Result<VirtualHost> {
  const routes = [];
  for (const r of vh.routes) {
    const m = r.match?.pathSpecifier;
    const prefix = m?.case === "prefix" ? m.value : m?.case === "path" ? m.value : undefined;
    if (prefix === undefined)
      return fail(`route ${table}/${vh.name}/${r.name}: only prefix and path matches are supported`);
    if (r.action.case !== "route") {
      // Redirects and direct responses are not served by this sidecar: say so rather than misroute.
      return fail(`route ${table}/${vh.name}/${r.name}: unsupported action ${r.action.case ?? "none"}`);
    }
    const ra = r.action.value;
    let cluster: string;
    if (ra.clusterSpecifier.case === "cluster") cluster = ra.clusterSpecifier.value;
    else if (ra.clusterSpecifier.case === "weightedClusters" && ra.clusterSpecifier.value.clusters.length === 1) {
      cluster = ra.clusterSpecifier.value.clusters[0]?.name ?? "";
    } else
      return fail(
        `route ${table}/${vh.name}/${r.name}: cluster specifier ${ra.clusterSpecifier.case ?? "none"} is not supported`,
      );
    routes.push({
      name: r.name,
      prefix,
      cluster,
      timeoutMs: durationMs(ra.timeout, 15_000),
      retry: retryFromXds(ra.retryPolicy ?? vh.retryPolicy),
    });
  }
  return ok({ name: vh.name, domains: vh.domains.map((d) => d.toLowerCase()), routes });
}

export function routeTableFromXds(rc: RouteConfiguration): Result<RouteTable> {
  const hosts: VirtualHost[] = [];
  const reasons: string[] = [];
  for (const vh of rc.virtualHosts) {
    const t = virtualHostFromXds(vh, rc.name);
    if (t.ok) hosts.push(t.value);
    else reasons.push(...t.reasons);
  }
  return reasons.length > 0 ? fail(...reasons) : ok({ name: rc.name, virtualHosts: hosts });
}

const lbPolicies: Partial<Record<Cluster_LbPolicy, LbPolicy>> = {
  [Cluster_LbPolicy.LEAST_REQUEST]: "LEAST_REQUEST",
  [Cluster_LbPolicy.ROUND_ROBIN]: "ROUND_ROBIN",
  [Cluster_LbPolicy.RANDOM]: "RANDOM",
};

function upstreamTls(c: Cluster): Result<UpstreamTls | undefined> {
  const candidates = [
    ...c.transportSocketMatches
      .filter((m) => (m.match as JsonObject | undefined)?.tlsMode === "istio")
      .map((m) => m.transportSocket),
    c.transportSocket,
  ];
  for (const ts of candidates) {
    const any = ts ? typedConfig(ts) : undefined;
    if (any === undefined) continue;
    if (!anyIs(any, UpstreamTlsContextSchema))
      return fail(`cluster ${c.name}: unsupported transport socket ${any.typeUrl}`);
    const ctx = anyUnpack(any, UpstreamTlsContextSchema);
    const vc = ctx?.commonTlsContext?.validationContextType;
    const matchers =
      vc?.case === "combinedValidationContext"
        ? (vc.value.defaultValidationContext?.matchSubjectAltNames ?? [])
        : vc?.case === "validationContext"
          ? vc.value.matchSubjectAltNames
          : [];
    const allowed = matchers.flatMap((m) => (m.matchPattern.case === "exact" ? [m.matchPattern.value] : []));
    return ok({ allowedSpiffeIds: allowed, sni: ctx?.sni ?? "" });
  }
  return ok(undefined);
}

/** Whether a cluster's HttpProtocolOptions ask for HTTP/2 to the upstream (Istio sets it for GRPC/HTTP2 ports). */
function speaksHttp2(c: Cluster): boolean {
  const any = c.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
  if (any === undefined || !anyIs(any, HttpProtocolOptionsSchema)) return false;
  const opts = anyUnpack(any, HttpProtocolOptionsSchema);
  const up = opts?.upstreamProtocolOptions;
  return up?.case === "explicitHttpConfig" && up.value.protocolConfig.case === "http2ProtocolOptions";
}

export function clusterFromXds(c: Cluster): Result<UpstreamCluster> {
  const type = c.clusterDiscoveryType.case === "type" ? c.clusterDiscoveryType.value : undefined;
  const kind =
    type === Cluster_DiscoveryType.EDS
      ? "EDS"
      : type === Cluster_DiscoveryType.STATIC
        ? "STATIC"
        : type === Cluster_DiscoveryType.ORIGINAL_DST
          ? "ORIGINAL_DST"
          : undefined;
  if (kind === undefined)
    return fail(
      `cluster ${c.name}: discovery type ${c.clusterDiscoveryType.case === "type" ? Cluster_DiscoveryType[c.clusterDiscoveryType.value] : "cluster_type"} is not supported (EDS, STATIC, ORIGINAL_DST are)`,
    );
  const lbPolicy =
    lbPolicies[c.lbPolicy] ?? (c.lbPolicy === Cluster_LbPolicy.CLUSTER_PROVIDED ? "ROUND_ROBIN" : undefined);
  if (lbPolicy === undefined)
    return fail(`cluster ${c.name}: lb_policy ${Cluster_LbPolicy[c.lbPolicy]} is not supported`);
  const tls = upstreamTls(c);
  if (!tls.ok) return tls;
  const staticEndpoints = c.loadAssignment ? endpointsFromXds(c.loadAssignment) : [];
  return ok({
    name: c.name,
    type: kind,
    edsServiceName: c.edsClusterConfig?.serviceName || c.name,
    lbPolicy,
    connectTimeoutMs: durationMs(c.connectTimeout, 10_000),
    tls: tls.value,
    staticEndpoints,
    blackHole: c.name === "BlackHoleCluster" || (kind === "STATIC" && staticEndpoints.length === 0),
    http2: speaksHttp2(c),
  });
}

export function endpointsFromXds(cla: ClusterLoadAssignment): Endpoint[] {
  const out: Endpoint[] = [];
  for (const group of cla.endpoints) {
    const loc = group.locality;
    const locality = loc ? [loc.region, loc.zone, loc.subZone].filter((s) => s !== "").join("/") : "";
    for (const lb of group.lbEndpoints) {
      if (lb.hostIdentifier.case !== "endpoint") continue;
      const addr = lb.hostIdentifier.value.address?.address;
      if (addr?.case !== "socketAddress") continue;
      const sa = addr.value;
      const meta = lb.metadata?.filterMetadata ?? {};
      const workload = String((meta.istio as JsonObject | undefined)?.workload ?? "");
      const tlsMode =
        (meta["envoy.transport_socket_match"] as JsonObject | undefined)?.tlsMode === "istio" ? "istio" : "disabled";
      out.push({
        address: sa.address,
        port: sa.portSpecifier.case === "portValue" ? sa.portSpecifier.value : 0,
        healthy: lb.healthStatus === HealthStatus.HEALTHY || lb.healthStatus === HealthStatus.UNKNOWN,
        weight: lb.loadBalancingWeight ?? 1,
        tlsMode,
        clusterId: workload.split(";")[4] ?? "",
        locality,
        workload,
      });
    }
  }
  return out;
}
