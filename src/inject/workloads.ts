/**
 * Injection into manifests (what `isthmus kube-inject` does): finds the pod, or the pod
 * template of a workload, in one Kubernetes object and injects it. Pure.
 */
import YAML from "yaml";
import { annotateSkip, type InjectContext, type InjectDecision, injectSidecar } from "./inject.js";
import type { Pod } from "./types.js";

export interface ManifestResult {
  /** The object to print: injected, annotated with the skip reason, or unchanged. */
  readonly object: unknown;
  /** Set when the object holds a pod that was left alone. */
  readonly skipped?: Extract<InjectDecision, { kind: "skip" }>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Where each workload kind keeps its pod template. */
const templatePaths: Readonly<Record<string, readonly string[]>> = {
  Deployment: ["spec", "template"],
  ReplicaSet: ["spec", "template"],
  StatefulSet: ["spec", "template"],
  DaemonSet: ["spec", "template"],
  Job: ["spec", "template"],
  ReplicationController: ["spec", "template"],
  CronJob: ["spec", "jobTemplate", "spec", "template"],
};

/**
 * Injects the pod inside `object` (a Pod or a workload with a pod template); other kinds, and
 * objects without a pod spec, come back unchanged.
 */
export function injectManifest(object: unknown, ctx: InjectContext): ManifestResult {
  if (!isRecord(object) || typeof object.kind !== "string") return { object };
  const meta = isRecord(object.metadata) ? object.metadata : {};
  const namespace = typeof meta.namespace === "string" ? meta.namespace : ctx.namespace;
  if (object.kind === "Pod") {
    if (!isPodLike(object)) return { object };
    const decision = injectSidecar(object, { ...ctx, namespace });
    if (decision.kind === "inject") return { object: decision.pod };
    return { object: annotateSkip(object, decision) ?? object, skipped: decision };
  }
  const path = templatePaths[object.kind];
  if (path === undefined) return { object };
  const template = dig(object, path);
  if (!isPodLike(template)) return { object };
  const name = typeof meta.name === "string" ? meta.name : undefined;
  const apiVersion = typeof object.apiVersion === "string" ? object.apiVersion : "apps/v1";
  const workload = name !== undefined ? { kind: object.kind, name, apiVersion } : undefined;
  const decision = injectSidecar(template, { ...ctx, namespace, workload });
  const replacement = decision.kind === "inject" ? decision.pod : annotateSkip(template, decision);
  const out = replacement === undefined ? object : setIn(object, path, replacement);
  return decision.kind === "inject" ? { object: out } : { object: out, skipped: decision };
}

function isPodLike(v: unknown): v is Pod {
  return isRecord(v) && isRecord(v.spec) && Array.isArray(v.spec.containers);
}

function dig(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (!isRecord(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

function setIn(obj: Record<string, unknown>, path: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  if (head === undefined) return obj;
  const child = obj[head];
  return { ...obj, [head]: rest.length === 0 ? value : setIn(isRecord(child) ? child : {}, rest, value) };
}

export interface InjectYamlResult {
  /** The documents, injected, as YAML separated by `---`. */
  readonly yaml: string;
  /** One line per document whose pod was left alone, naming it and the reason. */
  readonly warnings: readonly string[];
}

/**
 * Injects every document of a YAML stream. Throws an Error naming the document and line when
 * the text is not YAML. Kubernetes' YAML is 1.1, so `yes`/`on` parse as Kubernetes reads them.
 */
export function injectYaml(text: string, ctx: InjectContext): InjectYamlResult {
  const docs = YAML.parseAllDocuments(text, { version: "1.1" });
  const out: string[] = [];
  const warnings: string[] = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      throw new Error(`document ${i + 1} is not valid YAML: ${first?.message ?? "parse error"}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const result = injectManifest(value, ctx);
    if (result.skipped !== undefined) {
      const meta = isRecord(value) && isRecord(value.metadata) ? value.metadata : {};
      const kind = isRecord(value) ? String(value.kind) : "object";
      warnings.push(`${kind}/${String(meta.name ?? "?")}: not injected (${result.skipped.message})`);
    }
    out.push(YAML.stringify(result.object, { version: "1.1", lineWidth: 0, aliasDuplicateObjects: false }));
  });
  return { yaml: out.join("---\n"), warnings };
}
