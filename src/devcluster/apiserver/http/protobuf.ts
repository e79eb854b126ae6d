/**
 * Decodes the Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) that
 * kubectl's typed clients send for `kubectl create namespace|secret|configmap|serviceaccount|
 * service|deployment|role|rolebinding|clusterrole|clusterrolebinding|token` and `kubectl auth can-i|whoami`,
 * into the JSON objects the store takes. Only those kinds are described here (field numbers from
 * the Kubernetes wire format); a body of another kind, or one carrying a non-empty field this
 * table does not know, is refused with 415 so nothing is dropped silently. Responses stay JSON
 * (every client also accepts it). Pure.
 */

/** A field's type: scalar, Kubernetes wrapper (time, int-or-string), message name, or map value type. */
type FieldType =
  | "string"
  | "bytes"
  | "int" // omitempty: 0 is dropped
  | "*int" // pointer: 0 is kept (e.g. replicas: 0)
  | "bool" // non-pointer Go bool: false is omitted, as JSON's omitempty does
  | "*bool" // pointer bool: false is kept
  | "time"
  | "intstr"
  | { msg: string }
  | { map: "string" | "bytes" | { msg: string } };

interface FieldDef {
  readonly name: string;
  readonly type: FieldType;
  readonly repeated?: boolean;
}

interface MessageDef {
  readonly fields: Readonly<Record<number, FieldDef>>;
  /** Status messages: fields the table does not know are ignored (the server computes status). */
  readonly lenient?: boolean;
  /** Go's ExtraValue is a []string on the JSON side: the message becomes its `items` array. */
  readonly unwrap?: string;
}

const s = (name: string): FieldDef => ({ name, type: "string" });
const ss = (name: string): FieldDef => ({ name, type: "string", repeated: true });
const i = (name: string): FieldDef => ({ name, type: "int" });
const m = (name: string, msg: string, repeated = false): FieldDef => ({ name, type: { msg }, repeated });
const ms = (name: string): FieldDef => ({ name, type: { map: "string" } });

const messages: Record<string, MessageDef> = {
  Unknown: {
    fields: {
      1: m("typeMeta", "TypeMeta"),
      2: { name: "raw", type: "bytes" },
      3: s("contentEncoding"),
      4: s("contentType"),
    },
  },
  TypeMeta: { fields: { 1: s("apiVersion"), 2: s("kind") } },
  ObjectMeta: {
    fields: {
      1: s("name"),
      2: s("generateName"),
      3: s("namespace"),
      4: s("selfLink"),
      5: s("uid"),
      6: s("resourceVersion"),
      7: i("generation"),
      8: { name: "creationTimestamp", type: "time" },
      9: { name: "deletionTimestamp", type: "time" },
      10: i("deletionGracePeriodSeconds"),
      11: ms("labels"),
      12: ms("annotations"),
      13: m("ownerReferences", "OwnerReference", true),
      14: ss("finalizers"),
    },
  },
  OwnerReference: {
    fields: {
      1: s("kind"),
      3: s("name"),
      4: s("uid"),
      5: s("apiVersion"),
      6: { name: "controller", type: "*bool" },
      7: { name: "blockOwnerDeletion", type: "*bool" },
    },
  },
  LabelSelector: { fields: { 1: ms("matchLabels"), 2: m("matchExpressions", "LabelSelectorRequirement", true) } },
  LabelSelectorRequirement: { fields: { 1: s("key"), 2: s("operator"), 3: ss("values") } },
  ObjectReference: {
    fields: {
      1: s("kind"),
      2: s("namespace"),
      3: s("name"),
      4: s("uid"),
      5: s("apiVersion"),
      6: s("resourceVersion"),
      7: s("fieldPath"),
    },
  },
  LocalObjectReference: { fields: { 1: s("name") } },
  // core/v1
  Namespace: { fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "NamespaceSpec"), 3: m("status", "Lenient") } },
  NamespaceSpec: { fields: { 1: ss("finalizers") } },
  Secret: {
    fields: {
      1: m("metadata", "ObjectMeta"),
      2: { name: "data", type: { map: "bytes" } },
      3: s("type"),
      4: ms("stringData"),
      5: { name: "immutable", type: "*bool" },
    },
  },
  ConfigMap: {
    fields: {
      1: m("metadata", "ObjectMeta"),
      2: ms("data"),
      3: { name: "binaryData", type: { map: "bytes" } },
      4: { name: "immutable", type: "*bool" },
    },
  },
  ServiceAccount: {
    fields: {
      1: m("metadata", "ObjectMeta"),
      2: m("secrets", "ObjectReference", true),
      3: m("imagePullSecrets", "LocalObjectReference", true),
      4: { name: "automountServiceAccountToken", type: "*bool" },
    },
  },
  Service: { fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "ServiceSpec"), 3: m("status", "Lenient") } },
  ServiceSpec: {
    fields: {
      1: m("ports", "ServicePort", true),
      2: ms("selector"),
      3: s("clusterIP"),
      4: s("type"),
      5: ss("externalIPs"),
      7: s("sessionAffinity"),
      8: s("loadBalancerIP"),
      9: ss("loadBalancerSourceRanges"),
      10: s("externalName"),
      11: s("externalTrafficPolicy"),
      12: i("healthCheckNodePort"),
      13: { name: "publishNotReadyAddresses", type: "bool" },
    },
  },
  ServicePort: {
    fields: {
      1: s("name"),
      2: s("protocol"),
      3: i("port"),
      4: { name: "targetPort", type: "intstr" },
      5: i("nodePort"),
      6: s("appProtocol"),
    },
  },
  // apps/v1 (what `kubectl create deployment` fills)
  Deployment: { fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "DeploymentSpec"), 3: m("status", "Lenient") } },
  DeploymentSpec: {
    fields: {
      1: { name: "replicas", type: "*int" },
      2: m("selector", "LabelSelector"),
      3: m("template", "PodTemplateSpec"),
      4: m("strategy", "DeploymentStrategy"),
      5: i("minReadySeconds"),
      6: { name: "revisionHistoryLimit", type: "*int" },
      7: { name: "paused", type: "bool" },
      9: { name: "progressDeadlineSeconds", type: "*int" },
    },
  },
  DeploymentStrategy: { fields: { 1: s("type") } },
  PodTemplateSpec: { fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "PodSpec") } },
  PodSpec: {
    fields: {
      2: m("containers", "Container", true),
      3: s("restartPolicy"),
      6: s("dnsPolicy"),
      7: ms("nodeSelector"),
      8: s("serviceAccountName"),
      10: s("nodeName"),
      20: m("initContainers", "Container", true),
    },
  },
  Container: {
    fields: {
      1: s("name"),
      2: s("image"),
      3: ss("command"),
      4: ss("args"),
      5: s("workingDir"),
      6: m("ports", "ContainerPort", true),
      7: m("env", "EnvVar", true),
      13: s("terminationMessagePath"),
      14: s("imagePullPolicy"),
      20: s("terminationMessagePolicy"),
    },
  },
  ContainerPort: {
    fields: { 1: s("name"), 2: i("hostPort"), 3: i("containerPort"), 4: s("protocol"), 5: s("hostIP") },
  },
  EnvVar: { fields: { 1: s("name"), 2: s("value") } },
  // rbac.authorization.k8s.io/v1
  Role: { fields: { 1: m("metadata", "ObjectMeta"), 2: m("rules", "PolicyRule", true) } },
  ClusterRole: {
    fields: {
      1: m("metadata", "ObjectMeta"),
      2: m("rules", "PolicyRule", true),
      3: m("aggregationRule", "AggregationRule"),
    },
  },
  AggregationRule: { fields: { 1: m("clusterRoleSelectors", "LabelSelector", true) } },
  PolicyRule: {
    fields: {
      1: ss("verbs"),
      2: ss("apiGroups"),
      3: ss("resources"),
      4: ss("resourceNames"),
      5: ss("nonResourceURLs"),
    },
  },
  RoleBinding: {
    fields: { 1: m("metadata", "ObjectMeta"), 2: m("subjects", "Subject", true), 3: m("roleRef", "RoleRef") },
  },
  Subject: { fields: { 1: s("kind"), 2: s("apiGroup"), 3: s("name"), 4: s("namespace") } },
  RoleRef: { fields: { 1: s("apiGroup"), 2: s("kind"), 3: s("name") } },
  // authentication.k8s.io/v1
  TokenRequest: {
    fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "TokenRequestSpec"), 3: m("status", "Lenient") },
  },
  TokenRequestSpec: {
    fields: { 1: ss("audiences"), 3: m("boundObjectRef", "BoundObjectReference"), 4: i("expirationSeconds") },
  },
  BoundObjectReference: { fields: { 1: s("kind"), 2: s("apiVersion"), 3: s("name"), 4: s("uid") } },
  TokenReview: {
    fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "TokenReviewSpec"), 3: m("status", "Lenient") },
  },
  TokenReviewSpec: { fields: { 1: s("token"), 2: ss("audiences") } },
  SelfSubjectReview: { fields: { 1: m("metadata", "ObjectMeta"), 2: m("status", "Lenient") } },
  // authorization.k8s.io/v1
  SelfSubjectAccessReview: {
    fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "SelfSubjectAccessReviewSpec"), 3: m("status", "Lenient") },
  },
  SelfSubjectAccessReviewSpec: {
    fields: {
      1: m("resourceAttributes", "ResourceAttributes"),
      2: m("nonResourceAttributes", "NonResourceAttributes"),
    },
  },
  ResourceAttributes: {
    fields: {
      1: s("namespace"),
      2: s("verb"),
      3: s("group"),
      4: s("version"),
      5: s("resource"),
      6: s("subresource"),
      7: s("name"),
    },
  },
  NonResourceAttributes: { fields: { 1: s("path"), 2: s("verb") } },
  SubjectAccessReview: {
    fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "SubjectAccessReviewSpec"), 3: m("status", "Lenient") },
  },
  SubjectAccessReviewSpec: {
    fields: {
      1: m("resourceAttributes", "ResourceAttributes"),
      2: m("nonResourceAttributes", "NonResourceAttributes"),
      3: s("user"),
      4: ss("groups"),
      5: { name: "extra", type: { map: { msg: "ExtraValue" } } },
      6: s("uid"),
    },
  },
  ExtraValue: { fields: { 1: ss("items") }, unwrap: "items" },
  SelfSubjectRulesReview: {
    fields: { 1: m("metadata", "ObjectMeta"), 2: m("spec", "SelfSubjectRulesReviewSpec"), 3: m("status", "Lenient") },
  },
  SelfSubjectRulesReviewSpec: { fields: { 1: s("namespace") } },
  Lenient: { fields: {}, lenient: true },
};

/** `apiVersion/Kind` → message name, for the bodies this decoder accepts. */
const kinds: Record<string, string> = {
  "v1/Namespace": "Namespace",
  "v1/Secret": "Secret",
  "v1/ConfigMap": "ConfigMap",
  "v1/ServiceAccount": "ServiceAccount",
  "v1/Service": "Service",
  "apps/v1/Deployment": "Deployment",
  "rbac.authorization.k8s.io/v1/Role": "Role",
  "rbac.authorization.k8s.io/v1/ClusterRole": "ClusterRole",
  "rbac.authorization.k8s.io/v1/RoleBinding": "RoleBinding",
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "RoleBinding",
  "authentication.k8s.io/v1/TokenRequest": "TokenRequest",
  "authentication.k8s.io/v1/TokenReview": "TokenReview",
  "authentication.k8s.io/v1/SelfSubjectReview": "SelfSubjectReview",
  "authorization.k8s.io/v1/SelfSubjectAccessReview": "SelfSubjectAccessReview",
  "authorization.k8s.io/v1/SubjectAccessReview": "SubjectAccessReview",
  "authorization.k8s.io/v1/LocalSubjectAccessReview": "SubjectAccessReview",
  "authorization.k8s.io/v1/SelfSubjectRulesReview": "SelfSubjectRulesReview",
};

/** Why a protobuf body could not be decoded; the message names the problem for a 415/400. */
export class ProtobufBodyError extends Error {
  constructor(
    message: string,
    /** true: well-formed but not supported here (415); false: malformed (400). */
    readonly unsupported: boolean,
  ) {
    super(message);
  }
}

const magic = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Reader {
  buf: Buffer;
  pos: number;
  end: number;
}

function varint(r: Reader): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (r.pos >= r.end) throw new ProtobufBodyError("truncated varint in protobuf body", false);
    const b = r.buf[r.pos++] ?? 0;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result;
    shift += 7n;
    if (shift > 63n) throw new ProtobufBodyError("varint longer than 64 bits in protobuf body", false);
  }
}

function toNumber(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function timeOf(o: { [k: string]: Json }): string | undefined {
  const sec = typeof o.seconds === "number" ? o.seconds : 0;
  if (sec === 0 && !o.nanos) return undefined;
  return new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function decodeMessage(buf: Buffer, start: number, end: number, name: string, path: string): { [k: string]: Json } {
  const def = messages[name];
  if (!def) throw new ProtobufBodyError(`no protobuf description for ${name}`, true);
  const r: Reader = { buf, pos: start, end };
  const out: { [k: string]: Json } = {};
  while (r.pos < r.end) {
    const key = toNumber(varint(r));
    const field = key >>> 3;
    const wire = key & 7;
    let bytes: [number, number] | undefined;
    let num: bigint | undefined;
    if (wire === 0) num = varint(r);
    else if (wire === 2) {
      const len = toNumber(varint(r));
      if (len < 0 || r.pos + len > r.end)
        throw new ProtobufBodyError(`field ${field} of ${path || name} overruns the body`, false);
      bytes = [r.pos, r.pos + len];
      r.pos += len;
    } else if (wire === 1) {
      r.pos += 8;
      num = 0n;
    } else if (wire === 5) {
      r.pos += 4;
      num = 0n;
    } else throw new ProtobufBodyError(`unsupported protobuf wire type ${wire} in ${path || name}`, false);
    const fd = def.fields[field];
    if (!fd) {
      const empty = (bytes !== undefined && bytes[0] === bytes[1]) || num === 0n;
      if (def.lenient || empty) continue;
      throw new ProtobufBodyError(
        `field number ${field} of ${name} (at ${path || "the top level"}) is not supported in protobuf bodies by this server; send the object as JSON (application/json)`,
        true,
      );
    }
    const at = path ? `${path}.${fd.name}` : fd.name;
    let value: Json | undefined;
    const t = fd.type;
    if (typeof t === "string") {
      switch (t) {
        case "string":
          value = bytes ? buf.toString("utf8", bytes[0], bytes[1]) : "";
          if (value === "" && !fd.repeated) value = undefined;
          break;
        case "bytes":
          value = bytes ? buf.subarray(bytes[0], bytes[1]).toString("base64") : "";
          break;
        case "int":
          value = num !== undefined ? toNumber(num) : 0;
          if (value === 0) value = undefined;
          break;
        case "*int":
          value = num !== undefined ? toNumber(num) : 0;
          break;
        case "bool":
          value = num !== undefined && num !== 0n ? true : undefined;
          break;
        case "*bool":
          value = num !== undefined && num !== 0n;
          break;
        case "time": {
          const tm = bytes ? decodeMessage(buf, bytes[0], bytes[1], "Timestamp", at) : {};
          value = timeOf(tm);
          break;
        }
        case "intstr": {
          const v = bytes ? decodeMessage(buf, bytes[0], bytes[1], "IntOrString", at) : {};
          if (v.type === 1) value = typeof v.strVal === "string" ? v.strVal : "";
          else value = typeof v.intVal === "number" ? v.intVal : undefined;
          break;
        }
      }
    } else if ("msg" in t) {
      if (!bytes) throw new ProtobufBodyError(`field ${at} must be a message`, false);
      const sub = decodeMessage(buf, bytes[0], bytes[1], t.msg, at);
      const unwrap = messages[t.msg]?.unwrap;
      value = unwrap ? (sub[unwrap] ?? []) : sub;
    } else {
      if (!bytes) throw new ProtobufBodyError(`field ${at} must be a map entry`, false);
      const valueType: FieldType = t.map === "string" ? "string" : t.map === "bytes" ? "bytes" : t.map;
      const entryName = `MapEntry:${typeof valueType === "string" ? valueType : valueType.msg}`;
      messages[entryName] ??= { fields: { 1: s("key"), 2: { name: "value", type: valueType } } };
      const entry = decodeMessage(buf, bytes[0], bytes[1], entryName, at);
      const map = (out[fd.name] ?? {}) as { [k: string]: Json };
      const k = typeof entry.key === "string" ? entry.key : "";
      map[k] = entry.value ?? (t.map === "bytes" ? "" : t.map === "string" ? "" : {});
      out[fd.name] = map;
      continue;
    }
    if (fd.repeated) {
      const list = (out[fd.name] ?? []) as Json[];
      list.push(value ?? (fd.type === "string" ? "" : null));
      out[fd.name] = list;
    } else if (value !== undefined) {
      out[fd.name] = value;
    }
  }
  return out;
}

messages.Timestamp = { fields: { 1: i("seconds"), 2: i("nanos") } };
messages.IntOrString = { fields: { 1: i("type"), 2: i("intVal"), 3: s("strVal") } };

/** True when `buf` starts with the Kubernetes protobuf envelope's magic bytes. */
export function isKubernetesProtobuf(buf: Buffer): boolean {
  return buf.length >= 4 && buf.subarray(0, 4).equals(magic);
}

/** Decodes a `k8s\0` + runtime.Unknown body into the JSON object it carries; throws ProtobufBodyError. */
export function decodeKubernetesProtobuf(buf: Buffer): Record<string, unknown> {
  if (!isKubernetesProtobuf(buf))
    throw new ProtobufBodyError("the protobuf body does not start with the Kubernetes envelope (k8s\\0)", false);
  const env = decodeMessage(buf, 4, buf.length, "Unknown", "");
  if (env.contentEncoding) {
    throw new ProtobufBodyError(
      `protobuf contentEncoding ${JSON.stringify(env.contentEncoding)} is not supported`,
      true,
    );
  }
  const tm = (env.typeMeta ?? {}) as { [k: string]: Json };
  const apiVersion = typeof tm.apiVersion === "string" ? tm.apiVersion : "";
  const kind = typeof tm.kind === "string" ? tm.kind : "";
  const msg = kinds[`${apiVersion}/${kind}`];
  if (!msg) {
    throw new ProtobufBodyError(
      `protobuf bodies of ${kind || "unknown kind"} (${apiVersion || "no apiVersion"}) are not supported by this server; send JSON (application/json)`,
      true,
    );
  }
  const raw = typeof env.raw === "string" ? Buffer.from(env.raw, "base64") : Buffer.alloc(0);
  const obj = decodeMessage(raw, 0, raw.length, msg, "");
  const meta = (obj.metadata ?? {}) as { [k: string]: Json };
  delete meta.selfLink;
  return { apiVersion, kind, ...obj, metadata: meta };
}
