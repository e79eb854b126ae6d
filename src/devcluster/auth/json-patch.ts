/**
 * JSON Patch (RFC 6902) over plain JSON values, with JSON Pointer (RFC 6901) paths. Used to
 * apply the `patch` a mutating admission webhook returns. Pure: the input is never modified.
 */
import type { Checked } from "../../base/index.js";

/** One RFC 6902 operation as it arrives on the wire (unvalidated fields are checked when applied). */
export interface JsonPatchOperation {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

type JsonContainer = Record<string, unknown> | unknown[];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Splits a JSON Pointer into unescaped reference tokens; undefined when it is not a pointer. */
export function parseJsonPointer(pointer: string): string[] | undefined {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) return undefined;
  const tokens: string[] = [];
  for (const raw of pointer.slice(1).split("/")) {
    // "~" must be followed by 0 or 1; "~01" decodes to "~1", so ~1 is replaced before ~0.
    if (/~(?![01])/.test(raw)) return undefined;
    tokens.push(raw.replaceAll("~1", "/").replaceAll("~0", "~"));
  }
  return tokens;
}

/** Deep equality of JSON values (object key order ignored), as the `test` operation needs. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

class PatchFailure extends Error {}

/** An array index token: "0" or digits without a leading zero. */
function arrayIndex(token: string, length: number, forAdd: boolean): number {
  if (forAdd && token === "-") return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchFailure(`"${token}" is not an array index`);
  const i = Number(token);
  if (forAdd ? i > length : i >= length) throw new PatchFailure(`array index ${i} is out of bounds (length ${length})`);
  return i;
}

/** Walks to the container holding the last token; throws PatchFailure when a step is missing. */
function parentOf(doc: unknown, tokens: string[], pointer: string): { parent: JsonContainer; key: string } {
  let cur: unknown = doc;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i] as string;
    if (Array.isArray(cur)) cur = cur[arrayIndex(t, cur.length, false)];
    else if (isObject(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw new PatchFailure(`path "${pointer}" does not exist`);
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw new PatchFailure(`path "${pointer}" does not exist`);
  return { parent: cur, key: tokens[tokens.length - 1] as string };
}

function getAt(doc: unknown, pointer: string): unknown {
  const tokens = pointerTokens(pointer);
  if (tokens.length === 0) return doc;
  const { parent, key } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) return parent[arrayIndex(key, parent.length, false)];
  if (!Object.hasOwn(parent, key)) throw new PatchFailure(`path "${pointer}" does not exist`);
  return parent[key];
}

function pointerTokens(pointer: string): string[] {
  const tokens = parseJsonPointer(pointer);
  if (tokens === undefined) throw new PatchFailure(`"${pointer}" is not a JSON pointer`);
  return tokens;
}

/** Returns the new document (the root may be replaced). */
function addAt(doc: unknown, pointer: string, value: unknown): unknown {
  const tokens = pointerTokens(pointer);
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length, true), 0, value);
  else parent[key] = value;
  return doc;
}

function removeAt(doc: unknown, pointer: string): { doc: unknown; removed: unknown } {
  const tokens = pointerTokens(pointer);
  if (tokens.length === 0) throw new PatchFailure("cannot remove the whole document");
  const { parent, key } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const [removed] = parent.splice(arrayIndex(key, parent.length, false), 1);
    return { doc, removed };
  }
  if (!Object.hasOwn(parent, key)) throw new PatchFailure(`path "${pointer}" does not exist`);
  const removed = parent[key];
  delete parent[key];
  return { doc, removed };
}

function requireString(op: JsonPatchOperation, field: "path" | "from"): string {
  const v = op[field];
  if (typeof v !== "string") throw new PatchFailure(`operation "${op.op}" needs a string "${field}"`);
  return v;
}

function requireValue(op: JsonPatchOperation): unknown {
  if (!Object.hasOwn(op, "value")) throw new PatchFailure(`operation "${op.op}" needs a "value"`);
  return op.value;
}

/**
 * Applies `patch` to a copy of `doc`. All operations apply or none do; the failure names the
 * operation index and why (missing path, failed test, bad pointer or operation).
 */
export function applyJsonPatch(doc: unknown, patch: unknown): Checked<unknown> {
  if (!Array.isArray(patch)) return { ok: false, reasons: ["a JSON patch must be an array of operations"] };
  let cur = clone(doc);
  for (let i = 0; i < patch.length; i++) {
    const raw: unknown = patch[i];
    try {
      if (!isObject(raw) || typeof raw.op !== "string") throw new PatchFailure(`operation needs a string "op"`);
      const op = raw as unknown as JsonPatchOperation;
      const path = requireString(op, "path");
      switch (op.op) {
        case "add":
          cur = addAt(cur, path, clone(requireValue(op)));
          break;
        case "remove":
          cur = removeAt(cur, path).doc;
          break;
        case "replace": {
          const value = clone(requireValue(op));
          // replace = remove + add on an existing location; the root may be replaced outright.
          if (path === "") cur = value;
          else cur = addAt(removeAt(cur, path).doc, path, value);
          break;
        }
        case "move": {
          const from = requireString(op, "from");
          if (from === path) break;
          if (path.startsWith(`${from}/`)) throw new PatchFailure(`cannot move "${from}" into its own child "${path}"`);
          const { doc: without, removed } = removeAt(cur, from);
          cur = addAt(without, path, removed);
          break;
        }
        case "copy": {
          const from = requireString(op, "from");
          cur = addAt(cur, path, clone(getAt(cur, from)));
          break;
        }
        case "test": {
          const expected = requireValue(op);
          if (!jsonEqual(getAt(cur, path), expected)) throw new PatchFailure(`test failed: value at "${path}" differs`);
          break;
        }
        default:
          throw new PatchFailure(`unknown operation "${op.op}"`);
      }
    } catch (err) {
      if (err instanceof PatchFailure) return { ok: false, reasons: [`operation ${i}: ${err.message}`] };
      throw err;
    }
  }
  return { ok: true, value: cur };
}
