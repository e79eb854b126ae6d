/**
 * Turns the xDS node a proxy sends into the ProxyView the generators read. Istio's node ID is
 * `<type>~<ip>~<pod>.<ns>~<ns>.svc.<domain>`; metadata carries CLUSTER_ID, NETWORK, MESH_ID,
 * LABELS, NAMESPACE, INSTANCE_IPS and (for proxyless gRPC) GENERATOR=grpc. Pure.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Checked } from "../../base/index.js";
import type { Node } from "../../gen/envoy/config/core/v3/base_pb.js";
import type { ClusterId, ProxyView } from "../../model/index.js";

/** What the server falls back to when a node leaves something out. */
export interface NodeDefaults {
  /** The control plane's own Kubernetes cluster: Istio assumes a proxy without CLUSTER_ID lives there. */
  readonly clusterId: ClusterId;
  readonly network?: string;
  readonly meshId?: string;
}

function str(v: JsonValue | undefined): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function labelsOf(v: JsonValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === null || typeof v !== "object" || Array.isArray(v)) return out;
  for (const [k, val] of Object.entries(v)) if (typeof val === "string") out[k] = val;
  return out;
}

/** A non-empty string field of the node's metadata (e.g. ISTIO_VERSION), if it has one. */
export function metadataString(node: Pick<Node, "metadata"> | undefined, key: string): string | undefined {
  return str(node?.metadata?.[key]);
}

/** True when the client is gRPC's own xDS client (proxyless), not an Envoy-like sidecar. */
export function isProxyless(node: Pick<Node, "id" | "userAgentName" | "metadata">): boolean {
  const meta: JsonObject = node.metadata ?? {};
  if (str(meta.GENERATOR) === "grpc" || str(meta.ISTHMUS_PROXY_TYPE) === "proxyless") return true;
  if (node.id.startsWith("proxyless~")) return true;
  return /^grpc/i.test(node.userAgentName);
}

/**
 * Parses a node into a ProxyView, or says why it cannot (the message names the node ID and the
 * expected form). Accepts IDs without the `~` form only when metadata supplies IP and NAMESPACE.
 */
export function proxyFromNode(
  node: Pick<Node, "id" | "userAgentName" | "metadata">,
  defaults: NodeDefaults,
): Checked<ProxyView> {
  const meta: JsonObject = node.metadata ?? {};
  const parts = node.id.split("~");
  let ip: string | undefined;
  let podName = "";
  let namespace = str(meta.NAMESPACE);
  let dnsDomain = "";
  if (parts.length === 4) {
    const [, idIp, podDotNs, domain] = parts as [string, string, string, string];
    ip = idIp || undefined;
    const dot = podDotNs.lastIndexOf(".");
    podName = dot > 0 ? podDotNs.slice(0, dot) : podDotNs;
    namespace ??= dot > 0 ? podDotNs.slice(dot + 1) : undefined;
    dnsDomain = domain;
  }
  ip ??= str(meta.INSTANCE_IPS)?.split(",")[0]?.trim();
  podName ||= str(meta.POD_NAME) ?? str(meta.NAME) ?? "";
  const problems: string[] = [];
  if (node.id === "")
    problems.push(
      "the node has no id; send an Istio node ID such as sidecar~10.0.0.5~sleep-1.sample~sample.svc.cluster.local",
    );
  else if (ip === undefined || namespace === undefined) {
    problems.push(
      `node id ${JSON.stringify(node.id)} is not <type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local and metadata lacks INSTANCE_IPS/NAMESPACE; fix the proxy's bootstrap`,
    );
  }
  if (problems.length > 0 || ip === undefined || namespace === undefined) return { ok: false, reasons: problems };
  return {
    ok: true,
    value: {
      id: node.id,
      type: isProxyless(node) ? "proxyless" : "sidecar",
      ip,
      podName,
      namespace,
      clusterId: str(meta.CLUSTER_ID) ?? defaults.clusterId,
      network: str(meta.NETWORK) ?? defaults.network ?? "",
      meshId: str(meta.MESH_ID) ?? defaults.meshId ?? "",
      labels: labelsOf(meta.LABELS),
      dnsDomain: dnsDomain || `${namespace}.svc.cluster.local`,
    },
  };
}
