/**
 * The control plane's manifests, rendered from InstallValues. Pure: same values, same objects,
 * same order. Shapes and names follow Istio's istio-discovery and base charts, so that tools
 * and habits that know Istio find what they expect; RBAC is as narrow as Istio's.
 */
import YAML from "yaml";
import type { KubeObjectLike, ResourceRef } from "../ca/kube-api.js";
import type { InjectValues } from "../inject/index.js";
import type { InstallValues } from "./operator.js";

export const ISTIO_NAMESPACE = "istio-system";
export const DISCOVERY_ADDRESS = "istiod.istio-system.svc:15012";

/** One group of objects, installed and reported together ("✔ Istiod installed"). */
export interface Component {
  readonly name: "Istio core" | "Istiod";
  readonly objects: readonly KubeObjectLike[];
}

/** The REST collection of each kind install writes. */
export const kindRefs: Readonly<Record<string, ResourceRef & { readonly namespaced: boolean }>> = {
  Namespace: { group: "", version: "v1", resource: "namespaces", namespaced: false },
  ServiceAccount: { group: "", version: "v1", resource: "serviceaccounts", namespaced: true },
  ConfigMap: { group: "", version: "v1", resource: "configmaps", namespaced: true },
  Service: { group: "", version: "v1", resource: "services", namespaced: true },
  Secret: { group: "", version: "v1", resource: "secrets", namespaced: true },
  Deployment: { group: "apps", version: "v1", resource: "deployments", namespaced: true },
  ClusterRole: { group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles", namespaced: false },
  ClusterRoleBinding: {
    group: "rbac.authorization.k8s.io",
    version: "v1",
    resource: "clusterrolebindings",
    namespaced: false,
  },
  Role: { group: "rbac.authorization.k8s.io", version: "v1", resource: "roles", namespaced: true },
  RoleBinding: { group: "rbac.authorization.k8s.io", version: "v1", resource: "rolebindings", namespaced: true },
  MutatingWebhookConfiguration: {
    group: "admissionregistration.k8s.io",
    version: "v1",
    resource: "mutatingwebhookconfigurations",
    namespaced: false,
  },
};

/** What the injector is configured with (the `values` key of ConfigMap `istio-sidecar-injector`). */
export function injectValuesOf(v: InstallValues): InjectValues {
  return {
    hub: v.hub,
    tag: v.tag,
    clusterId: v.clusterId,
    network: v.network,
    meshId: v.meshId,
    trustDomain: v.trustDomain,
    discoveryAddress: DISCOVERY_ADDRESS,
    revision: v.revision,
  };
}

const rbac = "rbac.authorization.k8s.io/v1";
const ns = ISTIO_NAMESPACE;

function meta(name: string, labels: Record<string, string>, namespace?: string): KubeObjectLike["metadata"] {
  return namespace === undefined ? { name, labels } : { name, namespace, labels };
}

const readVerbs = ["get", "list", "watch"];

/** Istio's reader role: what a remote control plane may do with a remote secret's token. */
function readerRules(): unknown[] {
  return [
    {
      apiGroups: [
        "config.istio.io",
        "security.istio.io",
        "networking.istio.io",
        "authentication.istio.io",
        "rbac.istio.io",
        "telemetry.istio.io",
        "extensions.istio.io",
      ],
      resources: ["*"],
      verbs: readVerbs,
    },
    // Istio's reader role also reads secrets (for gateway credentials); Isthmus has no gateways,
    // so a leaked remote secret cannot be used to read the cluster's secrets.
    {
      apiGroups: [""],
      resources: ["endpoints", "pods", "services", "nodes", "replicationcontrollers", "namespaces", "configmaps"],
      verbs: readVerbs,
    },
    { apiGroups: ["networking.istio.io"], verbs: ["get", "watch", "list"], resources: ["workloadentries"] },
    { apiGroups: ["networking.x-k8s.io", "gateway.networking.k8s.io"], resources: ["gateways"], verbs: readVerbs },
    { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: readVerbs },
    { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: readVerbs },
    { apiGroups: ["multicluster.x-k8s.io"], resources: ["serviceexports"], verbs: [...readVerbs, "create", "delete"] },
    { apiGroups: ["multicluster.x-k8s.io"], resources: ["serviceimports"], verbs: readVerbs },
    { apiGroups: ["apps"], resources: ["replicasets"], verbs: readVerbs },
    { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
    { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
  ];
}

/** The reader ServiceAccount and its role: what `create-remote-secret` creates when missing. */
export function readerObjects(namespace = ns): KubeObjectLike[] {
  const name = `istio-reader-clusterrole-${namespace}`;
  const labels = { app: "istio-reader", release: "istio" };
  return [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta("istio-reader-service-account", labels, namespace),
    },
    { apiVersion: rbac, kind: "ClusterRole", metadata: meta(name, labels), rules: readerRules() },
    {
      apiVersion: rbac,
      kind: "ClusterRoleBinding",
      metadata: meta(name, labels),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ kind: "ServiceAccount", name: "istio-reader-service-account", namespace }],
    },
  ];
}

function coreObjects(): KubeObjectLike[] {
  const labels = { app: "istiod", release: "istio" };
  const clusterRole = `istiod-clusterrole-${ns}`;
  const role = `istiod-${ns}`;
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
    ...readerObjects(),
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta("istiod", labels, ns) },
    {
      apiVersion: rbac,
      kind: "ClusterRole",
      metadata: meta(clusterRole, labels),
      rules: [
        // The registry's watches, in every cluster istiod reads.
        { apiGroups: [""], resources: ["pods", "nodes", "services", "namespaces", "endpoints"], verbs: readVerbs },
        { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: readVerbs },
        // istio-ca-root-cert in every namespace.
        { apiGroups: [""], resources: ["configmaps"], verbs: ["create", "get", "list", "watch", "update"] },
        // The CA's TokenReview of proxies' tokens.
        { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
        { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] },
        // The injector webhook's caBundle.
        {
          apiGroups: ["admissionregistration.k8s.io"],
          resources: ["mutatingwebhookconfigurations"],
          verbs: ["get", "list", "watch", "update", "patch"],
        },
        { apiGroups: ["apiextensions.k8s.io"], resources: ["customresourcedefinitions"], verbs: readVerbs },
      ],
    },
    {
      apiVersion: rbac,
      kind: "ClusterRoleBinding",
      metadata: meta(clusterRole, labels),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
      subjects: [{ kind: "ServiceAccount", name: "istiod", namespace: ns }],
    },
    {
      apiVersion: rbac,
      kind: "Role",
      metadata: meta(role, labels, ns),
      rules: [
        // Remote secrets, cacerts and istio-ca-secret: only in istiod's own namespace.
        { apiGroups: [""], resources: ["secrets"], verbs: ["create", "get", "watch", "list", "update", "delete"] },
        { apiGroups: [""], resources: ["configmaps"], verbs: ["create", "get", "list", "watch", "update", "delete"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "update", "patch", "create"] },
      ],
    },
    {
      apiVersion: rbac,
      kind: "RoleBinding",
      metadata: meta(role, labels, ns),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role },
      subjects: [{ kind: "ServiceAccount", name: "istiod", namespace: ns }],
    },
  ];
}

/** The mesh config (ConfigMap `istio`, key `mesh`), as YAML-compatible JSON. */
export function meshConfigOf(v: InstallValues): Record<string, unknown> {
  const given = v.meshConfig;
  const givenDefault = (
    typeof given.defaultConfig === "object" && given.defaultConfig !== null ? given.defaultConfig : {}
  ) as Record<string, unknown>;
  const defaultConfig: Record<string, unknown> = {
    discoveryAddress: DISCOVERY_ADDRESS,
    ...(v.meshId !== "" ? { meshId: v.meshId } : {}),
    ...givenDefault,
  };
  // The computed defaultConfig goes last: `given` may carry the user's partial one, already merged in.
  return { enablePrometheusMerge: true, rootNamespace: ns, ...given, trustDomain: v.trustDomain, defaultConfig };
}

function istiodObjects(v: InstallValues): KubeObjectLike[] {
  const labels = { app: "istiod", istio: "pilot", "istio.io/rev": v.revision, release: "istio" };
  const selector = { app: "istiod", "istio.io/rev": v.revision };
  const fieldEnv = (name: string, fieldPath: string) => ({
    name,
    valueFrom: { fieldRef: { apiVersion: "v1", fieldPath } },
  });
  const env = [
    { name: "REVISION", value: v.revision },
    { name: "PILOT_CERT_PROVIDER", value: "istiod" },
    fieldEnv("POD_NAME", "metadata.name"),
    fieldEnv("POD_NAMESPACE", "metadata.namespace"),
    fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    { name: "CLUSTER_ID", value: v.clusterId },
    ...Object.entries(v.pilotEnv)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value: String(value) })),
  ];
  const meshYaml = YAML.stringify(meshConfigOf(v), { lineWidth: 0, sortMapEntries: true });
  return [
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta("istio", { app: "istiod", "istio.io/rev": v.revision, release: "istio" }, ns),
      data: { mesh: meshYaml, meshNetworks: "networks: {}" },
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: meta("istio-sidecar-injector", { app: "sidecar-injector", "istio.io/rev": v.revision }, ns),
      data: {
        values: JSON.stringify(injectValuesOf(v)),
        // The template itself is code (src/inject): one pure function that the webhook and kube-inject share.
        config: "policy: enabled\nalwaysInjectSelector: []\nneverInjectSelector: []\ninjectedAnnotations: {}\n",
      },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta("istiod", labels, ns),
      spec: {
        replicas: 1,
        strategy: { rollingUpdate: { maxSurge: "100%", maxUnavailable: "25%" } },
        selector: { matchLabels: { istio: "pilot", ...selector } },
        template: {
          metadata: {
            labels: { ...labels, "sidecar.istio.io/inject": "false" },
            annotations: { "prometheus.io/port": "15014", "prometheus.io/scrape": "true" },
          },
          spec: {
            serviceAccountName: "istiod",
            securityContext: { fsGroup: 1337 },
            containers: [
              {
                name: "discovery",
                image: `${v.hub}/pilot:${v.tag}`,
                imagePullPolicy: "IfNotPresent",
                args: [
                  "discovery",
                  "--monitoringAddr=:15014",
                  "--log_output_level=default:info",
                  "--domain",
                  "cluster.local",
                  "--keepaliveMaxServerConnectionAge",
                  "30m",
                ],
                env,
                ports: [
                  { containerPort: 8080, name: "http-debug", protocol: "TCP" },
                  { containerPort: 15010, name: "grpc-xds", protocol: "TCP" },
                  { containerPort: 15012, name: "tls-xds", protocol: "TCP" },
                  { containerPort: 15014, name: "http-monitoring", protocol: "TCP" },
                  { containerPort: 15017, name: "https-webhooks", protocol: "TCP" },
                ],
                readinessProbe: {
                  httpGet: { path: "/ready", port: 8080 },
                  initialDelaySeconds: 1,
                  periodSeconds: 3,
                  timeoutSeconds: 5,
                },
                resources: { requests: { cpu: "500m", memory: "2048Mi" } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ["ALL"] },
                  readOnlyRootFilesystem: true,
                  runAsGroup: 1337,
                  runAsNonRoot: true,
                  runAsUser: 1337,
                },
                volumeMounts: [
                  { name: "istio-token", mountPath: "/var/run/secrets/tokens", readOnly: true },
                  { name: "local-certs", mountPath: "/var/run/secrets/istio-dns" },
                  { name: "cacerts", mountPath: "/etc/cacerts", readOnly: true },
                  { name: "config-volume", mountPath: "/etc/istio/config" },
                  { name: "inject", mountPath: "/var/lib/istio/inject", readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: "local-certs", emptyDir: { medium: "Memory" } },
              {
                name: "istio-token",
                projected: {
                  sources: [
                    { serviceAccountToken: { audience: "istio-ca", expirationSeconds: 43200, path: "istio-token" } },
                  ],
                },
              },
              { name: "cacerts", secret: { secretName: "cacerts", optional: true } },
              { name: "config-volume", configMap: { name: "istio" } },
              { name: "inject", configMap: { name: "istio-sidecar-injector" } },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta("istiod", { app: "istiod", istio: "pilot", "istio.io/rev": v.revision, release: "istio" }, ns),
      spec: {
        ports: [
          { name: "grpc-xds", port: 15010, protocol: "TCP" },
          { name: "https-dns", port: 15012, protocol: "TCP" },
          { name: "https-webhook", port: 443, protocol: "TCP", targetPort: 15017 },
          { name: "http-monitoring", port: 15014, protocol: "TCP" },
        ],
        selector: { app: "istiod", istio: "pilot" },
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: meta("istio-sidecar-injector", {
        app: "sidecar-injector",
        "istio.io/rev": v.revision,
        release: "istio",
      }),
      webhooks: [
        webhook("namespace.sidecar-injector.istio.io", {
          namespaceSelector: { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }] },
          objectSelector: {
            matchExpressions: [{ key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] }],
          },
        }),
        webhook("object.sidecar-injector.istio.io", {
          namespaceSelector: {
            matchExpressions: [
              { key: "istio-injection", operator: "DoesNotExist" },
              { key: "istio.io/rev", operator: "DoesNotExist" },
            ],
          },
          objectSelector: {
            matchExpressions: [
              { key: "sidecar.istio.io/inject", operator: "In", values: ["true"] },
              { key: "istio.io/rev", operator: "DoesNotExist" },
            ],
          },
        }),
      ],
    },
  ];
}

function webhook(name: string, selectors: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    admissionReviewVersions: ["v1"],
    clientConfig: { service: { name: "istiod", namespace: ns, path: "/inject", port: 443 } },
    failurePolicy: "Fail",
    matchPolicy: "Equivalent",
    reinvocationPolicy: "Never",
    rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "*" }],
    sideEffects: "None",
    timeoutSeconds: 10,
    ...selectors,
  };
}

/**
 * Every object install applies, in apply order. `default` and `minimal` render the same:
 * the profiles differ only in gateways, which Isthmus does not install.
 */
export function renderManifests(v: InstallValues): Component[] {
  return [
    { name: "Istio core", objects: coreObjects() },
    { name: "Istiod", objects: istiodObjects(v) },
  ];
}
