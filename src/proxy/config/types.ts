/**
 * The sidecar's configuration as its data path uses it: what the control plane sent (LDS,
 * RDS, CDS, EDS) translated into plain, immutable structures. Translation lives in
 * from-xds.ts; nothing here knows protobuf.
 */

/** How an outbound listener handles a connection. */
export type ListenerAction =
  | { readonly kind: "http"; readonly routeConfigName: string }
  | { readonly kind: "tcp"; readonly cluster: string };

/** An outbound listener: one service port (Istio's `0.0.0.0_5000`) or one VIP and port (`10.201.0.7_5000`). */
export interface OutboundListener {
  readonly name: string;
  /** "0.0.0.0" for a wildcard listener. */
  readonly address: string;
  readonly port: number;
  readonly action: ListenerAction;
}

export interface RetryPolicy {
  readonly numRetries: number;
  /** Envoy retry_on conditions, e.g. connect-failure, refused-stream, unavailable, retriable-status-codes. */
  readonly retryOn: ReadonlySet<string>;
  readonly retriableStatusCodes: ReadonlySet<number>;
  /** Prefer hosts not tried yet (Envoy's previous_hosts predicate). */
  readonly avoidPreviousHosts: boolean;
  /** Deadline of each attempt, ms; absent or 0 = only the route's timeout applies. */
  readonly perTryTimeoutMs?: number;
}

export interface Route {
  readonly name: string;
  readonly prefix: string;
  readonly cluster: string;
  /** Deadline of the whole request, every retry included, until the response is complete; 0 = none. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy | undefined;
}

export interface VirtualHost {
  readonly name: string;
  /** Lower-case domains: exact `host`, `host:port`, or `*` (the catch-all). */
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
}

export interface RouteTable {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHost[];
}

export type LbPolicy = "LEAST_REQUEST" | "ROUND_ROBIN" | "RANDOM";

/** Mutual TLS to the upstream: present our certificate, accept only these SPIFFE IDs. */
export interface UpstreamTls {
  /** Empty means any identity signed by the mesh root. */
  readonly allowedSpiffeIds: readonly string[];
  readonly sni: string;
}

export interface UpstreamCluster {
  readonly name: string;
  /** EDS: endpoints from a ClusterLoadAssignment; STATIC: `staticEndpoints`; ORIGINAL_DST: the connection's own destination. */
  readonly type: "EDS" | "STATIC" | "ORIGINAL_DST";
  /** The EDS resource name (defaults to the cluster name). */
  readonly edsServiceName: string;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  /** mTLS for endpoints whose tlsMode is "istio"; undefined = always plaintext. */
  readonly tls: UpstreamTls | undefined;
  readonly staticEndpoints: readonly Endpoint[];
  /** BlackHoleCluster: every connection is refused. */
  readonly blackHole: boolean;
  /** The upstream speaks HTTP/2 (HttpProtocolOptions explicit http2, set for GRPC/HTTP2 ports). */
  readonly http2?: boolean;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly healthy: boolean;
  readonly weight: number;
  /** "istio" when the endpoint's sidecar accepts mutual TLS. */
  readonly tlsMode: "istio" | "disabled";
  /** The Kubernetes cluster the endpoint lives in (from its istio metadata), "" if unknown. */
  readonly clusterId: string;
  readonly locality: string;
  readonly workload: string;
}

/** What the inbound listener does for one destination port of the pod. */
export interface InboundPort {
  readonly port: number;
  readonly kind: "http" | "tcp";
  /** Where the app listens: 127.0.0.1:<port> (Istio's `inbound|<port>||` cluster). */
  readonly targetHost: string;
  readonly targetPort: number;
  /** What the app speaks on the port: HTTP/2 (h2c) for GRPC/HTTP2 ports, else HTTP/1.1. */
  readonly appProtocol?: "h2" | "http/1.1";
  /** Whether plaintext is accepted too (PERMISSIVE, Istio's default) or only mutual TLS (STRICT). */
  readonly mtlsMode: "PERMISSIVE" | "STRICT";
}

/** One consistent view of everything the data path needs; replaced whole on every update. */
export interface ProxyConfig {
  /** Keyed `${address}:${port}`; wildcard listeners under `0.0.0.0:${port}`. */
  readonly outbound: ReadonlyMap<string, OutboundListener>;
  readonly routes: ReadonlyMap<string, RouteTable>;
  readonly clusters: ReadonlyMap<string, UpstreamCluster>;
  /** Keyed by EDS resource name. */
  readonly endpoints: ReadonlyMap<string, readonly Endpoint[]>;
  /** Keyed by pod port; ports not listed are forwarded as plain TCP to 127.0.0.1. */
  readonly inbound: ReadonlyMap<number, InboundPort>;
}

export const emptyProxyConfig: ProxyConfig = {
  outbound: new Map(),
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
  inbound: new Map(),
};

/** Finds the listener for a destination: the exact VIP listener first, then the wildcard one. */
export function findOutboundListener(config: ProxyConfig, address: string, port: number): OutboundListener | undefined {
  return config.outbound.get(`${address}:${port}`) ?? config.outbound.get(`0.0.0.0:${port}`);
}

/**
 * Picks the virtual host for a Host header as Envoy does: exact domain (with or without the
 * port as given), then the catch-all `*`. Host matching is case-insensitive.
 */
export function findVirtualHost(table: RouteTable, host: string): VirtualHost | undefined {
  const h = host.toLowerCase();
  let wildcard: VirtualHost | undefined;
  for (const vh of table.virtualHosts) {
    for (const d of vh.domains) {
      if (d === h) return vh;
      if (d === "*") wildcard ??= vh;
    }
  }
  return wildcard;
}

/** The first route whose prefix matches the request path. */
export function findRoute(vh: VirtualHost, path: string): Route | undefined {
  return vh.routes.find((r) => path.startsWith(r.prefix));
}
