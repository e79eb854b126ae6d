/**
 * Merging a local cluster's context into a user's kubeconfig, and taking it out again,
 * keeping everything else in the file as it was (other clusters, users, preferences).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import YAML from "yaml";

/** The kubeconfig entries of one local cluster: cluster, user and context all named `name`. */
export interface ClusterAccess {
  readonly name: string;
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
}

/**
 * Which kubeconfig file to write, as kubectl chooses it: an explicit path, else the first
 * file of $KUBECONFIG, else ~/.kube/config.
 */
export function kubeconfigPath(explicit: string | undefined, env: NodeJS.ProcessEnv): string {
  if (explicit) return explicit;
  const first = (env.KUBECONFIG ?? "").split(delimiter).find((p) => p.trim() !== "");
  return first ?? join(env.HOME ?? homedir(), ".kube", "config");
}

interface Named {
  name?: unknown;
  [k: string]: unknown;
}

function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  if (text.trim() === "") return {};
  const parsed: unknown = YAML.parse(text);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${path} is not a kubeconfig (expected a YAML mapping); fix or move it, then try again`);
  }
  return parsed as Record<string, unknown>;
}

function writeConfig(path: string, config: Record<string, unknown>): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.isthmus-${process.pid}.tmp`;
  writeFileSync(tmp, YAML.stringify(config), { mode: 0o600 });
  renameSync(tmp, path);
}

function upsert(list: unknown, entry: Named): Named[] {
  const items = Array.isArray(list) ? (list as Named[]) : [];
  const rest = items.filter((i) => i?.name !== entry.name);
  return [...rest, entry];
}

/** The kubeconfig document for one local cluster alone (what `cluster kubeconfig NAME` prints). */
export function kubeconfigFor(access: ClusterAccess): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: access.name,
        cluster: {
          server: access.server,
          "certificate-authority-data": Buffer.from(access.caPem).toString("base64"),
        },
      },
    ],
    users: [{ name: access.name, user: { token: access.token } }],
    contexts: [{ name: access.name, context: { cluster: access.name, user: access.name } }],
    "current-context": access.name,
    preferences: {},
  };
}

/** Adds (or replaces) the cluster, user and context named `access.name` and makes it current. */
export function mergeIntoKubeconfig(path: string, access: ClusterAccess): void {
  const config = readConfig(path);
  const own = kubeconfigFor(access) as { clusters: Named[]; users: Named[]; contexts: Named[] };
  config.apiVersion ??= "v1";
  config.kind ??= "Config";
  config.clusters = upsert(config.clusters, own.clusters[0] as Named);
  config.users = upsert(config.users, own.users[0] as Named);
  config.contexts = upsert(config.contexts, own.contexts[0] as Named);
  config["current-context"] = access.name;
  config.preferences ??= {};
  writeConfig(path, config);
}

/** Removes the cluster, user and context named `name`; unsets current-context if it pointed there. */
export function removeFromKubeconfig(path: string, name: string): void {
  const config = readConfig(path);
  if (Object.keys(config).length === 0) return;
  for (const key of ["clusters", "users", "contexts"]) {
    const list = config[key];
    if (Array.isArray(list)) config[key] = (list as Named[]).filter((i) => i?.name !== name);
  }
  if (config["current-context"] === name) config["current-context"] = "";
  writeConfig(path, config);
}
