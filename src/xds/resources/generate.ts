/**
 * One entry point over the per-type generators, and the protobuf registry that can print every
 * message they produce (for JSON dumps and golden files).
 */
import {
  createRegistry,
  type DescMessage,
  type JsonValue,
  type Message,
  type Registry,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { ClusterSchema } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { ClusterLoadAssignmentSchema } from "../../gen/envoy/config/endpoint/v3/endpoint_pb.js";
import { ListenerSchema } from "../../gen/envoy/config/listener/v3/listener_pb.js";
import { RouteConfigurationSchema } from "../../gen/envoy/config/route/v3/route_pb.js";
import { RouterSchema } from "../../gen/envoy/extensions/filters/http/router/v3/router_pb.js";
import { OriginalDstSchema } from "../../gen/envoy/extensions/filters/listener/original_dst/v3/original_dst_pb.js";
import { TlsInspectorSchema } from "../../gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb.js";
import { HttpConnectionManagerSchema } from "../../gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js";
import { TcpProxySchema } from "../../gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.js";
import { PreviousHostsPredicateSchema } from "../../gen/envoy/extensions/retry/host/previous_hosts/v3/previous_hosts_pb.js";
import {
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
} from "../../gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js";
import { HttpProtocolOptionsSchema } from "../../gen/envoy/extensions/upstreams/http/v3/http_protocol_options_pb.js";
import type { ProxyView } from "../../model/index.js";
import { generateClusters } from "./cluster.js";
import type { Generated, PushContext, TypeUrl } from "./common.js";
import { TypeUrl as T } from "./common.js";
import { generateLoadAssignments } from "./endpoint.js";
import { generateListeners } from "./listener.js";
import { generateRoutes } from "./route.js";

/** The schema of each served type, for packing resources into Any. */
export const schemaOf = {
  [T.Cluster]: ClusterSchema,
  [T.ClusterLoadAssignment]: ClusterLoadAssignmentSchema,
  [T.Listener]: ListenerSchema,
  [T.RouteConfiguration]: RouteConfigurationSchema,
} as const;

/** Every message type the generators emit, top-level or inside an Any: enough for toJson/fromJson. */
export const xdsRegistry: Registry = createRegistry(
  ClusterSchema,
  ClusterLoadAssignmentSchema,
  ListenerSchema,
  RouteConfigurationSchema,
  RouterSchema,
  OriginalDstSchema,
  TlsInspectorSchema,
  HttpConnectionManagerSchema,
  TcpProxySchema,
  PreviousHostsPredicateSchema,
  DownstreamTlsContextSchema,
  UpstreamTlsContextSchema,
  HttpProtocolOptionsSchema,
);

/**
 * Generates the resources of `typeUrl` for `proxy`. `names` empty or absent means wildcard. Pure and
 * deterministic; resources come back sorted in a stable order.
 */
export function generate(
  ctx: PushContext,
  proxy: ProxyView,
  typeUrl: TypeUrl,
  names?: ReadonlySet<string>,
): readonly Generated[] {
  switch (typeUrl) {
    case T.Cluster:
      return generateClusters(ctx, proxy, names);
    case T.ClusterLoadAssignment:
      return generateLoadAssignments(ctx, proxy, names);
    case T.Listener:
      return generateListeners(ctx, proxy, names);
    case T.RouteConfiguration:
      return generateRoutes(ctx, proxy, names);
  }
}

/** Serializes a generated resource of `typeUrl` to bytes (deterministic for a given message). */
export function resourceToBinary(typeUrl: TypeUrl, message: Message): Uint8Array {
  return toBinary(schemaOf[typeUrl] as DescMessage, message);
}

/** A generated resource as proto3 JSON, nested Any fields printed with `@type`. */
export function resourceToJson(typeUrl: TypeUrl, message: Message): JsonValue {
  return toJson(schemaOf[typeUrl] as DescMessage, message, { registry: xdsRegistry });
}
