/**
 * The three patch types of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch
 * (RFC 6902) and strategic merge patch with the merge keys of the built-in kinds' lists.
 * Pure functions on JSON values; failures are returned as messages, never thrown.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

/** RFC 7386: objects merge recursively, null removes, anything else replaces. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unescapePointer(seg: string): string {
  return seg.replace(/~1/g, "/").replace(/~0/g, "~");
}

function parsePointer(ptr: string): string[] | string {
  if (ptr === "") return [];
  if (!ptr.startsWith("/")) return `invalid JSON pointer ${JSON.stringify(ptr)}: it must start with "/"`;
  return ptr.slice(1).split("/").map(unescapePointer);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as JsonObject)[k], (b as JsonObject)[k]))
  );
}

/** Result of applying a patch: the new document, or why it could not be applied. */
export type PatchResult = { ok: true; value: Json } | { ok: false; message: string; malformed?: boolean };

/** RFC 6902. `malformed` marks a patch document that is not a list of operations (400 rather than 422). */
export function jsonPatch(doc: Json, ops: unknown): PatchResult {
  if (!Array.isArray(ops)) return { ok: false, malformed: true, message: "json patch must be a list of operations" };
  const root: { v: Json } = { v: clone(doc) };
  for (const [i, raw] of ops.entries()) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      return { ok: false, malformed: true, message: `json patch operation ${i} needs "op" and "path"` };
    }
    const op = raw.op;
    const path = parsePointer(raw.path);
    if (typeof path === "string") return { ok: false, message: path };
    const fail = (why: string): PatchResult => ({
      ok: false,
      message: `json patch ${op} operation ${i} at ${raw.path}: ${why}`,
    });
    const get = (p: string[]): { found: boolean; value?: Json } => {
      let cur: Json = root.v;
      for (const seg of p) {
        if (Array.isArray(cur)) {
          const idx = Number(seg);
          if (!/^\d+$/.test(seg) || idx >= cur.length) return { found: false };
          cur = cur[idx] as Json;
        } else if (isObject(cur) && Object.hasOwn(cur, seg)) cur = cur[seg] as Json;
        else return { found: false };
      }
      return { found: true, value: cur };
    };
    const parentOf = (p: string[]): { parent: Json; key: string } | undefined => {
      if (p.length === 0) return undefined;
      const r = get(p.slice(0, -1));
      if (!r.found || r.value === undefined) return undefined;
      return { parent: r.value, key: p[p.length - 1] ?? "" };
    };
    const remove = (p: string[]): string | undefined => {
      const pk = parentOf(p);
      if (!pk) return "path does not exist";
      if (Array.isArray(pk.parent)) {
        const idx = Number(pk.key);
        if (!/^\d+$/.test(pk.key) || idx >= pk.parent.length) return "index out of range";
        pk.parent.splice(idx, 1);
      } else if (isObject(pk.parent) && Object.hasOwn(pk.parent, pk.key)) delete pk.parent[pk.key];
      else return "path does not exist";
      return undefined;
    };
    const add = (p: string[], value: Json, replace: boolean): string | undefined => {
      if (p.length === 0) {
        root.v = value;
        return undefined;
      }
      const pk = parentOf(p);
      if (!pk) return "parent path does not exist";
      if (Array.isArray(pk.parent)) {
        const idx = pk.key === "-" ? pk.parent.length : Number(pk.key);
        if (pk.key !== "-" && !/^\d+$/.test(pk.key)) return `invalid array index ${JSON.stringify(pk.key)}`;
        if (replace) {
          if (idx >= pk.parent.length) return "index out of range";
          pk.parent[idx] = value;
        } else {
          if (idx > pk.parent.length) return "index out of range";
          pk.parent.splice(idx, 0, value);
        }
      } else if (isObject(pk.parent)) {
        if (replace && !Object.hasOwn(pk.parent, pk.key)) return "path does not exist";
        pk.parent[pk.key] = value;
      } else return "parent is not a container";
      return undefined;
    };
    let err: string | undefined;
    switch (op) {
      case "add":
        if (!("value" in raw))
          return { ok: false, malformed: true, message: `json patch operation ${i} needs "value"` };
        err = add(path, clone(raw.value as Json), false);
        break;
      case "replace":
        if (!("value" in raw))
          return { ok: false, malformed: true, message: `json patch operation ${i} needs "value"` };
        err = add(path, clone(raw.value as Json), true);
        break;
      case "remove":
        err = remove(path);
        break;
      case "move":
      case "copy": {
        if (typeof raw.from !== "string")
          return { ok: false, malformed: true, message: `json patch operation ${i} needs "from"` };
        const from = parsePointer(raw.from);
        if (typeof from === "string") return { ok: false, message: from };
        const src = get(from);
        if (!src.found) {
          err = `from path ${raw.from} does not exist`;
          break;
        }
        if (op === "move") err = remove(from);
        if (!err) err = add(path, clone(src.value as Json), false);
        break;
      }
      case "test": {
        const cur = get(path);
        if (!cur.found || !deepEqual(cur.value, raw.value)) err = "testing value failed";
        break;
      }
      default:
        return { ok: false, malformed: true, message: `json patch operation ${i}: unknown op ${JSON.stringify(op)}` };
    }
    if (err) return fail(err);
  }
  return { ok: true, value: root.v };
}

/** How a list field merges in a strategic merge patch. */
type ListStrategy = { mergeKey: string } | "mergePrimitives" | "replace";

const containerLists = new Set(["containers", "initContainers", "ephemeralContainers"]);

/**
 * The patchMergeKey/patchStrategy of the built-in kinds' list fields, looked up by field name
 * and the list holding the map it sits in (`ports` of a container merge by containerPort,
 * a Service's by port).
 */
export function listStrategy(field: string, parentList: string | undefined): ListStrategy {
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "env":
    case "volumes":
    case "imagePullSecrets":
    case "resourceClaims":
      return { mergeKey: "name" };
    case "ports":
      return { mergeKey: parentList !== undefined && containerLists.has(parentList) ? "containerPort" : "port" };
    case "volumeMounts":
      return { mergeKey: "mountPath" };
    case "volumeDevices":
      return { mergeKey: "devicePath" };
    case "ownerReferences":
      return { mergeKey: "uid" };
    case "conditions":
      return { mergeKey: "type" };
    case "hostAliases":
      return { mergeKey: "ip" };
    case "topologySpreadConstraints":
      return { mergeKey: "topologyKey" };
    case "finalizers":
      return "mergePrimitives";
    default:
      return "replace";
  }
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => !(isObject(x) && x.$patch !== undefined)).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith("$")) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

/**
 * Strategic merge patch of a built-in kind's object. Directives `$patch` (merge, replace, delete),
 * `$retainKeys`, `$deleteFromPrimitiveList/<field>` are applied; `$setElementOrder/<field>` is accepted
 * and otherwise ignored (order of merged lists follows the original, new items appended).
 */
export function strategicMergePatch(original: Json | undefined, patch: Json): PatchResult {
  if (!isObject(patch)) return { ok: false, malformed: true, message: "strategic merge patch must be a JSON object" };
  try {
    return { ok: true, value: smpMap(isObject(original) ? original : {}, patch, undefined) ?? {} };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

function smpMap(original: JsonObject, patch: JsonObject, parentList: string | undefined): JsonObject | undefined {
  const directive = patch.$patch;
  if (directive === "delete") return undefined;
  if (directive === "replace") return stripDirectives(patch) as JsonObject;
  if (directive !== undefined && directive !== "merge")
    throw new Error(`unknown patch directive ${JSON.stringify(directive)}`);
  let out: JsonObject = { ...original };
  const retain = patch.$retainKeys;
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys" || k.startsWith("$setElementOrder/")) continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v)) {
      out[k] = smpList(Array.isArray(cur) ? cur : [], v, k, parentList);
    } else if (isObject(v)) {
      const merged = smpMap(isObject(cur) ? cur : {}, v, parentList);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = v;
  }
  if (Array.isArray(retain)) {
    const keep = new Set(retain.filter((x): x is string => typeof x === "string"));
    out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
  }
  return out;
}

function smpList(original: Json[], patch: Json[], field: string, parentList: string | undefined): Json[] {
  const strategy = listStrategy(field, parentList);
  if (strategy === "replace") {
    return patch.filter((x) => !(isObject(x) && x.$patch !== undefined)).map(stripDirectives);
  }
  if (strategy === "mergePrimitives") {
    const out = [...original];
    for (const x of patch) if (!out.some((o) => deepEqual(o, x))) out.push(x);
    return out;
  }
  const key = strategy.mergeKey;
  if (patch.some((x) => isObject(x) && x.$patch === "replace")) {
    return patch.filter((x) => !(isObject(x) && x.$patch === "replace")).map(stripDirectives);
  }
  const out = original.map((x) => x);
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(item);
      continue;
    }
    const idx = out.findIndex((o) => isObject(o) && item[key] !== undefined && deepEqual(o[key], item[key]));
    if (item.$patch === "delete") {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = smpMap(out[idx] as JsonObject, item, field);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else out.push(stripDirectives(item));
  }
  return out;
}
