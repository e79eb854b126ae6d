/**
 * Test-only helpers for this folder's tests: a small in-memory ApiClient (get/list/create/
 * update/delete; no admission, no watch) standing in until tests can run on the real
 * API engine, plus object builders. Not for production use.
 */
import { randomUUID } from "node:crypto";
import {
  type ApiClient,
  ApiError,
  type KubeObject,
  type ListOptions,
  type ObjectList,
  type ResourceRef,
  type WatchEvent,
} from "../api/types.js";

function notFound(ref: ResourceRef, name: string): ApiError {
  const qualified = ref.group ? `${ref.resource}.${ref.group}` : ref.resource;
  return new ApiError({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: `${qualified} "${name}" not found`,
    reason: "NotFound",
    details: { name, ...(ref.group ? { group: ref.group } : {}), kind: ref.resource },
    code: 404,
  });
}

/** An in-memory ApiClient for unit tests of auth; objects get a uid and resourceVersion on create. */
export class MemoryApi implements ApiClient {
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  #rv = 0;

  #coll(ref: ResourceRef): Map<string, KubeObject> {
    const k = `${ref.group}/${ref.resource}`;
    let c = this.#objects.get(k);
    if (!c) {
      c = new Map();
      this.#objects.set(k, c);
    }
    return c;
  }

  async get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObject> {
    const o = this.#coll(ref).get(`${namespace ?? ""}/${name}`);
    if (!o) throw notFound(ref, name);
    return structuredClone(o);
  }

  async list(ref: ResourceRef, opts: ListOptions = {}): Promise<ObjectList> {
    const items = [...this.#coll(ref).values()]
      .filter((o) => !opts.namespace || o.metadata.namespace === opts.namespace)
      .sort((a, b) => (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""))
      .map((o) => structuredClone(o));
    return { items, resourceVersion: String(this.#rv) };
  }

  watch(): AsyncIterable<WatchEvent> {
    throw new Error("MemoryApi does not watch");
  }

  async create(ref: ResourceRef, obj: KubeObject): Promise<KubeObject> {
    const key = `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
    const stored = structuredClone(obj);
    stored.metadata.uid = randomUUID();
    stored.metadata.resourceVersion = String(++this.#rv);
    this.#coll(ref).set(key, stored);
    return structuredClone(stored);
  }

  async update(ref: ResourceRef, obj: KubeObject): Promise<KubeObject> {
    const key = `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
    if (!this.#coll(ref).has(key)) throw notFound(ref, obj.metadata.name ?? "");
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.#rv);
    this.#coll(ref).set(key, stored);
    return structuredClone(stored);
  }

  async patch(): Promise<KubeObject> {
    throw new Error("MemoryApi does not patch");
  }

  async delete(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KubeObject> {
    const key = `${namespace ?? ""}/${name}`;
    const o = this.#coll(ref).get(key);
    if (!o) throw notFound(ref, name);
    this.#coll(ref).delete(key);
    return o;
  }
}

/** A namespaced object skeleton. */
export function obj(
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  name: string,
  rest = {},
): KubeObject {
  return { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) }, ...rest };
}
