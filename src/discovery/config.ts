/**
 * The control plane's configuration, read as istiod reads it: environment variables (each
 * registered once with its default and meaning) and the mesh config in the `istio` ConfigMap.
 */
import { parse as parseYaml } from "yaml";
import { type EnvSource, defineEnv, errorMessage, parseDuration, readEnv } from "../base/index.js";
import type { InjectValues } from "../inject/index.js";
import type { ClusterId, NetworkId } from "../model/index.js";
import { debounceAfterEnv, debounceMaxEnv } from "../xds/push/debounce.js";
import { pushThrottleEnv } from "../xds/push/send-limiter.js";

export const clusterIdEnv = defineEnv<string>({
  name: "CLUSTER_ID",
  description: "ID of the Kubernetes cluster this control plane runs in (the key other clusters' remote secrets use)",
  defaultValue: "Kubernetes",
  parse: (s) => s,
});

export const podNamespaceEnv = defineEnv<string>({
  name: "POD_NAMESPACE",
  description: "the control plane's namespace: where remote secrets, the istio ConfigMap and the CA secrets live",
  defaultValue: "istio-system",
  parse: (s) => s,
});

export const podNameEnv = defineEnv<string>({
  name: "POD_NAME",
  description: "the control plane pod's name, shown in debug output",
  defaultValue: "",
  parse: (s) => s,
});

export const remoteClusterTimeoutEnv = defineEnv<number>({
  name: "PILOT_REMOTE_CLUSTER_TIMEOUT",
  description:
    "how long a remote cluster may stay unsynced before it is marked timed out and stops holding readiness back (0 disables)",
  defaultValue: 30_000,
  parse: parseDuration,
});

export const insecureKubeconfigOptionsEnv = defineEnv<ReadonlySet<string>>({
  name: "PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS",
  description:
    "comma-separated kubeconfig options allowed in remote secrets although unsafe (exec, clientKey, clientCertificate, tokenFile, auth-provider names)",
  defaultValue: new Set(),
  parse: (s) =>
    new Set(
      s
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x !== ""),
    ),
});

export const networkEnv = defineEnv<string>({
  name: "NETWORK",
  description: "network of this control plane's own cluster, for endpoints whose pod and system namespace name none",
  defaultValue: "",
  parse: (s) => s,
});

export const metaNetworkEnv = defineEnv<string>({
  name: "ISTIO_META_NETWORK",
  description: "the same as NETWORK (the name the injector uses); NETWORK wins when both are set",
  defaultValue: "",
  parse: (s) => s,
});

/** What the control plane reads from its environment. */
export interface DiscoveryEnv {
  readonly clusterId: ClusterId;
  readonly namespace: string;
  readonly podName: string;
  readonly remoteClusterTimeoutMs: number;
  readonly insecureKubeconfigOptions: ReadonlySet<string>;
  readonly network: NetworkId;
  /** PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX, in ms. */
  readonly debounceAfterMs: number;
  readonly debounceMaxMs: number;
  /** PILOT_PUSH_THROTTLE: xDS responses written at once; the server's default when absent. */
  readonly pushThrottle?: number;
}

/** Reads every variable, reporting all bad values at once (ConfigError). */
export function readDiscoveryEnv(env: EnvSource): DiscoveryEnv {
  const v = readEnv(env, {
    clusterId: clusterIdEnv,
    namespace: podNamespaceEnv,
    podName: podNameEnv,
    remoteClusterTimeoutMs: remoteClusterTimeoutEnv,
    insecureKubeconfigOptions: insecureKubeconfigOptionsEnv,
    network: networkEnv,
    metaNetwork: metaNetworkEnv,
    debounceAfterMs: debounceAfterEnv,
    debounceMaxMs: debounceMaxEnv,
    pushThrottle: pushThrottleEnv,
  });
  return {
    clusterId: v.clusterId,
    namespace: v.namespace,
    podName: v.podName,
    remoteClusterTimeoutMs: v.remoteClusterTimeoutMs,
    insecureKubeconfigOptions: v.insecureKubeconfigOptions,
    network: v.network || v.metaNetwork,
    debounceAfterMs: v.debounceAfterMs,
    debounceMaxMs: v.debounceMaxMs,
    pushThrottle: v.pushThrottle,
  };
}

/** The parts of Istio's MeshConfig the control plane uses. */
export interface MeshConfig {
  readonly trustDomain: string;
  readonly meshId: string;
}

export const defaultMeshConfig: MeshConfig = { trustDomain: "cluster.local", meshId: "cluster.local" };

/**
 * Parses the `mesh` key of the `istio` ConfigMap. `meshId` is read at the top level or under
 * `defaultConfig` (where Istio's charts put it); it defaults to the trust domain, as in Istio.
 */
export function parseMeshConfig(
  text: string | undefined,
): { ok: true; value: MeshConfig } | { ok: false; reasons: string[] } {
  if (text === undefined || text.trim() === "") return { ok: true, value: defaultMeshConfig };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { ok: false, reasons: [`ConfigMap istio key "mesh" is not YAML: ${errorMessage(err).split("\n")[0]}`] };
  }
  if (doc === null || doc === undefined) return { ok: true, value: defaultMeshConfig };
  if (typeof doc !== "object" || Array.isArray(doc))
    return { ok: false, reasons: ['ConfigMap istio key "mesh" is not a mapping'] };
  const m = doc as { trustDomain?: unknown; meshId?: unknown; defaultConfig?: { meshId?: unknown } };
  const reasons: string[] = [];
  const str = (v: unknown, path: string): string | undefined => {
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v === "string") return v;
    reasons.push(`mesh config ${path}: expected a string, got ${JSON.stringify(v)}`);
    return undefined;
  };
  const trustDomain = str(m.trustDomain, "trustDomain") ?? "cluster.local";
  const meshId = str(m.meshId, "meshId") ?? str(m.defaultConfig?.meshId, "defaultConfig.meshId") ?? trustDomain;
  if (reasons.length > 0) return { ok: false, reasons };
  return { ok: true, value: { trustDomain, meshId } };
}

/** Parses `host:port` or `:port` (all addresses) as istiod's address flags are written. */
export function parseAddr(raw: string, flag: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(raw);
  const port = Number(m?.[2]);
  if (m === null || !Number.isInteger(port) || port > 65535) {
    throw new TypeError(`${flag} ${JSON.stringify(raw)}: expected host:port or :port, e.g. :15014`);
  }
  const host = (m[1] ?? "").replace(/^\[|\]$/g, "");
  return { host: host === "" ? "0.0.0.0" : host, port };
}

/**
 * Parses the `values` key of ConfigMap `istio-sidecar-injector` (JSON, as `isthmus install`
 * writes it). Missing fields are reported by name.
 */
export function parseInjectValues(
  text: string | undefined,
): { ok: true; value: InjectValues } | { ok: false; reasons: string[] } {
  if (text === undefined || text.trim() === "") {
    return { ok: false, reasons: ['ConfigMap istio-sidecar-injector has no "values" key; run isthmus install'] };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, reasons: [`ConfigMap istio-sidecar-injector key "values" is not JSON: ${errorMessage(err)}`] };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return { ok: false, reasons: ['ConfigMap istio-sidecar-injector key "values" is not a JSON object'] };
  }
  const d = doc as Record<string, unknown>;
  const keys = ["hub", "tag", "clusterId", "network", "meshId", "trustDomain", "discoveryAddress", "revision"] as const;
  const missing = keys.filter((k) => typeof d[k] !== "string");
  if (missing.length > 0) {
    return {
      ok: false,
      reasons: [`ConfigMap istio-sidecar-injector "values" lacks string field(s) ${missing.join(", ")}`],
    };
  }
  return { ok: true, value: Object.fromEntries(keys.map((k) => [k, d[k]])) as unknown as InjectValues };
}
