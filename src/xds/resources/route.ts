/**
 * RDS: route configurations in Istio's shapes. For sidecars, one per HTTP port (named `<port>`),
 * a virtual host per service on that port matching its short and long names and its ClusterIP,
 * each with and without `:<port>`, plus `allow_any` to PassthroughCluster. For proxyless gRPC,
 * one per requested `<host>:<port>`. Pure.
 */
import { create } from "@bufbuild/protobuf";
import {
  type Route,
  RouteSchema,
  type VirtualHost,
  VirtualHostSchema,
} from "../../gen/envoy/config/route/v3/route_components_pb.js";
import { type RouteConfiguration, RouteConfigurationSchema } from "../../gen/envoy/config/route/v3/route_pb.js";
import { PreviousHostsPredicateSchema } from "../../gen/envoy/extensions/retry/host/previous_hosts/v3/previous_hosts_pb.js";
import { type MeshService, outboundClusterName, type ProxyView } from "../../model/index.js";
import {
  type Generated,
  isHttpProtocol,
  type MeshSettings,
  type PushContext,
  passthroughCluster,
  seconds,
  typed,
} from "./common.js";

/**
 * The host names a proxy in `proxyNamespace` may use for `service`, as Istio generates them: the
 * FQDN, `<name>.<ns>.svc`, `<name>.<ns>`, the bare `<name>` only from the service's own namespace,
 * and the ClusterIP of the proxy's own Kubernetes cluster.
 */
export function serviceHostNames(
  service: MeshService,
  proxy: Pick<ProxyView, "namespace" | "clusterId">,
  mesh: MeshSettings,
): string[] {
  const names = [service.hostname];
  const svcSuffix = `.${service.namespace}.svc.${mesh.dnsDomain}`;
  if (service.hostname.endsWith(svcSuffix)) {
    names.push(`${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}`);
    if (proxy.namespace === service.namespace) names.push(service.name);
  }
  const vip = service.clusterVips.get(proxy.clusterId);
  if (vip !== undefined && vip !== "" && vip !== "None") names.push(vip);
  return names;
}

/** Every name of `serviceHostNames`, each alone and with `:<port>`. */
export function virtualHostDomains(
  service: MeshService,
  port: number,
  proxy: Pick<ProxyView, "namespace" | "clusterId">,
  mesh: MeshSettings,
): string[] {
  return serviceHostNames(service, proxy, mesh).flatMap((h) => [h, `${h}:${port}`]);
}

/** Istio's default retry policy for mesh HTTP routes. */
function defaultRetryPolicy() {
  return {
    retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
    numRetries: 2,
    retryHostPredicate: [
      {
        name: "envoy.retry_host_predicates.previous_hosts",
        configType: {
          case: "typedConfig" as const,
          value: typed(PreviousHostsPredicateSchema, create(PreviousHostsPredicateSchema, {})),
        },
      },
    ],
    hostSelectionRetryMaxAttempts: 5n,
    retriableStatusCodes: [503],
  };
}

function serviceRoute(service: MeshService, port: number, withRetries: boolean): Route {
  return create(RouteSchema, {
    name: "default",
    match: { pathSpecifier: { case: "prefix", value: "/" } },
    action: {
      case: "route",
      value: {
        clusterSpecifier: { case: "cluster", value: outboundClusterName(port, service.hostname) },
        timeout: seconds(0),
        ...(withRetries ? { retryPolicy: defaultRetryPolicy() } : {}),
        maxStreamDuration: { maxStreamDuration: seconds(0), grpcTimeoutHeaderMax: seconds(0) },
      },
    },
    decorator: { operation: `${service.hostname}:${port}/*` },
  });
}

function serviceVirtualHost(service: MeshService, port: number, proxy: ProxyView, mesh: MeshSettings): VirtualHost {
  return create(VirtualHostSchema, {
    name: `${service.hostname}:${port}`,
    domains: virtualHostDomains(service, port, proxy, mesh),
    routes: [serviceRoute(service, port, proxy.type === "sidecar")],
    includeRequestAttemptCount: true,
  });
}

/** A sidecar's route configuration for one HTTP port (`"5000"`), or undefined if no HTTP service uses it. */
export function buildPortRouteConfig(ctx: PushContext, proxy: ProxyView, port: number): RouteConfiguration | undefined {
  const services = ctx.view
    .services()
    .filter((s) => s.ports.some((p) => p.port === port && isHttpProtocol(p.protocol)));
  if (services.length === 0) return undefined;
  return create(RouteConfigurationSchema, {
    name: String(port),
    virtualHosts: [
      ...services.map((s) => serviceVirtualHost(s, port, proxy, ctx.mesh)),
      {
        name: "allow_any",
        domains: ["*"],
        routes: [
          {
            name: "allow_any",
            match: { pathSpecifier: { case: "prefix", value: "/" } },
            action: {
              case: "route",
              value: {
                clusterSpecifier: { case: "cluster", value: passthroughCluster },
                timeout: seconds(0),
                maxStreamDuration: { maxStreamDuration: seconds(0), grpcTimeoutHeaderMax: seconds(0) },
              },
            },
          },
        ],
        includeRequestAttemptCount: true,
      },
    ],
    validateClusters: false,
  });
}

/**
 * Finds the service and port a `<host>:<port>` name means for `proxy`: any of the service's names
 * from `serviceHostNames` is accepted, so `helloworld.sample:5000` works as gRPC targets expect.
 */
export function resolveHostPort(
  ctx: PushContext,
  proxy: ProxyView,
  name: string,
): { service: MeshService; port: number } | undefined {
  const colon = name.lastIndexOf(":");
  if (colon <= 0) return undefined;
  const host = name.slice(0, colon);
  const port = Number(name.slice(colon + 1));
  if (!Number.isInteger(port) || port <= 0) return undefined;
  const direct = ctx.view.service(host);
  const candidates = direct ? [direct] : ctx.view.services();
  for (const service of candidates) {
    if (!service.ports.some((p) => p.port === port)) continue;
    if (serviceHostNames(service, proxy, ctx.mesh).includes(host)) return { service, port };
  }
  return undefined;
}

/** A proxyless client's route configuration for `<host>:<port>`: one virtual host, one route. */
export function buildHostPortRouteConfig(
  ctx: PushContext,
  proxy: ProxyView,
  name: string,
): RouteConfiguration | undefined {
  const target = resolveHostPort(ctx, proxy, name);
  if (target === undefined) return undefined;
  const vh = serviceVirtualHost(target.service, target.port, proxy, ctx.mesh);
  // gRPC matches the authority exactly as the channel target spelled it, so that spelling is added.
  const domains = vh.domains.includes(name) ? vh.domains : [name, ...vh.domains];
  return create(RouteConfigurationSchema, {
    name,
    virtualHosts: [{ ...vh, domains }],
    validateClusters: false,
  });
}

/** Route names a sidecar may ask for: one per HTTP service port, sorted numerically. */
export function sidecarRouteNames(ctx: PushContext): readonly string[] {
  return ctx.memo("rds/names", () => {
    const ports = new Set<number>();
    for (const s of ctx.view.services()) for (const p of s.ports) if (isHttpProtocol(p.protocol)) ports.add(p.port);
    return [...ports].sort((a, b) => a - b).map(String);
  });
}

/**
 * RDS for `proxy`: the named route configurations (all sidecar ones when `names` is empty). A
 * numeric name is a sidecar port route; `<host>:<port>` is a proxyless one. Unknown names are left out.
 */
export function generateRoutes(
  ctx: PushContext,
  proxy: ProxyView,
  names?: ReadonlySet<string>,
): readonly Generated<RouteConfiguration>[] {
  const wanted = names && names.size > 0 ? [...names].sort() : sidecarRouteNames(ctx);
  const out: Generated<RouteConfiguration>[] = [];
  for (const name of wanted) {
    const message = /^\d+$/.test(name)
      ? ctx.memo(`rds/${name}/${proxy.type}/${proxy.namespace}/${proxy.clusterId}`, () =>
          buildPortRouteConfig(ctx, proxy, Number(name)),
        )
      : ctx.memo(`rds/${name}/${proxy.type}/${proxy.namespace}/${proxy.clusterId}`, () =>
          buildHostPortRouteConfig(ctx, proxy, name),
        );
    if (message !== undefined) out.push({ name, message });
  }
  return out;
}
