/**
 * Label selectors (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and field selectors, parsed once
 * into predicates. Parse failures are returned as messages; the caller turns them into 400 BadRequest.
 */
import { type LabelRequirement, matchRequirements } from "../api/label-selector.js";
import type { KubeObject } from "../api/types.js";

export { type LabelSelector, matchLabelSelector } from "../api/label-selector.js";

export type Predicate = (obj: KubeObject) => boolean;

const labelKeyRe =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const labelValueRe = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function parseRequirement(raw: string): LabelRequirement | string {
  const term = raw.trim();
  let m = /^!\s*(\S+)$/.exec(term);
  if (m) return { key: m[1] ?? "", op: "!exists", values: [] };
  m = /^(\S+?)\s+(in|notin)\s*\((.*)\)$/.exec(term);
  if (m) {
    const values = (m[3] ?? "").split(",").map((v) => v.trim());
    if (values.length === 1 && values[0] === "") return "for 'in', 'notin' operators, values set can't be empty";
    return { key: m[1] ?? "", op: m[2] === "in" ? "in" : "notin", values };
  }
  m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (m) return { key: m[1] ?? "", op: m[2] === "!=" ? "!=" : "=", values: [m[3] ?? ""] };
  if (/^[^=!()\s,]+$/.test(term)) return { key: term, op: "exists", values: [] };
  return `unable to parse requirement: ${JSON.stringify(term)}`;
}

/** Parses a label selector string; "" selects everything. Returns an error message when it cannot be parsed. */
export function parseLabelSelector(selector: string | undefined): Predicate | string {
  if (selector === undefined || selector.trim() === "") return () => true;
  const reqs: LabelRequirement[] = [];
  for (const part of splitTop(selector)) {
    const r = parseRequirement(part);
    if (typeof r === "string") return r;
    if (!labelKeyRe.test(r.key))
      return `unable to parse requirement: invalid label key "${r.key}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`;
    for (const v of r.values) {
      if (!labelValueRe.test(v) || v.length > 63)
        return `unable to parse requirement: invalid label value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`;
    }
    reqs.push(r);
  }
  return (obj) => matchRequirements(reqs, obj.metadata.labels ?? {});
}

/** Reads a dotted path ("spec.nodeName") from an object as a string; missing → "". */
function fieldValue(obj: KubeObject, path: string): string {
  let cur: unknown = obj;
  for (const seg of path.split(".")) {
    if (cur === null || typeof cur !== "object") return "";
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (cur === undefined || cur === null) return "";
  return typeof cur === "string" ? cur : String(cur);
}

/** Fields each kind may be selected by, beyond metadata.name and metadata.namespace. */
const fieldsByKind: Record<string, readonly string[]> = {
  Pod: [
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
  ],
  Event: [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
  ],
  Secret: ["type"],
  Namespace: ["status.phase"],
  Node: ["spec.unschedulable"],
  ReplicaSet: ["status.replicas"],
};

/**
 * Parses a field selector for objects of `kind` (kinds without a table entry, custom resources
 * included, allow only metadata.name and metadata.namespace). Unsupported fields give Kubernetes' message.
 */
export function parseFieldSelector(selector: string | undefined, kind: string): Predicate | string {
  if (selector === undefined || selector.trim() === "") return () => true;
  const allowed = new Set(["metadata.name", "metadata.namespace", ...(fieldsByKind[kind] ?? [])]);
  const tests: Predicate[] = [];
  for (const part of selector.split(",")) {
    const term = part.trim();
    if (term === "") continue;
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) return `invalid selector: '${selector}'; can't understand '${term}'`;
    const field = (m[1] ?? "").trim();
    const op = m[2];
    const want = (m[3] ?? "").trim();
    if (!allowed.has(field)) return `field label not supported: ${field}`;
    const path = field === "source" ? "source.component" : field;
    tests.push(op === "!=" ? (o) => fieldValue(o, path) !== want : (o) => fieldValue(o, path) === want);
  }
  return (obj) => tests.every((t) => t(obj));
}
