/**
 * LDS in Istio's shapes. Sidecars: `virtualOutbound` (15001, original destination, catch-all to
 * PassthroughCluster), one outbound listener `0.0.0.0_<port>` per service port (HTTP: connection
 * manager with RDS `<port>`; TCP: tcp_proxy chains per ClusterIP), and `virtualInbound` (15006,
 * per-port chains, mTLS or plaintext: PERMISSIVE). Proxyless gRPC: an api_listener per requested
 * `<host>:<port>`. Pure.
 */
import { create } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { TrafficDirection } from "../../gen/envoy/config/core/v3/base_pb.js";
import type { FilterChain } from "../../gen/envoy/config/listener/v3/listener_components_pb.js";
import { FilterChainSchema } from "../../gen/envoy/config/listener/v3/listener_components_pb.js";
import { type Listener, ListenerSchema } from "../../gen/envoy/config/listener/v3/listener_pb.js";
import { RouterSchema } from "../../gen/envoy/extensions/filters/http/router/v3/router_pb.js";
import { OriginalDstSchema } from "../../gen/envoy/extensions/filters/listener/original_dst/v3/original_dst_pb.js";
import { TlsInspectorSchema } from "../../gen/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb.js";
import {
  HttpConnectionManager_CodecType,
  HttpConnectionManager_ForwardClientCertDetails,
  HttpConnectionManagerSchema,
} from "../../gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.js";
import { TcpProxySchema } from "../../gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.js";
import { DownstreamTlsContextSchema } from "../../gen/envoy/extensions/transport_sockets/tls/v3/tls_pb.js";
import { inboundClusterName, type MeshService, outboundClusterName, type ProxyView } from "../../model/index.js";
import {
  adsConfigSource,
  blackHoleCluster,
  type Generated,
  inboundCapturePort,
  isHttpProtocol,
  outboundCapturePort,
  type PushContext,
  passthroughCluster,
  SdsSecret,
  sdsConfigSource,
  seconds,
  socketAddress,
  typed,
  virtualInboundListener,
  virtualOutboundListener,
} from "./common.js";
import { type InboundPort, inboundPorts } from "./inbound.js";
import { resolveHostPort } from "./route.js";

/** Well-known filter names, as Envoy registers them. */
export const FilterName = {
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  tcpProxy: "envoy.filters.network.tcp_proxy",
  router: "envoy.filters.http.router",
  originalDst: "envoy.filters.listener.original_dst",
  tlsInspector: "envoy.filters.listener.tls_inspector",
} as const;

function routerFilter() {
  return {
    name: FilterName.router,
    configType: { case: "typedConfig" as const, value: typed(RouterSchema, create(RouterSchema, {})) },
  };
}

function networkFilter(name: string, config: Any) {
  return { name, configType: { case: "typedConfig" as const, value: config } };
}

function tcpProxy(statPrefix: string, cluster: string): Any {
  return typed(
    TcpProxySchema,
    create(TcpProxySchema, { statPrefix, clusterSpecifier: { case: "cluster", value: cluster } }),
  );
}

/** An HCM that fetches its routes over ADS by name, router filter last (gRPC insists). */
function rdsConnectionManager(statPrefix: string, routeConfigName: string): Any {
  return typed(
    HttpConnectionManagerSchema,
    create(HttpConnectionManagerSchema, {
      codecType: HttpConnectionManager_CodecType.AUTO,
      statPrefix,
      routeSpecifier: { case: "rds", value: { configSource: adsConfigSource(), routeConfigName } },
      httpFilters: [routerFilter()],
      useRemoteAddress: false,
    }),
  );
}

/** `virtualOutbound` on 15001: every captured connection lands here, then moves to the listener of its original destination. */
export function buildVirtualOutbound(): Listener {
  return create(ListenerSchema, {
    name: virtualOutboundListener,
    address: socketAddress("0.0.0.0", outboundCapturePort),
    useOriginalDst: true,
    trafficDirection: TrafficDirection.OUTBOUND,
    filterChains: [
      {
        name: "virtualOutbound-catchall-tcp",
        filters: [networkFilter(FilterName.tcpProxy, tcpProxy(passthroughCluster, passthroughCluster))],
      },
    ],
  });
}

/**
 * The outbound listener for one port: TCP services get a chain matching their ClusterIP in the
 * proxy's own Kubernetes cluster; HTTP services share the default chain (routes by Host via RDS).
 */
export function buildOutboundPortListener(
  port: number,
  services: readonly MeshService[],
  proxy: Pick<ProxyView, "clusterId">,
): Listener {
  const name = `0.0.0.0_${port}`;
  const chains: FilterChain[] = [];
  let defaultChain: FilterChain | undefined;
  for (const service of services) {
    const svcPort = service.ports.find((p) => p.port === port);
    if (svcPort === undefined || isHttpProtocol(svcPort.protocol)) continue;
    const cluster = outboundClusterName(port, service.hostname);
    const vip = service.clusterVips.get(proxy.clusterId);
    const filters = [networkFilter(FilterName.tcpProxy, tcpProxy(cluster, cluster))];
    if (vip !== undefined && vip !== "" && vip !== "None") {
      chains.push(
        create(FilterChainSchema, {
          name: cluster,
          filterChainMatch: { prefixRanges: [{ addressPrefix: vip, prefixLen: 32 }] },
          filters,
        }),
      );
    } else if (defaultChain === undefined) {
      defaultChain = create(FilterChainSchema, { name: cluster, filters });
    }
  }
  if (services.some((s) => s.ports.some((p) => p.port === port && isHttpProtocol(p.protocol)))) {
    // HTTP wins the default chain, as in Istio: one HCM routes every HTTP service on this port.
    defaultChain = create(FilterChainSchema, {
      name,
      filters: [
        networkFilter(FilterName.httpConnectionManager, rdsConnectionManager(`outbound_${name}`, String(port))),
      ],
    });
  }
  if (defaultChain === undefined) {
    defaultChain = create(FilterChainSchema, {
      name: passthroughCluster,
      filters: [networkFilter(FilterName.tcpProxy, tcpProxy(passthroughCluster, passthroughCluster))],
    });
  }
  return create(ListenerSchema, {
    name,
    address: socketAddress("0.0.0.0", port),
    bindToPort: false,
    trafficDirection: TrafficDirection.OUTBOUND,
    filterChains: [...chains, defaultChain],
  });
}

function inboundFilters(p: InboundPort) {
  const cluster = inboundClusterName(p.targetPort);
  if (!isHttpProtocol(p.protocol)) {
    return [networkFilter(FilterName.tcpProxy, tcpProxy(cluster, cluster))];
  }
  const hcm = create(HttpConnectionManagerSchema, {
    codecType: HttpConnectionManager_CodecType.AUTO,
    statPrefix: `inbound_0.0.0.0_${p.targetPort}`,
    routeSpecifier: {
      case: "routeConfig",
      value: {
        name: cluster,
        virtualHosts: [
          {
            name: `inbound|http|${p.targetPort}`,
            domains: ["*"],
            routes: [
              {
                name: "default",
                match: { pathSpecifier: { case: "prefix", value: "/" } },
                action: {
                  case: "route",
                  value: {
                    clusterSpecifier: { case: "cluster", value: cluster },
                    timeout: seconds(0),
                    maxStreamDuration: { maxStreamDuration: seconds(0), grpcTimeoutHeaderMax: seconds(0) },
                  },
                },
              },
            ],
          },
        ],
        validateClusters: false,
      },
    },
    httpFilters: [routerFilter()],
    useRemoteAddress: false,
    // The app learns the verified peer identity from x-forwarded-client-cert, as with Istio.
    forwardClientCertDetails: HttpConnectionManager_ForwardClientCertDetails.APPEND_FORWARD,
    setCurrentClientCertDetails: { subject: true, dns: true, uri: true },
  });
  return [networkFilter(FilterName.httpConnectionManager, typed(HttpConnectionManagerSchema, hcm))];
}

function downstreamMtls(p: InboundPort): Any {
  return typed(
    DownstreamTlsContextSchema,
    create(DownstreamTlsContextSchema, {
      commonTlsContext: {
        alpnProtocols: isHttpProtocol(p.protocol) ? ["h2", "http/1.1"] : [],
        tlsCertificateSdsSecretConfigs: [{ name: SdsSecret.workload, sdsConfig: sdsConfigSource() }],
        validationContextType: {
          case: "combinedValidationContext",
          value: {
            defaultValidationContext: {},
            validationContextSdsSecretConfig: { name: SdsSecret.rootCa, sdsConfig: sdsConfigSource() },
          },
        },
      },
      requireClientCertificate: true,
    }),
  );
}

/**
 * `virtualInbound` on 15006: per inbound port an mTLS chain (TLS detected by tls_inspector) and a
 * plaintext chain (PERMISSIVE, Istio's default), both to `inbound|<port>||`; direct traffic to
 * 15006 itself goes to BlackHoleCluster.
 */
export function buildVirtualInbound(ports: readonly InboundPort[]): Listener {
  const chains: FilterChain[] = [
    create(FilterChainSchema, {
      name: "virtualInbound-blackhole",
      filterChainMatch: { destinationPort: inboundCapturePort },
      filters: [networkFilter(FilterName.tcpProxy, tcpProxy(blackHoleCluster, blackHoleCluster))],
    }),
  ];
  for (const p of ports) {
    const cluster = inboundClusterName(p.targetPort);
    chains.push(
      create(FilterChainSchema, {
        name: `${cluster}mtls`,
        filterChainMatch: { destinationPort: p.targetPort, transportProtocol: "tls" },
        filters: inboundFilters(p),
        transportSocket: {
          name: "envoy.transport_sockets.tls",
          configType: { case: "typedConfig", value: downstreamMtls(p) },
        },
      }),
      create(FilterChainSchema, {
        name: `${cluster}plaintext`,
        filterChainMatch: { destinationPort: p.targetPort, transportProtocol: "raw_buffer" },
        filters: inboundFilters(p),
      }),
    );
  }
  return create(ListenerSchema, {
    name: virtualInboundListener,
    address: socketAddress("0.0.0.0", inboundCapturePort),
    trafficDirection: TrafficDirection.INBOUND,
    listenerFilters: [
      {
        name: FilterName.originalDst,
        configType: { case: "typedConfig", value: typed(OriginalDstSchema, create(OriginalDstSchema, {})) },
      },
      {
        name: FilterName.tlsInspector,
        configType: { case: "typedConfig", value: typed(TlsInspectorSchema, create(TlsInspectorSchema, {})) },
      },
    ],
    filterChains: chains,
  });
}

/** A proxyless gRPC client's listener for `<host>:<port>`: an api_listener whose HCM asks RDS for the same name. */
export function buildApiListener(name: string): Listener {
  return create(ListenerSchema, {
    name,
    apiListener: { apiListener: rdsConnectionManager(name, name) },
  });
}

function sidecarOutboundListeners(ctx: PushContext, proxy: ProxyView): readonly Generated<Listener>[] {
  return ctx.memo(`lds/outbound/${proxy.clusterId}`, () => {
    const byPort = new Map<number, MeshService[]>();
    for (const s of ctx.view.services()) {
      for (const p of s.ports) {
        const list = byPort.get(p.port) ?? [];
        if (!list.includes(s)) list.push(s);
        byPort.set(p.port, list);
      }
    }
    return [...byPort.keys()]
      .sort((a, b) => a - b)
      .map((port) => {
        const message = buildOutboundPortListener(port, byPort.get(port) ?? [], proxy);
        return { name: message.name, message };
      });
  });
}

/**
 * LDS for `proxy`. Sidecars get all listeners (wildcard). Proxyless gRPC gets the `<host>:<port>`
 * listeners it names that resolve to a service port; others are left out (gRPC then reports them missing).
 */
export function generateListeners(
  ctx: PushContext,
  proxy: ProxyView,
  names?: ReadonlySet<string>,
): readonly Generated<Listener>[] {
  if (proxy.type === "proxyless") {
    const wanted =
      names && names.size > 0
        ? [...names].sort()
        : ctx.view.services().flatMap((s) => s.ports.map((p) => `${s.hostname}:${p.port}`));
    return wanted
      .filter((n) => resolveHostPort(ctx, proxy, n) !== undefined)
      .map((n) => ({ name: n, message: ctx.memo(`lds/api/${n}`, () => buildApiListener(n)) }));
  }
  const fixed = [
    ctx.memo("lds/virtualOutbound", buildVirtualOutbound),
    ...sidecarOutboundListeners(ctx, proxy).map((g) => g.message),
    buildVirtualInbound(inboundPorts(ctx, proxy)),
  ].map((message) => ({ name: message.name, message }));
  return names && names.size > 0 ? fixed.filter((l) => names.has(l.name)) : fixed;
}
