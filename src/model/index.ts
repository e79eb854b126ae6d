/**
 * model: the mesh's own domain types, shared by the registry (which fills them from
 * Kubernetes) and the xDS generators (which read them). Pure data: no I/O, no Kubernetes
 * objects, no Envoy types. Must import nothing but base.
 */

/** A Kubernetes cluster's ID in the mesh (Istio's cluster.ID, e.g. "cluster1"). Never an Envoy cluster. */
export type ClusterId = string;

/** Network name (Istio's `topology.istio.io/network`, e.g. "network1"). */
export type NetworkId = string;

/** Application protocol of a service port, chosen as Istio does (appProtocol, else the port name's prefix). */
export type Protocol = "HTTP" | "HTTP2" | "GRPC" | "TCP" | "TLS" | "UNKNOWN";

/** Istio's protocol selection: appProtocol first, then the port name's prefix before "-". */
export function protocolOf(port: { readonly name?: string; readonly appProtocol?: string }): Protocol {
  const pick = (s: string): Protocol | undefined => {
    const p = s.toLowerCase().split("-")[0] ?? "";
    if (p === "http" || p === "http/1.1") return "HTTP";
    if (p === "http2" || p === "h2c" || p === "kubernetes.io/h2c") return "HTTP2";
    if (p === "grpc" || p === "grpc-web") return "GRPC";
    if (p === "tcp") return "TCP";
    if (p === "tls" || p === "https") return "TLS";
    return undefined;
  };
  return (
    (port.appProtocol ? pick(port.appProtocol) : undefined) ?? (port.name ? pick(port.name) : undefined) ?? "UNKNOWN"
  );
}

export interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

/** A service as the mesh sees it: merged across every Kubernetes cluster that has it. */
export interface MeshService {
  /** `<name>.<namespace>.svc.<domain>`, e.g. `helloworld.sample.svc.cluster.local`. */
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  /** ClusterIP of this service in each Kubernetes cluster that has it ("None" for headless is left out). */
  readonly clusterVips: ReadonlyMap<ClusterId, string>;
  /** SPIFFE IDs of the workloads behind it, unioned across clusters (the SAN list for mTLS). */
  readonly serviceAccounts: readonly string[];
  /** True for services whose endpoints must stay in their own cluster (kube-system, kubernetes.default). */
  readonly clusterLocal: boolean;
}

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** One endpoint of one service port in one Kubernetes cluster (Istio's IstioEndpoint). */
export interface MeshEndpoint {
  readonly address: string;
  /** The port on the workload (target port), not the service port. */
  readonly port: number;
  /** Name of the service port this endpoint serves. */
  readonly servicePortName: string;
  readonly clusterId: ClusterId;
  readonly network: NetworkId;
  readonly locality: Locality;
  /** Pod labels plus topology.istio.io/cluster, topology.istio.io/network and locality labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** SPIFFE ID of the workload: spiffe://<trustDomain>/ns/<ns>/sa/<sa>. */
  readonly serviceAccount: string;
  /** "istio" when the workload has a sidecar and accepts mutual TLS, else "disabled". */
  readonly tlsMode: "istio" | "disabled";
  readonly workloadName: string;
  readonly namespace: string;
  readonly podName: string;
  readonly nodeName: string;
  readonly ready: boolean;
  readonly terminating: boolean;
}

/** What the control plane knows of a connected proxy, from its xDS node. */
export interface ProxyView {
  /** Envoy node ID, e.g. `sidecar~10.250.0.5~sleep-xxx.sample~sample.svc.cluster.local`. */
  readonly id: string;
  readonly type: "sidecar" | "proxyless";
  readonly ip: string;
  readonly podName: string;
  readonly namespace: string;
  readonly clusterId: ClusterId;
  readonly network: NetworkId;
  readonly meshId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly dnsDomain: string;
}

/**
 * The translated view of every Kubernetes cluster the control plane watches: what the pure
 * xDS generators read. Implementations are immutable snapshots (a push context).
 */
export interface ServiceView {
  /** Every service, sorted by hostname. */
  services(): readonly MeshService[];
  service(hostname: string): MeshService | undefined;
  /** Endpoints of one service port, sharded by cluster ID, shards in sorted cluster ID order. */
  endpoints(hostname: string, servicePortName: string): ReadonlyMap<ClusterId, readonly MeshEndpoint[]>;
  /** Services whose workloads include the pod at `ip` in `clusterId` (for inbound listeners). */
  servicesOfWorkload(clusterId: ClusterId, ip: string): readonly MeshService[];
}

/** The Envoy cluster name for a service port: `outbound|5000||helloworld.sample.svc.cluster.local`. */
export function outboundClusterName(port: number, hostname: string, subset = ""): string {
  return `outbound|${port}|${subset}|${hostname}`;
}

/** The Envoy cluster name for an inbound port: `inbound|5000||`. */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

/** SPIFFE ID for a service account. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
