/**
 * Server-side apply, simplified: the fields an apply names are recorded per field manager in
 * metadata.managedFields (FieldsV1, the format Kubernetes uses); a later apply by the same manager
 * removes the fields it named before and names no more, then merges what it names now. Ownership
 * by other managers and conflicts are not tracked (every apply behaves as with force=true).
 */
import type { KubeObject } from "../api/types.js";
import { isRecord } from "./meta.js";
import { type Json, listStrategy } from "./patch.js";

export type FieldSet = { [key: string]: FieldSet };

/** The FieldsV1 set of an applied configuration (apiVersion, kind, metadata.name/namespace left out, as Kubernetes does). */
export function fieldSetOf(obj: KubeObject): FieldSet {
  const out: FieldSet = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === "apiVersion" || k === "kind") continue;
    if (k === "metadata" && isRecord(v)) {
      const meta: FieldSet = {};
      for (const [mk, mv] of Object.entries(v)) {
        if (
          ["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"].includes(
            mk,
          )
        )
          continue;
        meta[`f:${mk}`] = fieldsOfValue(mv, mk, undefined);
      }
      if (Object.keys(meta).length > 0) out["f:metadata"] = meta;
      continue;
    }
    out[`f:${k}`] = fieldsOfValue(v, k, undefined);
  }
  return out;
}

function fieldsOfValue(v: unknown, field: string, parentList: string | undefined): FieldSet {
  if (Array.isArray(v)) {
    const strategy = listStrategy(field, parentList);
    if (strategy === "replace") return {};
    const out: FieldSet = { ".": {} };
    for (const item of v) {
      if (strategy === "mergePrimitives") out[`v:${JSON.stringify(item)}`] = {};
      else if (isRecord(item) && item[strategy.mergeKey] !== undefined) {
        out[`k:${JSON.stringify({ [strategy.mergeKey]: item[strategy.mergeKey] })}`] = {
          ".": {},
          ...mapFields(item, field),
        };
      }
    }
    return out;
  }
  if (isRecord(v)) {
    const inner = mapFields(v, parentList);
    return Object.keys(inner).length > 0 ? { ".": {}, ...inner } : {};
  }
  return {};
}

function mapFields(v: Record<string, unknown>, parentList: string | undefined): FieldSet {
  const out: FieldSet = {};
  for (const [k, x] of Object.entries(v)) out[`f:${k}`] = fieldsOfValue(x, k, parentList);
  return out;
}

/** Removes from `live` what `before` names and `after` does not (both FieldsV1 sets of one manager). */
export function removeDropped(
  live: Record<string, unknown>,
  before: FieldSet,
  after: FieldSet,
  parentList?: string,
): void {
  for (const [key, sub] of Object.entries(before)) {
    if (key === ".") continue;
    const now = after[key];
    if (key.startsWith("f:")) {
      const field = key.slice(2);
      if (now === undefined) {
        delete live[field];
        continue;
      }
      const child = live[field];
      if (isRecord(child)) removeDropped(child, sub, now, parentList);
      else if (Array.isArray(child)) removeFromList(child, field, sub, now, parentList);
    }
  }
}

function removeFromList(list: unknown[], field: string, before: FieldSet, after: FieldSet, parentList?: string): void {
  const strategy = listStrategy(field, parentList);
  if (strategy === "replace") return;
  for (const [key, sub] of Object.entries(before)) {
    const now = after[key];
    if (key.startsWith("v:")) {
      if (now !== undefined) continue;
      const value = JSON.parse(key.slice(2)) as Json;
      const i = list.findIndex((x) => JSON.stringify(x) === JSON.stringify(value));
      if (i >= 0) list.splice(i, 1);
    } else if (key.startsWith("k:") && strategy !== "mergePrimitives") {
      const want = JSON.parse(key.slice(2)) as Record<string, unknown>;
      const i = list.findIndex(
        (x) => isRecord(x) && JSON.stringify(x[strategy.mergeKey]) === JSON.stringify(want[strategy.mergeKey]),
      );
      if (i < 0) continue;
      if (now === undefined) list.splice(i, 1);
      else removeDropped(list[i] as Record<string, unknown>, sub, now, field);
    }
  }
}

/** One metadata.managedFields entry. */
export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: FieldSet;
  subresource?: string;
}

/** The Apply entry of `manager`, if any. */
export function appliedBy(obj: KubeObject, manager: string): ManagedFieldsEntry | undefined {
  for (const e of obj.metadata.managedFields ?? []) {
    if (isRecord(e) && e.manager === manager && e.operation === "Apply") return e as unknown as ManagedFieldsEntry;
  }
  return undefined;
}

/** managedFields with `manager`'s Apply entry replaced by `entry`. */
export function withApplied(obj: KubeObject, entry: ManagedFieldsEntry): unknown[] {
  const rest = (obj.metadata.managedFields ?? []).filter(
    (e) => !(isRecord(e) && e.manager === entry.manager && e.operation === "Apply"),
  );
  return [...rest, entry];
}
