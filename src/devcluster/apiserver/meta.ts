/** Object-metadata helpers shared by the API semantics: names, timestamps, deep copies and comparisons. */
import { randomInt, randomUUID } from "node:crypto";
import type { KubeObject } from "../api/types.js";

/** Kubernetes' alphabet for generated name suffixes (no vowels, no confusable digits). */
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";

/** `prefix` + 5 random characters, as generateName does; the prefix is cut so the name fits 63 characters. */
export function generateName(prefix: string): string {
  let s = "";
  for (let i = 0; i < 5; i++) s += suffixAlphabet[randomInt(suffixAlphabet.length)];
  return `${prefix.length > 58 ? prefix.slice(0, 58) : prefix}${s}`;
}

export const newUid = (): string => randomUUID();

/** RFC 3339 with second precision, as metadata timestamps are written. */
export function timestamp(at = Date.now()): string {
  return `${new Date(at).toISOString().slice(0, 19)}Z`;
}

/** A deep copy through JSON (objects here are JSON by construction). */
export function copy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON text of everything but metadata and status: what decides a generation bump. */
export function specJson(obj: KubeObject): string {
  const { metadata: _m, status: _s, ...rest } = obj;
  return JSON.stringify(rest);
}

const metaOrder = [
  "name",
  "generateName",
  "namespace",
  "selfLink",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
];

/** Puts kind, apiVersion, metadata first and status last, metadata fields in Kubernetes' order, as kube-apiserver prints them. */
export function canonicalOrder(o: KubeObject): KubeObject {
  const m = o.metadata as Record<string, unknown>;
  const meta: Record<string, unknown> = {};
  for (const k of metaOrder) if (m[k] !== undefined) meta[k] = m[k];
  for (const [k, v] of Object.entries(m)) if (!(k in meta) && v !== undefined) meta[k] = v;
  const out: Record<string, unknown> = { kind: o.kind, apiVersion: o.apiVersion, metadata: meta };
  for (const [k, v] of Object.entries(o)) if (!(k in out) && k !== "status") out[k] = v;
  if (o.status !== undefined) out.status = o.status;
  return out as KubeObject;
}

/** Deep equality of JSON values, key order ignored. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => jsonEqual(ra[k], rb[k]));
}
