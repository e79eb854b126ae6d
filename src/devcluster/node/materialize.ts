/**
 * Turning a pod spec into what a process sees: environment variables (values, references to
 * fields, Secrets, ConfigMaps and resources, `$(VAR)` expansion) and volume folders under the
 * cluster's state folder (secret, configMap, projected with service-account tokens,
 * downwardAPI, emptyDir), which the container's process bind-mounts at the spec's paths.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { IsthmusError } from "../../base/index.js";
import type { ApiClient, KubeObject } from "../api/types.js";
import { isApiError, Resources } from "../api/types.js";
import type { Container, DownwardItem, KeyToPath, PodSpec, Volume } from "./pod-types.js";

/** An expected failure to prepare a container (missing Secret, bad field path); the message names the object. */
export class PrepareError extends IsthmusError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super("ISTHMUS_ERR_POD_PREPARE", message);
    this.reason = reason;
  }
}

/** Reads a field of the pod by the fieldRef path syntax Kubernetes accepts. */
export function podField(pod: KubeObject, path: string): string {
  const status = (pod.status ?? {}) as { podIP?: string; hostIP?: string; podIPs?: { ip: string }[] };
  const spec = (pod.spec ?? {}) as PodSpec;
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m?.[1] && m[2] !== undefined) {
    const map = m[1] === "labels" ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[m[2]] ?? "";
  }
  switch (path) {
    case "metadata.name":
      return pod.metadata.name ?? "";
    case "metadata.namespace":
      return pod.metadata.namespace ?? "";
    case "metadata.uid":
      return pod.metadata.uid ?? "";
    case "metadata.labels":
      return formatMap(pod.metadata.labels);
    case "metadata.annotations":
      return formatMap(pod.metadata.annotations);
    case "spec.nodeName":
      return spec.nodeName ?? "";
    case "spec.serviceAccountName":
      return spec.serviceAccountName ?? "default";
    case "status.podIP":
      return status.podIP ?? "";
    case "status.podIPs":
      return (status.podIPs ?? []).map((p) => p.ip).join(",");
    case "status.hostIP":
    case "status.hostIPs":
      return status.hostIP ?? "";
    default:
      throw new PrepareError("CreateContainerConfigError", `unsupported fieldRef fieldPath "${path}"`);
  }
}

function formatMap(map: Record<string, string> | undefined): string {
  return Object.entries(map ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join("\n");
}

const cpuMillis = (q: string): number => (q.endsWith("m") ? Number(q.slice(0, -1)) : Number(q) * 1000);
function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) return Number(q);
  const mult: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(m[1]) * (m[2] ? (mult[m[2]] ?? 1) : 1);
}

/** resourceFieldRef: the container's request/limit (limits default to the node's capacity), divided and rounded up. */
export function resourceField(
  spec: PodSpec,
  ref: { containerName?: string; resource: string; divisor?: string },
  defaultContainer: string,
  node: { cpu: string; memory: string },
): string {
  const all = [...spec.containers, ...(spec.initContainers ?? [])];
  const c = all.find((x) => x.name === (ref.containerName || defaultContainer));
  const [kind, res] = ref.resource.split(".") as [string, string];
  const fromSpec = (kind === "limits" ? c?.resources?.limits : c?.resources?.requests)?.[res ?? ""];
  const value = fromSpec ?? (kind === "limits" ? (res === "cpu" ? node.cpu : node.memory) : "0");
  // A missing or zero divisor means 1, as in Kubernetes.
  const divisor = ref.divisor && ref.divisor !== "0" ? ref.divisor : "1";
  if (res === "cpu") return String(Math.ceil(cpuMillis(value) / cpuMillis(divisor)));
  return String(Math.ceil(bytes(value) / bytes(divisor)));
}

/** Replaces `$(NAME)` with earlier values; `$$(NAME)` stays literal; unknown names stay as written. */
export function expandVars(s: string, vars: ReadonlyMap<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name: string | undefined) => {
    if (all === "$$") return "$";
    return name !== undefined && vars.has(name) ? (vars.get(name) ?? "") : all;
  });
}

async function getOptional(
  client: ApiClient,
  ref: typeof Resources.secrets | typeof Resources.configmaps,
  namespace: string,
  name: string,
): Promise<KubeObject | undefined> {
  try {
    return await client.get(ref, namespace, name);
  } catch (err) {
    if (isApiError(err, 404)) return undefined;
    throw err;
  }
}

function decodedData(obj: KubeObject, isSecret: boolean): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const data = (obj.data ?? {}) as Record<string, string>;
  for (const [k, v] of Object.entries(data)) out.set(k, isSecret ? Buffer.from(v, "base64") : Buffer.from(v));
  for (const [k, v] of Object.entries((obj.binaryData ?? {}) as Record<string, string>)) {
    out.set(k, Buffer.from(v, "base64"));
  }
  if (isSecret)
    for (const [k, v] of Object.entries((obj.stringData ?? {}) as Record<string, string>)) out.set(k, Buffer.from(v));
  return out;
}

export interface MaterializeContext {
  readonly client: ApiClient;
  readonly pod: KubeObject;
  readonly nodeCapacity: { cpu: string; memory: string };
  /** Extra variables set before the spec's (HOSTNAME, KUBERNETES_SERVICE_*). */
  readonly baseEnv: Readonly<Record<string, string>>;
}

/** The container's environment in order: base variables, envFrom, then env with `$(VAR)` expansion. */
export async function containerEnv(ctx: MaterializeContext, c: Container): Promise<Map<string, string>> {
  const ns = ctx.pod.metadata.namespace ?? "default";
  const spec = ctx.pod.spec as PodSpec;
  const vars = new Map<string, string>(Object.entries(ctx.baseEnv));
  for (const from of c.envFrom ?? []) {
    const isSecret = from.secretRef !== undefined;
    const ref = from.secretRef ?? from.configMapRef;
    if (!ref) continue;
    const obj = await getOptional(ctx.client, isSecret ? Resources.secrets : Resources.configmaps, ns, ref.name);
    if (!obj) {
      if (ref.optional) continue;
      throw new PrepareError(
        "CreateContainerConfigError",
        `${isSecret ? "secret" : "configmap"} "${ref.name}" not found (envFrom of container ${c.name})`,
      );
    }
    for (const [k, v] of decodedData(obj, isSecret)) vars.set(`${from.prefix ?? ""}${k}`, v.toString());
  }
  for (const e of c.env ?? []) {
    if (e.valueFrom === undefined) {
      vars.set(e.name, expandVars(e.value ?? "", vars));
      continue;
    }
    const vf = e.valueFrom;
    if (vf.fieldRef) vars.set(e.name, podField(ctx.pod, vf.fieldRef.fieldPath));
    else if (vf.resourceFieldRef) vars.set(e.name, resourceField(spec, vf.resourceFieldRef, c.name, ctx.nodeCapacity));
    else {
      const isSecret = vf.secretKeyRef !== undefined;
      const ref = vf.secretKeyRef ?? vf.configMapKeyRef;
      if (!ref) continue;
      const obj = await getOptional(ctx.client, isSecret ? Resources.secrets : Resources.configmaps, ns, ref.name);
      const value = obj ? decodedData(obj, isSecret).get(ref.key) : undefined;
      if (value === undefined) {
        if (ref.optional) continue;
        throw new PrepareError(
          "CreateContainerConfigError",
          obj
            ? `couldn't find key ${ref.key} in ${isSecret ? "Secret" : "ConfigMap"} ${ns}/${ref.name} (env ${e.name} of container ${c.name})`
            : `${isSecret ? "secret" : "configmap"} "${ref.name}" not found (env ${e.name} of container ${c.name})`,
        );
      }
      vars.set(e.name, value.toString());
    }
  }
  return vars;
}

function writeFile(path: string, data: Buffer | string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
  chmodSync(path, mode);
}

function writeKeys(
  dir: string,
  data: Map<string, Buffer>,
  items: KeyToPath[] | undefined,
  mode: number,
  what: string,
): void {
  if (items && items.length > 0) {
    for (const item of items) {
      const v = data.get(item.key);
      if (v === undefined) throw new PrepareError("FailedMount", `${what} has no key "${item.key}"`);
      writeFile(join(dir, item.path), v, item.mode ?? mode);
    }
    return;
  }
  for (const [k, v] of data) writeFile(join(dir, k), v, mode);
}

function writeDownward(ctx: MaterializeContext, dir: string, items: DownwardItem[] | undefined, mode: number): void {
  for (const item of items ?? []) {
    const value = item.fieldRef
      ? podField(ctx.pod, item.fieldRef.fieldPath)
      : item.resourceFieldRef
        ? resourceField(ctx.pod.spec as PodSpec, item.resourceFieldRef, "", ctx.nodeCapacity)
        : "";
    writeFile(join(dir, item.path), value, mode);
  }
}

/** A token written into a projected volume, to be refreshed before it expires. */
export interface ProjectedToken {
  readonly file: string;
  readonly audience: string | undefined;
  readonly expirationSeconds: number;
}

/** Requests a bound service-account token for the pod (TokenRequest) and writes it to `file`. */
export async function writeToken(ctx: MaterializeContext, t: ProjectedToken): Promise<number> {
  const ns = ctx.pod.metadata.namespace ?? "default";
  const sa = (ctx.pod.spec as PodSpec).serviceAccountName ?? "default";
  const req: KubeObject = {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    metadata: { name: sa, namespace: ns },
    spec: {
      audiences: t.audience ? [t.audience] : [],
      expirationSeconds: t.expirationSeconds,
      boundObjectRef: { apiVersion: "v1", kind: "Pod", name: ctx.pod.metadata.name, uid: ctx.pod.metadata.uid },
    },
  };
  const res = await ctx.client.create(Resources.serviceaccounts, req, { subresource: "token" });
  const status = (res.status ?? {}) as { token?: string; expirationTimestamp?: string };
  if (!status.token)
    throw new PrepareError("FailedMount", `TokenRequest for serviceaccount ${ns}/${sa} returned no token`);
  writeFile(t.file, status.token, 0o644);
  const exp = status.expirationTimestamp
    ? Date.parse(status.expirationTimestamp)
    : Date.now() + t.expirationSeconds * 1000;
  return exp;
}

/**
 * Writes every volume of the pod under `dir/<volume name>` and returns the tokens to refresh.
 * A missing non-optional Secret or ConfigMap rejects with PrepareError (reason FailedMount).
 */
export async function materializeVolumes(ctx: MaterializeContext, dir: string): Promise<ProjectedToken[]> {
  const ns = ctx.pod.metadata.namespace ?? "default";
  const tokens: ProjectedToken[] = [];
  const spec = ctx.pod.spec as PodSpec;
  for (const v of spec.volumes ?? []) {
    const vdir = join(dir, v.name);
    mkdirSync(vdir, { recursive: true, mode: 0o777 });
    await materializeOne(ctx, v, vdir, ns, tokens);
  }
  return tokens;
}

async function materializeOne(
  ctx: MaterializeContext,
  v: Volume,
  vdir: string,
  ns: string,
  tokens: ProjectedToken[],
): Promise<void> {
  const source = async (
    ref: typeof Resources.secrets | typeof Resources.configmaps,
    name: string | undefined,
    items: KeyToPath[] | undefined,
    optional: boolean | undefined,
    mode: number,
  ) => {
    const isSecret = ref === Resources.secrets;
    const kind = isSecret ? "secret" : "configmap";
    const obj = await getOptional(ctx.client, ref, ns, name ?? "");
    if (!obj) {
      if (optional) return;
      throw new PrepareError(
        "FailedMount",
        `MountVolume.SetUp failed for volume "${v.name}": ${kind} "${name}" not found`,
      );
    }
    writeKeys(vdir, decodedData(obj, isSecret), items, mode, `${kind} ${ns}/${name}`);
  };
  if (v.emptyDir || v.hostPath) {
    chmodSync(vdir, 0o777);
    return;
  }
  if (v.secret)
    return source(
      Resources.secrets,
      v.secret.secretName,
      v.secret.items,
      v.secret.optional,
      v.secret.defaultMode ?? 0o644,
    );
  if (v.configMap)
    return source(
      Resources.configmaps,
      v.configMap.name,
      v.configMap.items,
      v.configMap.optional,
      v.configMap.defaultMode ?? 0o644,
    );
  if (v.downwardAPI) return writeDownward(ctx, vdir, v.downwardAPI.items, 0o644);
  if (v.projected) {
    const mode = v.projected.defaultMode ?? 0o644;
    for (const s of v.projected.sources ?? []) {
      if (s.secret) await source(Resources.secrets, s.secret.name, s.secret.items, s.secret.optional, mode);
      if (s.configMap)
        await source(Resources.configmaps, s.configMap.name, s.configMap.items, s.configMap.optional, mode);
      if (s.downwardAPI) writeDownward(ctx, vdir, s.downwardAPI.items, mode);
      if (s.serviceAccountToken) {
        const t = {
          file: join(vdir, s.serviceAccountToken.path),
          audience: s.serviceAccountToken.audience,
          expirationSeconds: s.serviceAccountToken.expirationSeconds ?? 3607,
        };
        await writeToken(ctx, t);
        tokens.push(t);
      }
    }
  }
}
