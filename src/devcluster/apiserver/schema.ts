/**
 * The field schema of the built-in kinds, for strict field validation (unknown fields → 400) and
 * for the OpenAPI documents the HTTP layer serves. The type table (kube-types.gen.ts) is generated
 * from @kubernetes/client-node's model metadata by `buildKubeTypes()`; a test keeps it in step.
 * Type expressions: "string", "number", "boolean", "Date", "IntOrString", "any", "Array<T>",
 * "{ [key: string]: T; }", or the name of another entry.
 */
import type { KubeObject } from "../api/types.js";
import { kubeTypes } from "./kube-types.gen.js";
import { isRecord } from "./meta.js";
import type { ResourceInfo } from "./registry.js";

export { kubeTypes };

/** Field name → type expression, per model name (e.g. "V1Pod"). */
export type KubeTypeTable = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** Model names of the kinds the server serves and of the bodies it accepts, as client-node names them. */
export const rootModels = [
  "V1Namespace",
  "V1Pod",
  "V1Service",
  "V1Endpoints",
  "V1Secret",
  "V1ConfigMap",
  "V1ServiceAccount",
  "V1Node",
  "CoreV1Event",
  "V1Deployment",
  "V1ReplicaSet",
  "V1EndpointSlice",
  "V1Role",
  "V1RoleBinding",
  "V1ClusterRole",
  "V1ClusterRoleBinding",
  "V1MutatingWebhookConfiguration",
  "V1ValidatingWebhookConfiguration",
  "V1CustomResourceDefinition",
  "V1Lease",
  "V1Scale",
  "V1Status",
  "AuthenticationV1TokenRequest",
  "V1TokenReview",
  "V1SubjectAccessReview",
  "V1SelfSubjectAccessReview",
  "V1SelfSubjectRulesReview",
  "V1LocalSubjectAccessReview",
  "V1SelfSubjectReview",
  "V1Binding",
  "V1DeleteOptions",
] as const;

/** The model name of a served built-in resource's kind; undefined for custom resources. */
export function modelOf(info: Pick<ResourceInfo, "group" | "kind" | "crd">): string | undefined {
  if (info.crd !== undefined) return undefined;
  if (info.group === "" && info.kind === "Event") return "CoreV1Event";
  const name = `V1${info.kind}`;
  return kubeTypes[name] ? name : undefined;
}

function elementType(t: string): { kind: "array" | "map" | "plain"; inner: string } {
  let m = /^Array<(.*)>$/.exec(t);
  if (m) return { kind: "array", inner: m[1] ?? "any" };
  m = /^\{ \[key: string\]: (.*); \}$/.exec(t);
  if (m) return { kind: "map", inner: m[1] ?? "any" };
  return { kind: "plain", inner: t };
}

/**
 * Paths of fields the kind's schema does not know, as Kubernetes' strict decoding names them
 * ("spec.foo", "spec.containers[0].bar"). Custom resources are not checked here.
 */
export function checkFields(info: Pick<ResourceInfo, "group" | "kind" | "crd">, obj: KubeObject): string[] {
  const model = modelOf(info);
  if (!model) return [];
  const out: string[] = [];
  walk(model, obj, "", out);
  return out;
}

/** Removes the fields `checkFields` reports, as decoding into Kubernetes' types drops them. */
export function pruneFields(info: Pick<ResourceInfo, "group" | "kind" | "crd">, obj: KubeObject): void {
  const model = modelOf(info);
  if (model) walk(model, obj, "", [], true);
}

function walk(type: string, value: unknown, path: string, out: string[], prune = false): void {
  if (value === null || value === undefined) return;
  const et = elementType(type);
  if (et.kind === "array") {
    if (Array.isArray(value)) for (const [i, v] of value.entries()) walk(et.inner, v, `${path}[${i}]`, out, prune);
    return;
  }
  if (et.kind === "map") {
    if (isRecord(value)) for (const [k, v] of Object.entries(value)) walk(et.inner, v, `${path}[${k}]`, out, prune);
    return;
  }
  const fields = kubeTypes[type];
  if (!fields || !isRecord(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const ft = fields[k];
    const p = path ? `${path}.${k}` : k;
    if (ft === undefined) {
      out.push(p);
      if (prune) delete value[k];
    } else walk(ft, v, p, out, prune);
  }
}

/** Reads client-node's model metadata and returns the table reachable from `rootModels` (for regeneration and its test). */
export async function buildKubeTypes(): Promise<Record<string, Record<string, string>>> {
  const models = (await import("@kubernetes/client-node/dist/gen/models/all.js")) as unknown as Record<
    string,
    { attributeTypeMap?: { baseName: string; type: string }[] } | undefined
  >;
  const out: Record<string, Record<string, string>> = {};
  const queue: string[] = [...rootModels];
  while (queue.length > 0) {
    const name = queue.pop() ?? "";
    if (out[name]) continue;
    const m = models[name]?.attributeTypeMap;
    if (!m) throw new Error(`@kubernetes/client-node has no model ${name}`);
    const fields: Record<string, string> = {};
    for (const a of m) {
      fields[a.baseName] = a.type;
      let inner = a.type;
      for (;;) {
        const et = elementType(inner);
        if (et.kind === "plain") break;
        inner = et.inner;
      }
      if (models[inner]?.attributeTypeMap && !out[inner]) queue.push(inner);
    }
    out[name] = fields;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** The source text of kube-types.gen.ts for a table. */
export function renderKubeTypesModule(table: Record<string, Record<string, string>>): string {
  return `/** Generated by buildKubeTypes() in schema.ts from @kubernetes/client-node's models; do not edit. */\nexport const kubeTypes: Readonly<Record<string, Readonly<Record<string, string>>>> = ${JSON.stringify(table, null, 2)};\n`;
}

/** patchMergeKey/patchStrategy of the list fields kubectl merges, for OpenAPI extensions. */
export const patchMeta: Readonly<Record<string, Readonly<Record<string, { mergeKey?: string; strategy: string }>>>> = {
  V1PodSpec: {
    containers: { mergeKey: "name", strategy: "merge" },
    initContainers: { mergeKey: "name", strategy: "merge" },
    ephemeralContainers: { mergeKey: "name", strategy: "merge" },
    volumes: { mergeKey: "name", strategy: "merge,retainKeys" },
    imagePullSecrets: { mergeKey: "name", strategy: "merge" },
    hostAliases: { mergeKey: "ip", strategy: "merge" },
    topologySpreadConstraints: { mergeKey: "topologyKey", strategy: "merge" },
  },
  V1Container: {
    ports: { mergeKey: "containerPort", strategy: "merge" },
    env: { mergeKey: "name", strategy: "merge" },
    volumeMounts: { mergeKey: "mountPath", strategy: "merge" },
    volumeDevices: { mergeKey: "devicePath", strategy: "merge" },
  },
  V1ServiceSpec: { ports: { mergeKey: "port", strategy: "merge" } },
  V1ObjectMeta: {
    finalizers: { strategy: "merge" },
    ownerReferences: { mergeKey: "uid", strategy: "merge" },
  },
  V1PodStatus: { conditions: { mergeKey: "type", strategy: "merge" } },
  V1DeploymentStatus: { conditions: { mergeKey: "type", strategy: "merge" } },
  V1ReplicaSetStatus: { conditions: { mergeKey: "type", strategy: "merge" } },
  V1NodeStatus: { conditions: { mergeKey: "type", strategy: "merge" } },
};

type Schema = Record<string, unknown>;

function typeSchema(t: string, prefix: string): Schema {
  const et = elementType(t);
  if (et.kind === "array") return { type: "array", items: typeSchema(et.inner, prefix) };
  if (et.kind === "map") return { type: "object", additionalProperties: typeSchema(et.inner, prefix) };
  switch (t) {
    case "string":
      return { type: "string" };
    case "number":
      return { type: "integer" };
    case "boolean":
      return { type: "boolean" };
    case "Date":
      return { type: "string", format: "date-time" };
    case "IntOrString":
      return { "x-kubernetes-int-or-string": true };
    case "any":
    case "object":
      return { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  }
  if (kubeTypes[t]) return { allOf: [{ $ref: `${prefix}${t}` }] };
  return {};
}

/**
 * OpenAPI v3 component schemas for every model, keyed by model name, with `$ref`s built from
 * `refPrefix` (e.g. "#/components/schemas/"), patch extensions on merged lists, and
 * `x-kubernetes-group-version-kind` on the served kinds (`gvk` maps model name → [group, version, kind]).
 */
export function openApiSchemas(
  refPrefix: string,
  gvk: ReadonlyMap<string, { group: string; version: string; kind: string }>,
): Record<string, Schema> {
  const out: Record<string, Schema> = {};
  for (const [name, fields] of Object.entries(kubeTypes)) {
    const properties: Record<string, Schema> = {};
    for (const [f, t] of Object.entries(fields)) {
      const s = typeSchema(t, refPrefix);
      const pm = patchMeta[name]?.[f];
      if (pm) {
        s["x-kubernetes-patch-strategy"] = pm.strategy;
        if (pm.mergeKey) s["x-kubernetes-patch-merge-key"] = pm.mergeKey;
      }
      properties[f] = s;
    }
    const schema: Schema = { type: "object", properties };
    const g = gvk.get(name);
    if (g) schema["x-kubernetes-group-version-kind"] = [g];
    out[name] = schema;
  }
  return out;
}

/** Maps of resource quantities: Kubernetes decodes a number there (`cpu: 1`), so they are not string-only. */
const quantityMaps = new Set([
  "V1ContainerStatus.allocatedResources",
  "V1NodeAllocatableResourceClaimStatus.resources",
  "V1NodeStatus.allocatable",
  "V1NodeStatus.capacity",
  "V1PodSpec.overhead",
  "V1PodStatus.allocatedResources",
  "V1ResourceRequirements.limits",
  "V1ResourceRequirements.requests",
  "V1VolumeResourceRequirements.limits",
  "V1VolumeResourceRequirements.requests",
]);

/** Maps whose values are bytes (Go's map[string][]byte), sent as base64 strings. */
const byteMaps = new Set(["V1ConfigMap.binaryData", "V1Secret.data"]);

/** JSON's name for the kind of a value, as Go's decoder words it ("number", "bool", ...). */
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v === "object" ? "object" : typeof v;
}

/** The offset of the first byte Go's standard base64 decoder refuses, or -1 when `s` decodes. */
function base64Error(s: string): number {
  const bad = s.search(/[^A-Za-z0-9+/=\r\n]/);
  if (bad >= 0) return bad;
  const clean = s.replace(/[\r\n]/g, "");
  const pad = clean.indexOf("=");
  if (pad >= 0 && !/^={1,2}$/.test(clean.slice(pad))) return pad;
  if (clean.length % 4 !== 0) return clean.length - (clean.length % 4);
  return -1;
}

/**
 * The first value of a string map (ConfigMap data, Secret data/stringData, labels, annotations,
 * selectors ...) that Kubernetes' decoder cannot take, worded as kube-apiserver's 400 words it
 * after "cannot be handled as a <Kind>: "; undefined when every map holds strings (null counts
 * as ""). Byte maps (Secret data, ConfigMap binaryData) must also hold valid base64.
 */
export function checkStringMaps(
  info: Pick<ResourceInfo, "group" | "kind" | "crd">,
  obj: KubeObject,
): string | undefined {
  const model = modelOf(info);
  return model ? mapTypeError(model, obj, "") : undefined;
}

function mapTypeError(model: string, value: unknown, path: string): string | undefined {
  const fields = kubeTypes[model];
  if (!fields || !isRecord(value)) return undefined;
  for (const [k, v] of Object.entries(value)) {
    const ft = fields[k];
    if (ft === undefined || v === null || v === undefined) continue;
    const p = path ? `${path}.${k}` : k;
    const et = elementType(ft);
    if (et.kind === "map" && et.inner === "string" && !quantityMaps.has(`${model}.${k}`)) {
      const bytes = byteMaps.has(`${model}.${k}`);
      const goType = bytes ? "[]uint8" : "string";
      const where = `Go struct field ${model.replace(/^(CoreV1|V1)/, "")}.${p}`;
      if (!isRecord(v)) return `json: cannot unmarshal ${jsonKind(v)} into ${where} of type map[string]${goType}`;
      for (const x of Object.values(v)) {
        if (x === null) continue;
        if (typeof x !== "string") return `json: cannot unmarshal ${jsonKind(x)} into ${where} of type ${goType}`;
        const at = bytes ? base64Error(x) : -1;
        if (at >= 0) return `illegal base64 data at input byte ${at}`;
      }
      continue;
    }
    const inner = et.kind === "plain" ? ft : et.inner;
    if (!kubeTypes[inner]) continue;
    const children =
      et.kind === "array" && Array.isArray(v) ? v : et.kind === "map" && isRecord(v) ? Object.values(v) : [v];
    for (const c of children) {
      const err = mapTypeError(inner, c, p);
      if (err) return err;
    }
  }
  return undefined;
}
