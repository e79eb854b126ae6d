/**
 * Where KubeConfigs come from: the pod's own service account, a kubeconfig file and context,
 * or the kubeconfig in a remote secret. A remote secret's kubeconfig is untrusted input: it is
 * sanitised as istiod does before anything is done with it.
 */
import { existsSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { type Checked, ConfigError, type EnvSource, errorMessage } from "../base/index.js";

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface LoadKubeConfigOptions {
  /** `--kubeconfig`; when absent, $KUBECONFIG, then in-cluster config, then ~/.kube/config. */
  readonly kubeconfigPath?: string;
  /** `--context`; when absent the file's current-context. */
  readonly context?: string;
  readonly env: EnvSource;
}

/**
 * Loads the KubeConfig of the cluster the control plane runs in. Throws ConfigError naming the
 * file or context when it cannot be used.
 */
export function loadKubeConfig(opts: LoadKubeConfigOptions): KubeConfig {
  let kc = new KubeConfig();
  const fromEnv = (opts.env.get("KUBECONFIG") ?? "").split(":").filter((p) => p !== "");
  const path = opts.kubeconfigPath ?? (fromEnv.length > 0 ? fromEnv.join(":") : undefined);
  try {
    if (opts.kubeconfigPath !== undefined) {
      if (!existsSync(opts.kubeconfigPath))
        throw new ConfigError([
          `kubeconfig ${opts.kubeconfigPath} does not exist; pass --kubeconfig with a readable file`,
        ]);
      kc.loadFromFile(opts.kubeconfigPath);
    } else if (fromEnv.length > 0) {
      kc = mergeKubeconfigFiles(fromEnv);
    } else if (opts.env.get("KUBERNETES_SERVICE_HOST") && existsSync(`${serviceAccountDir}/token`)) {
      kc.loadFromCluster();
    } else {
      kc.loadFromDefault();
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`cannot read kubeconfig ${path ?? "(default)"}: ${errorMessage(err)}`]);
  }
  if (opts.context !== undefined) {
    if (kc.getContextObject(opts.context) === null) {
      const known = kc.getContexts().map((c) => c.name);
      throw new ConfigError([
        `context ${JSON.stringify(opts.context)} is not in kubeconfig ${path ?? "(default)"}; known contexts: ${known.join(", ") || "(none)"}`,
      ]);
    }
    kc.setCurrentContext(opts.context);
  }
  if (kc.getCurrentCluster() === null) {
    throw new ConfigError([
      `kubeconfig ${path ?? "(default)"} has no usable current context; pass --context with one of: ${kc
        .getContexts()
        .map((c) => c.name)
        .join(", ")}`,
    ]);
  }
  return kc;
}

/**
 * Merges the files of a $KUBECONFIG list as kubectl does: missing files are skipped, the first
 * definition of a name wins, and the first file that sets current-context sets it.
 */
function mergeKubeconfigFiles(paths: readonly string[]): KubeConfig {
  const out = new KubeConfig();
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) {
    throw new ConfigError([
      `none of the $KUBECONFIG files exist (${paths.join(":")}); create one or pass --kubeconfig`,
    ]);
  }
  for (const p of present) {
    const one = new KubeConfig();
    one.loadFromFile(p);
    if (!out.currentContext && one.currentContext) out.currentContext = one.currentContext;
    for (const c of one.clusters) if (!out.clusters.some((x) => x.name === c.name)) out.clusters.push(c);
    for (const u of one.users) if (!out.users.some((x) => x.name === u.name)) out.users.push(u);
    for (const c of one.contexts) if (!out.contexts.some((x) => x.name === c.name)) out.contexts.push(c);
  }
  return out;
}

/** Kubeconfig options istiod refuses in remote secrets unless allowed by PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS. */
export type InsecureKubeconfigOption = "exec" | "clientKey" | "clientCertificate" | "tokenFile" | string;

export interface RemoteKubeConfigInput {
  /** `namespace/name` of the Secret, for reasons. */
  readonly secretName: string;
  /** The data key: the remote cluster's ID. */
  readonly key: string;
  /** The decoded kubeconfig text. */
  readonly kubeconfig: string;
  /** Options (and auth-provider names) allowed anyway; empty by default, as in Istio. */
  readonly allow?: ReadonlySet<InsecureKubeconfigOption>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks a remote secret's kubeconfig and builds a KubeConfig from it. Refused, with a reason
 * naming the secret and key: text that is not a kubeconfig, no current context or server, exec
 * plugins, auth providers other than oidc, and client key/certificate/token *files* (paths on
 * the control plane's disk).
 */
export function kubeConfigFromRemoteSecret(input: RemoteKubeConfigInput): Checked<KubeConfig> {
  const where = `secret ${input.secretName} key ${JSON.stringify(input.key)}`;
  const allow = input.allow ?? new Set<string>();
  const fail = (why: string): Checked<KubeConfig> => ({ ok: false, reasons: [`${where}: ${why}`] });
  let doc: unknown;
  try {
    doc = parseYaml(input.kubeconfig);
  } catch (err) {
    return fail(
      `the value is not YAML (${errorMessage(err).split("\n")[0]}); it must be a kubeconfig as made by create-remote-secret`,
    );
  }
  if (!isRecord(doc) || !Array.isArray(doc.clusters) || !Array.isArray(doc.users)) {
    return fail(
      "the value is not a kubeconfig (no clusters and users lists); it must be a kubeconfig as made by create-remote-secret",
    );
  }
  const reasons: string[] = [];
  for (const entry of doc.users) {
    if (!isRecord(entry)) continue;
    const name = typeof entry.name === "string" ? entry.name : "?";
    const user = entry.user;
    if (!isRecord(user)) continue;
    const refuse = (option: string, what: string) => {
      if (!allow.has(option)) {
        reasons.push(
          `${where}: user ${JSON.stringify(name)} uses ${what}, which is refused for remote clusters; use a bearer token (create-remote-secret's default) or set PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS=${option}`,
        );
      }
    };
    if (user.exec !== undefined && user.exec !== null) refuse("exec", "an exec credential plugin");
    const provider = user["auth-provider"];
    if (isRecord(provider)) {
      const pname = typeof provider.name === "string" ? provider.name : "";
      if (pname !== "oidc") refuse(pname, `the auth provider ${JSON.stringify(pname)}`);
    }
    if (typeof user["client-key"] === "string" && user["client-key"] !== "") refuse("clientKey", "a client key file");
    if (typeof user["client-certificate"] === "string" && user["client-certificate"] !== "")
      refuse("clientCertificate", "a client certificate file");
    if (typeof user.tokenFile === "string" && user.tokenFile !== "") refuse("tokenFile", "a token file");
  }
  if (reasons.length > 0) return { ok: false, reasons };
  const kc = new KubeConfig();
  try {
    kc.loadFromString(input.kubeconfig);
  } catch (err) {
    return fail(`the kubeconfig cannot be loaded: ${errorMessage(err)}`);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null) return fail("the kubeconfig has no current-context naming a cluster; set current-context");
  if (!/^https?:\/\//.test(cluster.server)) {
    return fail(
      `the cluster ${JSON.stringify(cluster.name)} has no https:// server address (${JSON.stringify(cluster.server)})`,
    );
  }
  if (cluster.server.startsWith("http:") && !cluster.skipTLSVerify) {
    return fail(`the server ${cluster.server} is plain HTTP; use https:// with certificate-authority-data`);
  }
  return { ok: true, value: kc };
}
