/**
 * Sidecar injection as one pure function: a pod and the mesh values in, the injected pod (or
 * the reason it is left alone) out. The webhook and `isthmus kube-inject` both call it, so a
 * pod looks the same whichever way it was injected.
 */
import type { ClusterId, NetworkId } from "../model/index.js";
import type { Container, EnvVar, Pod, Volume } from "./types.js";

/** Annotation Istio writes on every injected pod: what was added, so tools can recognise and undo it. */
export const STATUS_ANNOTATION = "sidecar.istio.io/status";
/** Pod label (or annotation) that opts a pod out (`"false"`), or in (`"true"`) outside an enabled namespace. */
export const INJECT_ANNOTATION = "sidecar.istio.io/inject";
/** Annotation the adapters add to a pod they leave alone, saying why (Istio itself writes none). */
export const SKIP_ANNOTATION = "sidecar.isthmus.io/skipped";
/** Namespace label that turns injection on. */
export const NAMESPACE_LABEL = "istio-injection";

/** UID and GID the proxy runs as; istio-init excludes this UID's traffic from capture. */
export const PROXY_UID = 1337;

/** The mesh-wide values a cluster's injector is configured with (ConfigMap `istio-sidecar-injector`). */
export interface InjectValues {
  /** Image registry, e.g. `docker.io/isthmus`; images are `<hub>/proxyv2:<tag>`. */
  readonly hub: string;
  readonly tag: string;
  /** `global.multiCluster.clusterName`, or `Kubernetes` as in Istio when unset. */
  readonly clusterId: ClusterId;
  /** `global.network`; "" when unset (then no network env or label is added). */
  readonly network: NetworkId;
  /** `global.meshID`; "" falls back to the trust domain, as Istio does. */
  readonly meshId: string;
  readonly trustDomain: string;
  /** Where the proxy reaches the control plane and its CA: `istiod.istio-system.svc:15012`. */
  readonly discoveryAddress: string;
  /** Control plane revision; `default`. */
  readonly revision: string;
}

/** What one injection needs: the values plus what the caller knows about this pod's place. */
export interface InjectContext extends InjectValues {
  /**
   * Labels of the pod's namespace. Undefined when the caller has already decided the namespace
   * is in (the webhook's namespaceSelector) or injects regardless of it (kube-inject).
   */
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** The pod's namespace when the pod does not say (an admission request's namespace). */
  readonly namespace?: string;
  /** The workload that owns the pod, when the caller knows it (kube-inject injects a Deployment's template). */
  readonly workload?: { readonly kind: string; readonly name: string; readonly apiVersion: string };
}

export type SkipReason = "namespace-not-enabled" | "disabled-by-annotation" | "host-network" | "already-injected";

export type InjectDecision =
  | { readonly kind: "inject"; readonly pod: Pod }
  | { readonly kind: "skip"; readonly reason: SkipReason; readonly message: string };

/** Istio's default values for a cluster with nothing set (cluster ID `Kubernetes`, no network). */
export function defaultInjectValues(hub: string, tag: string): InjectValues {
  return {
    hub,
    tag,
    clusterId: "Kubernetes",
    network: "",
    meshId: "",
    trustDomain: "cluster.local",
    discoveryAddress: "istiod.istio-system.svc:15012",
    revision: "default",
  };
}

/**
 * Decides whether `pod` gets a sidecar and, if so, returns a new pod with `istio-init` and
 * `istio-proxy` added. Pure: no API calls, no clock, the input is not modified.
 */
export function injectSidecar(pod: Pod, ctx: InjectContext): InjectDecision {
  const annotations = pod.metadata?.annotations ?? {};
  // The pod's own label (Istio's current form) or annotation (the older one) can opt in or out.
  const podSetting = (pod.metadata?.labels?.[INJECT_ANNOTATION] ?? annotations[INJECT_ANNOTATION] ?? "").toLowerCase();
  const namespaceOn = ctx.namespaceLabels === undefined || ctx.namespaceLabels[NAMESPACE_LABEL] === "enabled";
  if (!namespaceOn && podSetting !== "true") {
    return skip(
      "namespace-not-enabled",
      `namespace is not labelled ${NAMESPACE_LABEL}=enabled and the pod does not ask for injection (kubectl label namespace <ns> ${NAMESPACE_LABEL}=enabled)`,
    );
  }
  if (podSetting === "false") {
    return skip("disabled-by-annotation", `pod has label or annotation ${INJECT_ANNOTATION}: "false"`);
  }
  if (pod.spec.hostNetwork === true) {
    return skip("host-network", "pod uses the host's network (hostNetwork: true), which a sidecar cannot capture");
  }
  if (annotations[STATUS_ANNOTATION] !== undefined || pod.spec.containers.some((c) => c.name === "istio-proxy")) {
    return skip("already-injected", `pod already has ${STATUS_ANNOTATION} or an istio-proxy container`);
  }

  const out = structuredClone(pod);
  const meta = out.metadata ?? {};
  out.metadata = meta;
  const namespace = meta.namespace ?? ctx.namespace;
  const workload = workloadOf(pod, ctx);
  const appContainers = pod.spec.containers;
  const proxyImage = `${ctx.hub}/proxyv2:${ctx.tag}`;

  const labels = { ...(meta.labels ?? {}) };
  labels["security.istio.io/tlsMode"] = "istio";
  labels["service.istio.io/canonical-name"] ??=
    labels["app.kubernetes.io/name"] ?? labels.app ?? workload?.name ?? meta.name ?? "unknown";
  labels["service.istio.io/canonical-revision"] ??= labels["app.kubernetes.io/version"] ?? labels.version ?? "latest";
  if (ctx.network !== "") labels["topology.istio.io/network"] = ctx.network;
  meta.labels = labels;

  const volumes = proxyVolumes();
  const podAnnotations = { ...annotations };
  podAnnotations["kubectl.kubernetes.io/default-container"] ??= appContainers[0]?.name ?? "istio-proxy";
  podAnnotations["kubectl.kubernetes.io/default-logs-container"] ??= appContainers[0]?.name ?? "istio-proxy";
  podAnnotations["istio.io/rev"] = ctx.revision;
  podAnnotations[STATUS_ANNOTATION] = JSON.stringify({
    initContainers: ["istio-init"],
    containers: ["istio-proxy"],
    volumes: volumes.map((v) => v.name),
    imagePullSecrets: null,
    revision: ctx.revision,
  });
  meta.annotations = podAnnotations;

  out.spec.initContainers = [...(pod.spec.initContainers ?? []), initContainer(proxyImage)];
  out.spec.containers = [
    ...out.spec.containers,
    proxyContainer({ ctx, image: proxyImage, appContainers, workload, namespace }),
  ];
  out.spec.volumes = [...(pod.spec.volumes ?? []), ...volumes];
  return { kind: "inject", pod: out };
}

function skip(reason: SkipReason, message: string): InjectDecision {
  return { kind: "skip", reason, message };
}

/**
 * The pod with the skip reason written into SKIP_ANNOTATION, for adapters that record why a pod
 * has no sidecar. Returns undefined for `already-injected`, where nothing should change.
 */
export function annotateSkip(pod: Pod, decision: Extract<InjectDecision, { kind: "skip" }>): Pod | undefined {
  if (decision.reason === "already-injected") return undefined;
  const out = structuredClone(pod);
  out.metadata = out.metadata ?? {};
  out.metadata.annotations = { ...(out.metadata.annotations ?? {}), [SKIP_ANNOTATION]: decision.reason };
  return out;
}

/** The owning workload: given by the caller, else read from the ReplicaSet owner or the name (Deployment pods). */
function workloadOf(pod: Pod, ctx: InjectContext): { kind: string; name: string; apiVersion: string } | undefined {
  if (ctx.workload !== undefined) return { ...ctx.workload };
  const meta = pod.metadata ?? {};
  const owner = meta.ownerReferences?.find((o) => o.controller === true) ?? meta.ownerReferences?.[0];
  if (owner !== undefined) {
    // A ReplicaSet named <deployment>-<pod-template-hash> is a Deployment's; report the Deployment, as Istio does.
    if (owner.kind === "ReplicaSet" && /-[a-z0-9]{5,10}$/.test(owner.name)) {
      return { kind: "Deployment", apiVersion: "apps/v1", name: owner.name.replace(/-[a-z0-9]{5,10}$/, "") };
    }
    return { kind: owner.kind, name: owner.name, apiVersion: owner.apiVersion };
  }
  if (meta.name) return { kind: "Pod", apiVersion: "v1", name: meta.name };
  if (meta.generateName) return { kind: "Pod", apiVersion: "v1", name: meta.generateName.replace(/-$/, "") };
  return undefined;
}

function ownerUri(w: { kind: string; name: string; apiVersion: string }, namespace: string): string {
  const plural = `${w.kind.toLowerCase()}s`;
  const path = w.apiVersion.includes("/") ? `apis/${w.apiVersion}` : `api/${w.apiVersion}`;
  return `kubernetes://${path}/namespaces/${namespace}/${plural}/${w.name}`;
}

function initContainer(image: string): Container {
  return {
    name: "istio-init",
    image,
    args: [
      "proxy",
      "init",
      "-p",
      "15001",
      "-z",
      "15006",
      "-u",
      String(PROXY_UID),
      "-m",
      "REDIRECT",
      "-i",
      "*",
      "-x",
      "",
      "-b",
      "*",
      "-d",
      "15090,15021,15020",
    ],
    imagePullPolicy: "IfNotPresent",
    resources: { limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "10m", memory: "40Mi" } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] },
      privileged: false,
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };
}

function field(name: string, fieldPath: string): EnvVar {
  return { name, valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } } };
}

function proxyContainer(o: {
  ctx: InjectContext;
  image: string;
  appContainers: readonly Container[];
  workload: { kind: string; name: string; apiVersion: string } | undefined;
  namespace: string | undefined;
}): Container {
  const { ctx } = o;
  const ports = o.appContainers.flatMap((c) => (c.ports ?? []).map((p) => ({ ...p, protocol: p.protocol ?? "TCP" })));
  const proxyConfig: Record<string, string> = { discoveryAddress: ctx.discoveryAddress };
  if (ctx.meshId !== "") proxyConfig.meshId = ctx.meshId;
  const env: EnvVar[] = [
    { name: "PILOT_CERT_PROVIDER", value: "istiod" },
    { name: "CA_ADDR", value: ctx.discoveryAddress },
    field("POD_NAME", "metadata.name"),
    field("POD_NAMESPACE", "metadata.namespace"),
    field("INSTANCE_IP", "status.podIP"),
    field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    field("HOST_IP", "status.hostIP"),
    { name: "PROXY_CONFIG", value: JSON.stringify(proxyConfig) },
    { name: "ISTIO_META_POD_PORTS", value: JSON.stringify(ports) },
    { name: "ISTIO_META_APP_CONTAINERS", value: o.appContainers.map((c) => c.name).join(",") },
    { name: "ISTIO_META_CLUSTER_ID", value: ctx.clusterId },
    field("ISTIO_META_NODE_NAME", "spec.nodeName"),
    { name: "ISTIO_META_INTERCEPTION_MODE", value: "REDIRECT" },
  ];
  if (ctx.network !== "") env.push({ name: "ISTIO_META_NETWORK", value: ctx.network });
  if (o.workload !== undefined) {
    env.push({ name: "ISTIO_META_WORKLOAD_NAME", value: o.workload.name });
    if (o.namespace !== undefined) env.push({ name: "ISTIO_META_OWNER", value: ownerUri(o.workload, o.namespace) });
  }
  env.push({ name: "ISTIO_META_MESH_ID", value: ctx.meshId !== "" ? ctx.meshId : ctx.trustDomain });
  env.push({ name: "TRUST_DOMAIN", value: ctx.trustDomain });

  const probe = () => ({ httpGet: { path: "/healthz/ready", port: 15021 }, timeoutSeconds: 3 });
  return {
    name: "istio-proxy",
    image: o.image,
    args: [
      "proxy",
      "sidecar",
      "--domain",
      "$(POD_NAMESPACE).svc.cluster.local",
      "--proxyLogLevel=warning",
      "--proxyComponentLogLevel=misc:error",
      "--log_output_level=default:info",
    ],
    env,
    imagePullPolicy: "IfNotPresent",
    ports: [{ containerPort: 15090, name: "http-envoy-prom", protocol: "TCP" }],
    readinessProbe: { ...probe(), failureThreshold: 4, periodSeconds: 15 },
    startupProbe: { ...probe(), failureThreshold: 600, periodSeconds: 1 },
    resources: { limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "100m", memory: "128Mi" } },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: PROXY_UID,
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
    },
    volumeMounts: [
      { mountPath: "/var/run/secrets/istio", name: "istiod-ca-cert" },
      { mountPath: "/var/lib/istio/data", name: "istio-data" },
      { mountPath: "/etc/istio/proxy", name: "istio-envoy" },
      { mountPath: "/var/run/secrets/tokens", name: "istio-token" },
      { mountPath: "/etc/istio/pod", name: "istio-podinfo" },
    ],
  };
}

function proxyVolumes(): Volume[] {
  return [
    { name: "istio-envoy", emptyDir: { medium: "Memory" } },
    { name: "istio-data", emptyDir: {} },
    {
      name: "istio-podinfo",
      // Projected rather than a plain downwardAPI volume: same files, and every runtime we target supports it.
      projected: {
        sources: [
          {
            downwardAPI: {
              items: [
                { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
                { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
              ],
            },
          },
        ],
      },
    },
    {
      name: "istio-token",
      projected: {
        sources: [{ serviceAccountToken: { audience: "istio-ca", expirationSeconds: 43200, path: "istio-token" } }],
      },
    },
    { name: "istiod-ca-cert", configMap: { name: "istio-ca-root-cert" } },
  ];
}

/**
 * Reads the `values` key of ConfigMap `istio-sidecar-injector` (JSON written by `isthmus install`)
 * into InjectValues, listing every missing or mistyped field.
 */
export function parseInjectValues(json: string): { ok: true; value: InjectValues } | { ok: false; reasons: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { ok: false, reasons: ["the injector values are not JSON; reinstall with `isthmus install`"] };
  }
  const obj = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  const reasons: string[] = [];
  const str = (k: keyof InjectValues): string => {
    const v = obj[k];
    if (typeof v === "string") return v;
    reasons.push(`injector values: ${k} must be a string, got ${JSON.stringify(v)}`);
    return "";
  };
  const value: InjectValues = {
    hub: str("hub"),
    tag: str("tag"),
    clusterId: str("clusterId"),
    network: str("network"),
    meshId: str("meshId"),
    trustDomain: str("trustDomain"),
    discoveryAddress: str("discoveryAddress"),
    revision: str("revision"),
  };
  return reasons.length > 0 ? { ok: false, reasons } : { ok: true, value };
}
