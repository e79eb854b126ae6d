/**
 * Builds one consistent ProxyConfig from the resources the sidecar holds for each xDS type,
 * and validates a type's resources before they are accepted (the reasons become a NACK).
 */
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Checked } from "../../base/index.js";
import { ClusterSchema } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { ClusterLoadAssignmentSchema } from "../../gen/envoy/config/endpoint/v3/endpoint_pb.js";
import { ListenerSchema } from "../../gen/envoy/config/listener/v3/listener_pb.js";
import { RouteConfigurationSchema } from "../../gen/envoy/config/route/v3/route_pb.js";
import { TypeUrl } from "../../xds/index.js";
import { clusterFromXds, endpointsFromXds, listenerFromXds, routeTableFromXds } from "./from-xds.js";
import type { Endpoint, InboundPort, OutboundListener, ProxyConfig, RouteTable, UpstreamCluster } from "./types.js";

export type ResourcesByType = ReadonlyMap<string, ReadonlyMap<string, Any>>;

function unpackAll<T>(
  resources: ReadonlyMap<string, Any> | undefined,
  schema: Parameters<typeof anyUnpack>[1],
  what: string,
  reasons: string[],
): T[] {
  const out: T[] = [];
  for (const [name, any] of resources ?? []) {
    const msg = anyUnpack(any, schema as never) as T | undefined;
    if (msg === undefined) reasons.push(`${what} ${name}: cannot decode ${any.typeUrl}`);
    else out.push(msg);
  }
  return out;
}

/** Translates everything; fails with every reason found. */
export function assembleConfig(byType: ResourcesByType): Checked<ProxyConfig> {
  const reasons: string[] = [];
  const clusters = new Map<string, UpstreamCluster>();
  for (const c of unpackAll<Parameters<typeof clusterFromXds>[0]>(
    byType.get(TypeUrl.Cluster),
    ClusterSchema,
    "cluster",
    reasons,
  )) {
    const t = clusterFromXds(c);
    if (t.ok) clusters.set(t.value.name, t.value);
    else reasons.push(...t.reasons);
  }
  const inboundTargets = new Map<string, { host: string; port: number; http2: boolean }>();
  for (const c of clusters.values()) {
    const ep = c.staticEndpoints[0];
    if (c.name.startsWith("inbound|") && ep !== undefined)
      inboundTargets.set(c.name, { host: ep.address, port: ep.port, http2: c.http2 === true });
  }
  const routes = new Map<string, RouteTable>();
  for (const rc of unpackAll<Parameters<typeof routeTableFromXds>[0]>(
    byType.get(TypeUrl.RouteConfiguration),
    RouteConfigurationSchema,
    "route",
    reasons,
  )) {
    const t = routeTableFromXds(rc);
    if (t.ok) routes.set(t.value.name, t.value);
    else reasons.push(...t.reasons);
  }
  const outbound = new Map<string, OutboundListener>();
  const inbound = new Map<number, InboundPort>();
  for (const l of unpackAll<Parameters<typeof listenerFromXds>[0]>(
    byType.get(TypeUrl.Listener),
    ListenerSchema,
    "listener",
    reasons,
  )) {
    const t = listenerFromXds(l, inboundTargets);
    if (!t.ok) {
      reasons.push(...t.reasons);
      continue;
    }
    const part = t.value;
    if (part.kind === "outbound") {
      outbound.set(`${part.listener.address}:${part.listener.port}`, part.listener);
      if (part.inlineRoutes) routes.set(part.inlineRoutes.name, part.inlineRoutes);
    } else if (part.kind === "inbound") {
      for (const p of part.ports) inbound.set(p.port, p);
    }
  }
  const endpoints = new Map<string, readonly Endpoint[]>();
  for (const cla of unpackAll<Parameters<typeof endpointsFromXds>[0]>(
    byType.get(TypeUrl.ClusterLoadAssignment),
    ClusterLoadAssignmentSchema,
    "load assignment",
    reasons,
  )) {
    endpoints.set(cla.clusterName, endpointsFromXds(cla));
  }
  if (reasons.length > 0) return { ok: false, reasons };
  return { ok: true, value: { outbound, routes, clusters, endpoints, inbound } };
}

/** The EDS names the clusters need and the RDS names the listeners need: what to subscribe to next. */
export function dependentNames(config: ProxyConfig): { eds: string[]; rds: string[] } {
  const eds = [...config.clusters.values()].filter((c) => c.type === "EDS").map((c) => c.edsServiceName);
  const rds = [...config.outbound.values()].flatMap((l) =>
    l.action.kind === "http" ? [l.action.routeConfigName] : [],
  );
  return { eds: [...new Set(eds)].sort(), rds: [...new Set(rds)].sort() };
}
