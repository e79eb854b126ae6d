/**
 * Shared pieces of the pure generators: type URLs, mesh settings, the per-push memo, and small
 * builders for Envoy messages every generator uses (addresses, durations, ADS config sources).
 */
import { create, type DescMessage, type Message, type MessageShape } from "@bufbuild/protobuf";
import { type Any, anyPack, type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import { type Address, AddressSchema, SocketAddress_Protocol } from "../../gen/envoy/config/core/v3/address_pb.js";
import {
  ApiConfigSource_ApiType,
  ApiVersion,
  type ConfigSource,
  ConfigSourceSchema,
} from "../../gen/envoy/config/core/v3/config_source_pb.js";
import type { ServiceView } from "../../model/index.js";

/** The four xDS type URLs Isthmus serves, in the order Envoy applies them (CDS, EDS, LDS, RDS). */
export const TypeUrl = {
  Cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  ClusterLoadAssignment: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  Listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  RouteConfiguration: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** Every served type URL, in push order (clusters before their endpoints, listeners before routes). */
export const allTypeUrls: readonly TypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

/** The short names Istio's debug pages and istioctl use: CDS, EDS, LDS, RDS. */
export function shortType(typeUrl: string): string {
  switch (typeUrl) {
    case TypeUrl.Cluster:
      return "CDS";
    case TypeUrl.ClusterLoadAssignment:
      return "EDS";
    case TypeUrl.Listener:
      return "LDS";
    case TypeUrl.RouteConfiguration:
      return "RDS";
    default:
      return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
  }
}

/** True when `s` is one of the type URLs Isthmus serves. */
export function isTypeUrl(s: string): s is TypeUrl {
  return (allTypeUrls as readonly string[]).includes(s);
}

/** Mesh-wide settings the generators need (from the mesh config). */
export interface MeshSettings {
  /** SPIFFE trust domain, `cluster.local` by default. */
  readonly trustDomain: string;
  /** Kubernetes DNS domain, `cluster.local` by default. */
  readonly dnsDomain: string;
}

export const defaultMeshSettings: MeshSettings = { trustDomain: "cluster.local", dnsDomain: "cluster.local" };

/**
 * One push's inputs (the service view and mesh settings) plus a memo, so that resources that do not
 * depend on the proxy are built once per push and shared by every proxy. Deterministic: a memo hit
 * returns exactly what a miss would have built.
 */
export class PushContext {
  readonly view: ServiceView;
  readonly mesh: MeshSettings;
  readonly #memo = new Map<string, unknown>();
  constructor(view: ServiceView, mesh: MeshSettings = defaultMeshSettings) {
    this.view = view;
    this.mesh = mesh;
  }
  /** Returns the value built for `key` in this push, building it with `build` the first time. */
  memo<T>(key: string, build: () => T): T {
    if (this.#memo.has(key)) return this.#memo.get(key) as T;
    const v = build();
    this.#memo.set(key, v);
    return v;
  }
}

/** A generated resource: its xDS name and the typed message. */
export interface Generated<T extends Message = Message> {
  readonly name: string;
  readonly message: T;
}

export function socketAddress(address: string, port: number): Address {
  return create(AddressSchema, {
    address: {
      case: "socketAddress",
      value: { address, portSpecifier: { case: "portValue", value: port }, protocol: SocketAddress_Protocol.TCP },
    },
  });
}

export function seconds(s: number): Duration {
  return create(DurationSchema, { seconds: BigInt(s) });
}

/** A config source that says "over the same ADS stream", as Istio writes it. */
export function adsConfigSource(): ConfigSource {
  return create(ConfigSourceSchema, {
    configSourceSpecifier: { case: "ads", value: {} },
    resourceApiVersion: ApiVersion.V3,
  });
}

/**
 * The SDS source Istio gives sidecars: the agent's local `sds-grpc` cluster. Isthmus's sidecar
 * serves the `default` (workload certificate) and `ROOTCA` secrets itself.
 */
export function sdsConfigSource(): ConfigSource {
  return create(ConfigSourceSchema, {
    configSourceSpecifier: {
      case: "apiConfigSource",
      value: {
        apiType: ApiConfigSource_ApiType.GRPC,
        setNodeOnFirstMessageOnly: true,
        transportApiVersion: ApiVersion.V3,
        grpcServices: [{ targetSpecifier: { case: "envoyGrpc", value: { clusterName: "sds-grpc" } } }],
      },
    },
    initialFetchTimeout: seconds(0),
    resourceApiVersion: ApiVersion.V3,
  });
}

/** Packs a typed extension config into an Any (`@type` in JSON). */
export function typed<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Any {
  return anyPack(schema, message);
}

/** Istio's names for the SDS secrets a sidecar holds. */
export const SdsSecret = { workload: "default", rootCa: "ROOTCA" } as const;

/** ALPN Istio sets on mesh mTLS connections. */
export const istioAlpn: readonly string[] = ["istio-peer-exchange", "istio"];

export const passthroughCluster = "PassthroughCluster";
export const blackHoleCluster = "BlackHoleCluster";
export const virtualOutboundListener = "virtualOutbound";
export const virtualInboundListener = "virtualInbound";
/** Istio's capture ports: 15001 outbound, 15006 inbound. */
export const outboundCapturePort = 15001;
export const inboundCapturePort = 15006;

/** True for service ports that Isthmus routes as HTTP (an HCM with routes) rather than TCP proxy. */
export function isHttpProtocol(protocol: string): boolean {
  return protocol === "HTTP" || protocol === "HTTP2" || protocol === "GRPC";
}
