/**
 * Custom resources against their CRD version's structural schema (openAPIV3Schema): unknown
 * fields (reported for strict field validation, and pruned, unless x-kubernetes-preserve-unknown-fields),
 * `default` values, and the type, enum and required checks kube-apiserver makes. CEL rules
 * (x-kubernetes-validations) and formats are not evaluated.
 */
import type { KubeObject } from "../api/types.js";
import type { Cause } from "./errors.js";
import { copy, isRecord } from "./meta.js";

type Schema = Record<string, unknown>;

const asSchema = (v: unknown): Schema | undefined => (isRecord(v) ? v : undefined);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function typeMatches(want: string, v: unknown): boolean {
  const got = typeOf(v);
  if (want === "number") return got === "number" || got === "integer";
  return got === want;
}

/**
 * Walks `obj` (apiVersion, kind and metadata excepted) along `schema`: returns the paths of unknown
 * fields; with `prune`, removes them; with `defaults`, fills `default` values of missing properties.
 */
export function crUnknownFields(
  schema: unknown,
  obj: KubeObject,
  opts: { prune: boolean; defaults: boolean },
): string[] {
  const root = asSchema(schema);
  if (!root) return [];
  const out: string[] = [];
  walk(root, obj, "", out, opts, true);
  return out;
}

function walk(
  s: Schema,
  v: unknown,
  path: string,
  out: string[],
  opts: { prune: boolean; defaults: boolean },
  top = false,
): void {
  if (isRecord(v) && (s.type === "object" || s.properties !== undefined || s.additionalProperties !== undefined)) {
    const props = asSchema(s.properties) ?? {};
    if (opts.defaults) {
      for (const [k, ps] of Object.entries(props)) {
        const d = asSchema(ps)?.default;
        if (v[k] === undefined && d !== undefined) v[k] = copy(d);
      }
    }
    const preserve = s["x-kubernetes-preserve-unknown-fields"] === true;
    const additional = s.additionalProperties;
    for (const [k, x] of Object.entries(v)) {
      if (top && (k === "apiVersion" || k === "kind" || k === "metadata")) continue;
      const p = path ? `${path}.${k}` : k;
      const ps = asSchema(props[k]);
      if (ps) walk(ps, x, p, out, opts);
      else if (asSchema(additional)) walk(asSchema(additional) ?? {}, x, p, out, opts);
      else if (!preserve && additional !== true) {
        out.push(p);
        if (opts.prune) delete v[k];
      }
    }
    return;
  }
  if (Array.isArray(v)) {
    const items = asSchema(s.items);
    if (items) for (const [i, x] of v.entries()) walk(items, x, `${path}[${i}]`, out, opts);
  }
}

/** Type, enum and required checks; returns the causes of a 422. */
export function crValidate(schema: unknown, obj: KubeObject): Cause[] {
  const root = asSchema(schema);
  if (!root) return [];
  const out: Cause[] = [];
  check(root, obj, "", out, true);
  return out;
}

function check(s: Schema, v: unknown, path: string, out: Cause[], top = false): void {
  if (v === null || v === undefined) {
    return;
  }
  const t = typeof s.type === "string" ? s.type : undefined;
  if (s["x-kubernetes-int-or-string"] === true) {
    if (typeOf(v) !== "integer" && typeOf(v) !== "string") {
      out.push({
        reason: "FieldValueInvalid",
        message: `Invalid value: "${typeOf(v)}": ${path} in body must be of type integer,string: "${typeOf(v)}"`,
        field: path,
      });
    }
    return;
  }
  if (t !== undefined && !typeMatches(t, v)) {
    out.push({
      reason: "FieldValueInvalid",
      message: `Invalid value: "${typeOf(v)}": ${path} in body must be of type ${t}: "${typeOf(v)}"`,
      field: path,
    });
    return;
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
    out.push({
      reason: "FieldValueNotSupported",
      message: `Unsupported value: ${JSON.stringify(v)}: supported values: ${s.enum.map((e) => JSON.stringify(e)).join(", ")}`,
      field: path,
    });
  }
  if (isRecord(v)) {
    const props = asSchema(s.properties) ?? {};
    if (Array.isArray(s.required)) {
      for (const r of s.required) {
        if (typeof r === "string" && v[r] === undefined) {
          out.push({ reason: "FieldValueRequired", message: "Required value", field: path ? `${path}.${r}` : r });
        }
      }
    }
    for (const [k, x] of Object.entries(v)) {
      if (top && (k === "apiVersion" || k === "kind" || k === "metadata")) continue;
      const ps = asSchema(props[k]) ?? asSchema(s.additionalProperties);
      if (ps) check(ps, x, path ? `${path}.${k}` : k, out);
    }
  } else if (Array.isArray(v)) {
    const items = asSchema(s.items);
    if (items) for (const [i, x] of v.entries()) check(items, x, `${path}[${i}]`, out);
  }
}
