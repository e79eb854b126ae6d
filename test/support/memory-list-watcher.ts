/**
 * An in-memory ListWatcher for unit tests of informer consumers: objects are put and removed
 * by the test, and every open watch receives the change in order.
 */
import type { KubeObject, ListResult, ListWatcher, ResourceType, WatchEvent } from "../../src/kube/index.js";

export class MemoryListWatcher implements ListWatcher {
  readonly #objects = new Map<string, Map<string, KubeObject>>();
  readonly #watches = new Set<{ plural: string; push: (e: WatchEvent) => void }>();
  #rv = 1;

  put(plural: string, obj: KubeObject): void {
    const coll = this.#coll(plural);
    const key = `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
    const type = coll.has(key) ? "MODIFIED" : "ADDED";
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.#rv) } };
    coll.set(key, stored);
    for (const w of this.#watches) if (w.plural === plural) w.push({ type, object: stored });
  }

  remove(plural: string, namespace: string | undefined, name: string): void {
    const coll = this.#coll(plural);
    const key = `${namespace ?? ""}/${name}`;
    const prev = coll.get(key);
    if (prev === undefined) return;
    coll.delete(key);
    const object = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(++this.#rv) } };
    for (const w of this.#watches) if (w.plural === plural) w.push({ type: "DELETED", object });
  }

  #coll(plural: string): Map<string, KubeObject> {
    let c = this.#objects.get(plural);
    if (c === undefined) {
      c = new Map();
      this.#objects.set(plural, c);
    }
    return c;
  }

  async list(type: ResourceType): Promise<ListResult> {
    return { items: [...this.#coll(type.plural).values()], resourceVersion: String(this.#rv) };
  }

  async *watch(type: ResourceType, _q: unknown, signal: AbortSignal): AsyncIterable<WatchEvent> {
    const queue: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    const w = {
      plural: type.plural,
      push: (e: WatchEvent) => {
        queue.push(e);
        wake?.();
      },
    };
    this.#watches.add(w);
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        const e = queue.shift();
        if (e !== undefined) {
          yield e;
          continue;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      this.#watches.delete(w);
      signal.removeEventListener("abort", onAbort);
    }
  }
}
