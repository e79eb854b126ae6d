/**
 * EDS: one ClusterLoadAssignment per outbound cluster, with the endpoints of every Kubernetes
 * cluster (shards in sorted ClusterId order), grouped by locality with summed weights, each
 * endpoint carrying Istio's transport-socket-match and workload metadata. Pure.
 */
import { create } from "@bufbuild/protobuf";
import { HealthStatus } from "../../gen/envoy/config/core/v3/health_check_pb.js";
import type { LbEndpoint } from "../../gen/envoy/config/endpoint/v3/endpoint_components_pb.js";
import { LbEndpointSchema } from "../../gen/envoy/config/endpoint/v3/endpoint_components_pb.js";
import {
  type ClusterLoadAssignment,
  ClusterLoadAssignmentSchema,
} from "../../gen/envoy/config/endpoint/v3/endpoint_pb.js";
import type { ClusterId, MeshEndpoint, MeshService, ProxyView } from "../../model/index.js";
import { type Generated, type PushContext, socketAddress } from "./common.js";

/** The parts of an Envoy cluster name `direction|port|subset|host`, or undefined if it is not one. */
export interface ClusterNameParts {
  readonly direction: "outbound" | "inbound";
  readonly port: number;
  readonly subset: string;
  readonly hostname: string;
}

/** Parses Istio's subset key (`outbound|5000||helloworld.sample.svc.cluster.local`). */
export function parseClusterName(name: string): ClusterNameParts | undefined {
  const parts = name.split("|");
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, hostname] = parts as [string, string, string, string];
  if (direction !== "outbound" && direction !== "inbound") return undefined;
  const n = Number(port);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) return undefined;
  return { direction, port: n, subset, hostname };
}

/** `<workload>;<ns>;<canonical-name>;<canonical-rev>;<clusterID>`: what Istio's telemetry reads. */
export function workloadMetadata(ep: MeshEndpoint): string {
  const name = ep.labels["service.istio.io/canonical-name"] ?? ep.labels.app ?? ep.workloadName;
  const rev = ep.labels["service.istio.io/canonical-revision"] ?? ep.labels.version ?? "latest";
  return `${ep.workloadName};${ep.namespace};${name};${rev};${ep.clusterId}`;
}

function localityLabel(ep: MeshEndpoint): string {
  return `${ep.locality.region}/${ep.locality.zone}/${ep.locality.subZone}`;
}

function lbEndpoint(ep: MeshEndpoint): LbEndpoint {
  const filterMetadata: Record<string, { [k: string]: string }> = {
    istio: { workload: workloadMetadata(ep) },
  };
  if (ep.tlsMode === "istio") filterMetadata["envoy.transport_socket_match"] = { tlsMode: "istio" };
  return create(LbEndpointSchema, {
    hostIdentifier: { case: "endpoint", value: { address: socketAddress(ep.address, ep.port) } },
    healthStatus: HealthStatus.HEALTHY,
    loadBalancingWeight: 1,
    metadata: { filterMetadata },
  });
}

/**
 * Builds the ClusterLoadAssignment for one service port as seen from a proxy in `proxyClusterId`.
 * Keeps only ready, non-terminating endpoints of the named service port; a cluster-local service
 * keeps only the proxy's own Kubernetes cluster. Every locality carries a weight (gRPC needs it).
 */
export function buildLoadAssignment(options: {
  readonly clusterName: string;
  readonly service: MeshService;
  readonly servicePortName: string;
  readonly shards: ReadonlyMap<ClusterId, readonly MeshEndpoint[]>;
  readonly proxyClusterId: ClusterId;
}): ClusterLoadAssignment {
  const { service, servicePortName, shards, proxyClusterId } = options;
  const byLocality = new Map<string, { ep: MeshEndpoint; lb: LbEndpoint }[]>();
  const clusterIds = [...shards.keys()].sort();
  for (const clusterId of clusterIds) {
    if (service.clusterLocal && clusterId !== proxyClusterId) continue;
    const eps = (shards.get(clusterId) ?? [])
      .filter((e) => e.ready && !e.terminating && e.servicePortName === servicePortName && e.address !== "")
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
    for (const ep of eps) {
      const key = localityLabel(ep);
      let group = byLocality.get(key);
      if (group === undefined) {
        group = [];
        byLocality.set(key, group);
      }
      group.push({ ep, lb: lbEndpoint(ep) });
    }
  }
  const localities = [...byLocality.keys()].sort();
  return create(ClusterLoadAssignmentSchema, {
    clusterName: options.clusterName,
    endpoints: localities.map((key) => {
      const group = byLocality.get(key) ?? [];
      const first = group[0]?.ep.locality ?? { region: "", zone: "", subZone: "" };
      return {
        locality: { region: first.region, zone: first.zone, subZone: first.subZone },
        lbEndpoints: group.map((g) => g.lb),
        loadBalancingWeight: group.reduce((sum, g) => sum + (g.lb.loadBalancingWeight ?? 1), 0),
      };
    }),
  });
}

/** The assignment for one cluster name, or undefined when the name is not a known outbound cluster. */
export function loadAssignmentFor(
  ctx: PushContext,
  proxy: ProxyView,
  clusterName: string,
): ClusterLoadAssignment | undefined {
  const parts = parseClusterName(clusterName);
  if (parts === undefined || parts.direction !== "outbound") return undefined;
  const service = ctx.view.service(parts.hostname);
  const port = service?.ports.find((p) => p.port === parts.port);
  if (service === undefined || port === undefined) return undefined;
  const key = `eds/${clusterName}/${service.clusterLocal ? proxy.clusterId : "*"}`;
  return ctx.memo(key, () =>
    buildLoadAssignment({
      clusterName,
      service,
      servicePortName: port.name,
      shards: ctx.view.endpoints(service.hostname, port.name),
      proxyClusterId: proxy.clusterId,
    }),
  );
}

/**
 * EDS for `proxy`: the named assignments (EDS is never wildcard for Envoy), or every outbound
 * cluster's when `names` is empty (useful for debug dumps). Unknown names are left out.
 */
export function generateLoadAssignments(
  ctx: PushContext,
  proxy: ProxyView,
  names?: ReadonlySet<string>,
): readonly Generated<ClusterLoadAssignment>[] {
  const wanted =
    names && names.size > 0
      ? [...names].sort()
      : ctx.view.services().flatMap((s) => s.ports.map((p) => `outbound|${p.port}||${s.hostname}`));
  const out: Generated<ClusterLoadAssignment>[] = [];
  for (const name of wanted) {
    const message = loadAssignmentFor(ctx, proxy, name);
    if (message !== undefined) out.push({ name, message });
  }
  return out;
}
