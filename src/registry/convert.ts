/**
 * Pure conversion of one Kubernetes cluster's objects into the mesh model: a Service into a
 * ClusterService, a Service's EndpointSlices (with their pods, nodes and the system namespace)
 * into MeshEndpoints labelled as Istio labels them. No I/O; table-tested.
 */
import type { EndpointSlice, Namespace, Node, Pod, Service } from "../kube/index.js";
import {
  type ClusterId,
  type Locality,
  type MeshEndpoint,
  type NetworkId,
  type ServicePort,
  protocolOf,
  spiffeId,
} from "../model/index.js";

export const LabelCluster = "topology.istio.io/cluster";
export const LabelNetwork = "topology.istio.io/network";
export const LabelRegion = "topology.kubernetes.io/region";
export const LabelZone = "topology.kubernetes.io/zone";
export const LabelSubzone = "topology.istio.io/subzone";
export const LabelHostname = "kubernetes.io/hostname";
export const LabelLocality = "istio-locality";
export const LabelTlsMode = "security.istio.io/tlsMode";
export const LabelServiceName = "kubernetes.io/service-name";

/** One Kubernetes cluster's version of a service, before merging across clusters. */
export interface ClusterService {
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  /** The ClusterIP, or undefined for headless and ExternalName services. */
  readonly vip: string | undefined;
  readonly clusterLocal: boolean;
}

/** `<name>.<namespace>.svc.<domainSuffix>`. */
export function serviceHostname(name: string, namespace: string, domainSuffix = "cluster.local"): string {
  return `${name}.${namespace}.svc.${domainSuffix}`;
}

/** Istio's default cluster-local hosts: everything in kube-system, and kubernetes.default. */
export function isClusterLocal(name: string, namespace: string): boolean {
  return namespace === "kube-system" || (namespace === "default" && name === "kubernetes");
}

/** A Service as one cluster has it; undefined for ExternalName services, which carry no endpoints. */
export function toClusterService(svc: Service, domainSuffix = "cluster.local"): ClusterService | undefined {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return undefined;
  const { name } = svc.metadata;
  const namespace = svc.metadata.namespace ?? "default";
  const ip = spec.clusterIP;
  return {
    hostname: serviceHostname(name, namespace, domainSuffix),
    name,
    namespace,
    ports: (spec.ports ?? []).map((p) => ({ name: p.name ?? "", port: p.port, protocol: protocolOf(p) })),
    vip: ip && ip !== "None" ? ip : undefined,
    clusterLocal: isClusterLocal(name, namespace),
  };
}

/** Istio's locality of a pod: its `istio-locality` label (dots for slashes), else its node's topology labels. */
export function localityOf(pod: Pod | undefined, node: Node | undefined, sliceZone?: string): Locality {
  const label = pod?.metadata.labels?.[LabelLocality];
  if (label) {
    const [region = "", zone = "", subZone = ""] = label.replaceAll(".", "/").split("/");
    return { region, zone, subZone };
  }
  const nl = node?.metadata.labels ?? {};
  return { region: nl[LabelRegion] ?? "", zone: nl[LabelZone] ?? sliceZone ?? "", subZone: nl[LabelSubzone] ?? "" };
}

/** The locality as Istio prints it: `region/zone/subzone`, trailing empties dropped. */
export function localityLabel(l: Locality): string {
  return [l.region, l.zone, l.subZone].join("/").replace(/\/+$/, "");
}

/** The network of an endpoint: the pod's label, else the system namespace's label, else the cluster's default. */
export function networkOf(
  pod: Pod | undefined,
  systemNamespace: Namespace | undefined,
  fallback: NetworkId,
): NetworkId {
  return pod?.metadata.labels?.[LabelNetwork] ?? systemNamespace?.metadata.labels?.[LabelNetwork] ?? fallback;
}

/** The workload a pod belongs to: its Deployment's name when owned by a ReplicaSet, else its controller's, else itself. */
export function workloadNameOf(pod: Pod): string {
  const owner = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
  if (owner === undefined) return pod.metadata.name;
  if (owner.kind === "ReplicaSet") {
    const m = /^(.*)-[a-z0-9]{5,10}$/.exec(owner.name);
    return m?.[1] ?? owner.name;
  }
  return owner.name;
}

/** What a conversion needs besides the slices. */
export interface EndpointContext {
  readonly clusterId: ClusterId;
  readonly trustDomain: string;
  /** Network for endpoints whose pod and system namespace name none. */
  readonly defaultNetwork: NetworkId;
  readonly systemNamespace: Namespace | undefined;
  /** Finds the pod behind an endpoint: by targetRef name, else by IP. */
  readonly pod: (namespace: string, name: string | undefined, ip: string) => Pod | undefined;
  readonly node: (name: string) => Node | undefined;
}

/**
 * The endpoints of one service in one cluster, for every service port the slices serve.
 * A slice port matches a service port by name (an unnamed slice port matches the one unnamed
 * service port). Non-IP address types are skipped; not-ready and terminating endpoints are kept
 * with their flags, for the generators to filter.
 */
export function toMeshEndpoints(
  svc: ClusterService,
  slices: readonly EndpointSlice[],
  ctx: EndpointContext,
): MeshEndpoint[] {
  const portNames = new Set(svc.ports.map((p) => p.name));
  const out: MeshEndpoint[] = [];
  const seen = new Set<string>();
  const ordered = [...slices].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const slice of ordered) {
    const at = slice.addressType ?? "IPv4";
    if (at !== "IPv4" && at !== "IPv6") continue;
    for (const ep of slice.endpoints ?? []) {
      for (const address of ep.addresses) {
        const pod = ctx.pod(svc.namespace, ep.targetRef?.kind === "Pod" ? ep.targetRef.name : undefined, address);
        const nodeName = ep.nodeName ?? pod?.spec?.nodeName ?? "";
        const node = nodeName ? ctx.node(nodeName) : undefined;
        const locality = localityOf(pod, node, ep.zone);
        const network = networkOf(pod, ctx.systemNamespace, ctx.defaultNetwork);
        const labels: Record<string, string> = { ...(pod?.metadata.labels ?? {}) };
        if (locality.region) labels[LabelRegion] = locality.region;
        if (locality.zone) labels[LabelZone] = locality.zone;
        if (locality.subZone) labels[LabelSubzone] = locality.subZone;
        labels[LabelCluster] = ctx.clusterId;
        if (nodeName) labels[LabelHostname] = nodeName;
        if (labels[LabelNetwork] === undefined && network) labels[LabelNetwork] = network;
        for (const sp of slice.ports ?? []) {
          const portName = sp.name ?? "";
          if (!portNames.has(portName) || typeof sp.port !== "number") continue;
          const key = `${address}|${sp.port}|${portName}`;
          if (seen.has(key)) continue; // the same address in two slices (during a slice split) counts once
          seen.add(key);
          out.push({
            address,
            port: sp.port,
            servicePortName: portName,
            clusterId: ctx.clusterId,
            network,
            locality,
            labels,
            serviceAccount: pod
              ? spiffeId(
                  ctx.trustDomain,
                  pod.metadata.namespace ?? svc.namespace,
                  pod.spec?.serviceAccountName || "default",
                )
              : "",
            tlsMode: pod?.metadata.labels?.[LabelTlsMode] === "istio" ? "istio" : "disabled",
            workloadName: pod ? workloadNameOf(pod) : (ep.targetRef?.name ?? ""),
            namespace: svc.namespace,
            podName: pod?.metadata.name ?? ep.targetRef?.name ?? "",
            nodeName,
            ready: ep.conditions?.ready !== false,
            terminating: ep.conditions?.terminating === true,
          });
        }
      }
    }
  }
  return out;
}
