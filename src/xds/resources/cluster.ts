/**
 * CDS: Envoy clusters in Istio's names and shapes. Outbound `outbound|<port>||<host>` (EDS over
 * ADS, mTLS by transport-socket match on the endpoint's tlsMode), inbound `inbound|<port>||`
 * (static, to the app on 127.0.0.1), BlackHoleCluster and PassthroughCluster. Pure.
 */
import { create } from "@bufbuild/protobuf";
import {
  type Cluster,
  Cluster_DiscoveryType,
  Cluster_LbPolicy,
  ClusterSchema,
} from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { UpstreamTlsContextSchema } from "../../gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js";
import { HttpProtocolOptionsSchema } from "../../gen/envoy/extensions/upstreams/http/v3/http_protocol_options_pb.js";
import { inboundClusterName, type MeshService, outboundClusterName, type ProxyView } from "../../model/index.js";
import {
  adsConfigSource,
  blackHoleCluster,
  type Generated,
  istioAlpn,
  type PushContext,
  passthroughCluster,
  SdsSecret,
  sdsConfigSource,
  seconds,
  socketAddress,
  typed,
} from "./common.js";
import { inboundPorts } from "./inbound.js";

const connectTimeoutSeconds = 10;
const maxUint32 = 4294967295;

/** Istio's default circuit breakers: effectively unlimited, with remaining counts tracked. */
function defaultCircuitBreakers() {
  return {
    thresholds: [
      {
        maxConnections: maxUint32,
        maxPendingRequests: maxUint32,
        maxRequests: maxUint32,
        maxRetries: maxUint32,
        trackRemaining: true,
      },
    ],
  };
}

/**
 * The SNI Istio sets on mesh mTLS: `outbound_.<port>_.<subset>_.<host>`, so a server-side proxy
 * (or an east-west gateway) can tell which service the client meant.
 */
export function istioSni(port: number, hostname: string, subset = ""): string {
  return `outbound_.${port}_.${subset}_.${hostname}`;
}

function upstreamMtls(service: MeshService, port: number) {
  return typed(
    UpstreamTlsContextSchema,
    create(UpstreamTlsContextSchema, {
      sni: istioSni(port, service.hostname),
      commonTlsContext: {
        alpnProtocols: [...istioAlpn],
        tlsCertificateSdsSecretConfigs: [{ name: SdsSecret.workload, sdsConfig: sdsConfigSource() }],
        validationContextType: {
          case: "combinedValidationContext",
          value: {
            defaultValidationContext: {
              matchSubjectAltNames: [...service.serviceAccounts]
                .sort()
                .map((san) => ({ matchPattern: { case: "exact" as const, value: san } })),
            },
            validationContextSdsSecretConfig: { name: SdsSecret.rootCa, sdsConfig: sdsConfigSource() },
          },
        },
      },
    }),
  );
}

/** Istio's marking of a cluster whose upstream speaks HTTP/2 (GRPC and HTTP2 ports). */
function http2ProtocolOptions() {
  return {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
      HttpProtocolOptionsSchema,
      create(HttpProtocolOptionsSchema, {
        upstreamProtocolOptions: {
          case: "explicitHttpConfig",
          value: { protocolConfig: { case: "http2ProtocolOptions", value: {} } },
        },
      }),
    ),
  };
}

/** One outbound EDS cluster for a service port. Proxyless gRPC gets ROUND_ROBIN and no SDS TLS (it NACKs both). */
export function buildOutboundCluster(service: MeshService, port: number, proxyType: ProxyView["type"]): Cluster {
  const name = outboundClusterName(port, service.hostname);
  const svcPort = service.ports.find((p) => p.port === port);
  const sidecar = proxyType === "sidecar";
  const http2 = svcPort?.protocol === "HTTP2" || svcPort?.protocol === "GRPC";
  return create(ClusterSchema, {
    name,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.EDS },
    edsClusterConfig: { edsConfig: adsConfigSource(), serviceName: name },
    connectTimeout: seconds(connectTimeoutSeconds),
    lbPolicy: sidecar ? Cluster_LbPolicy.LEAST_REQUEST : Cluster_LbPolicy.ROUND_ROBIN,
    circuitBreakers: defaultCircuitBreakers(),
    metadata: {
      filterMetadata: {
        istio: { services: [{ host: service.hostname, name: service.name, namespace: service.namespace }] },
      },
    },
    typedExtensionProtocolOptions: http2 ? http2ProtocolOptions() : {},
    transportSocketMatches: sidecar
      ? [
          {
            name: "tlsMode-istio",
            match: { tlsMode: "istio" },
            transportSocket: {
              name: "envoy.transport_sockets.tls",
              configType: { case: "typedConfig", value: upstreamMtls(service, port) },
            },
          },
          { name: "tlsMode-disabled", match: {}, transportSocket: { name: "envoy.transport_sockets.raw_buffer" } },
        ]
      : [],
  });
}

/**
 * `inbound|<targetPort>||`: a static cluster to the app on 127.0.0.1; for a GRPC or HTTP2 port
 * it carries the HTTP/2 protocol options, so the sidecar speaks h2c to the app.
 */
export function buildInboundCluster(targetPort: number, protocol = ""): Cluster {
  const name = inboundClusterName(targetPort);
  const http2 = protocol === "HTTP2" || protocol === "GRPC";
  return create(ClusterSchema, {
    name,
    typedExtensionProtocolOptions: http2 ? http2ProtocolOptions() : {},
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.STATIC },
    connectTimeout: seconds(connectTimeoutSeconds),
    lbPolicy: Cluster_LbPolicy.ROUND_ROBIN,
    circuitBreakers: defaultCircuitBreakers(),
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            { hostIdentifier: { case: "endpoint", value: { address: socketAddress("127.0.0.1", targetPort) } } },
          ],
        },
      ],
    },
  });
}

/** A cluster with no endpoints: traffic sent to it fails, which is the point. */
export function buildBlackHoleCluster(): Cluster {
  return create(ClusterSchema, {
    name: blackHoleCluster,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.STATIC },
    connectTimeout: seconds(connectTimeoutSeconds),
  });
}

/** The original-destination cluster that carries traffic to hosts the mesh does not know. */
export function buildPassthroughCluster(): Cluster {
  return create(ClusterSchema, {
    name: passthroughCluster,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST },
    connectTimeout: seconds(connectTimeoutSeconds),
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    circuitBreakers: defaultCircuitBreakers(),
  });
}

/** Every outbound cluster for a proxy type, built once per push and shared by all such proxies. */
function outboundClusters(ctx: PushContext, proxyType: ProxyView["type"]): readonly Generated<Cluster>[] {
  return ctx.memo(`cds/outbound/${proxyType}`, () =>
    ctx.view.services().flatMap((service) =>
      service.ports.map((p) => {
        const message = buildOutboundCluster(service, p.port, proxyType);
        return { name: message.name, message };
      }),
    ),
  );
}

/**
 * CDS for `proxy`. Sidecars get everything (wildcard): outbound, inbound, BlackHole, Passthrough.
 * Proxyless gRPC gets the outbound clusters it names (`names` non-empty), or all outbound ones.
 */
export function generateClusters(
  ctx: PushContext,
  proxy: ProxyView,
  names?: ReadonlySet<string>,
): readonly Generated<Cluster>[] {
  const outbound = outboundClusters(ctx, proxy.type);
  if (proxy.type === "proxyless") {
    return names && names.size > 0 ? outbound.filter((c) => names.has(c.name)) : outbound;
  }
  const inbound = inboundPorts(ctx, proxy).map((p) => {
    const message = ctx.memo(`cds/inbound/${p.targetPort}/${p.protocol}`, () =>
      buildInboundCluster(p.targetPort, p.protocol),
    );
    return { name: message.name, message };
  });
  const fixed = ctx.memo("cds/fixed", () =>
    [buildBlackHoleCluster(), buildPassthroughCluster()].map((message) => ({ name: message.name, message })),
  );
  const all = [...outbound, ...inbound, ...fixed];
  return names && names.size > 0 ? all.filter((c) => names.has(c.name)) : all;
}
