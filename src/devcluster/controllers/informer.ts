/**
 * A small shared informer over ApiClient: list, then watch from the list's resourceVersion,
 * relisting when the watch expires (410 / ERROR) or ends. It keeps a cache keyed
 * `namespace/name` (or `name` for cluster-scoped objects) and tells handlers about every
 * change. Handlers must only enqueue keys: they run synchronously inside the informer.
 */
import type { Logger } from "../../base/index.js";
import { Backoff, errorMessage, silentLogger, sleep } from "../../base/index.js";
import type { ApiClient, KubeObject, ResourceRef } from "../api/types.js";

/** Cache key of an object: `namespace/name`, or `name` when it has no namespace. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  const name = obj.metadata.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

/** Splits a key made by objectKey; namespace is "" for cluster-scoped objects. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: "", name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export interface InformerHandler<T extends KubeObject> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  /** Called with the object's final state (as the DELETED event or a relist's absence reports it). */
  delete?(obj: T): void;
}

export interface InformerOptions {
  readonly client: ApiClient;
  readonly ref: ResourceRef;
  /** Watch one namespace only; default all. */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  readonly log?: Logger;
  /** Page size of the initial list; default 500. */
  readonly pageSize?: number;
}

/**
 * One resource's informer. `run(signal)` does the list/watch until the signal aborts;
 * `hasSynced()` turns true once the first list has been delivered to the handlers.
 */
export class Informer<T extends KubeObject = KubeObject> {
  readonly ref: ResourceRef;
  readonly #opts: InformerOptions;
  readonly #log: Logger;
  readonly #cache = new Map<string, T>();
  readonly #handlers: InformerHandler<T>[] = [];
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  #resourceVersion = "";

  constructor(opts: InformerOptions) {
    this.#opts = opts;
    this.ref = opts.ref;
    this.#log = (opts.log ?? silentLogger).child(`informer/${opts.ref.resource}`);
  }

  /** Adds a handler; one added after sync is replayed the current cache as `add`s. */
  addHandler(h: InformerHandler<T>): void {
    this.#handlers.push(h);
    if (this.#synced && h.add) for (const obj of this.#cache.values()) h.add(obj);
  }

  /** True once the initial list has been processed. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves once synced, or rejects when `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal?.reason ?? new Error("aborted"));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#syncWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /** The cached object, or undefined. Never mutate what the cache returns. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.#cache.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.#cache.get(key);
  }

  /** Cached objects, optionally of one namespace. */
  list(namespace?: string): T[] {
    const out: T[] = [];
    for (const obj of this.#cache.values()) {
      if (namespace === undefined || obj.metadata.namespace === namespace) out.push(obj);
    }
    return out;
  }

  /** The resourceVersion the cache reflects (from the last list, watch event or bookmark). */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Lists and watches until `signal` aborts. Failures back off and relist; never rejects except on abort. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(100, 5_000);
    while (!signal.aborted) {
      try {
        await this.#listAndReplace(signal);
        backoff.reset();
        if (signal.aborted) break;
        await this.#watch(signal);
      } catch (err) {
        if (signal.aborted) break;
        const ms = backoff.next();
        this.#log.warn("list/watch failed; retrying", { error: errorMessage(err), retryMs: ms });
        try {
          await sleep(ms, signal);
        } catch {
          break;
        }
      }
    }
  }

  async #listAndReplace(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.#opts.client.list(this.ref, {
        namespace: this.#opts.namespace,
        labelSelector: this.#opts.labelSelector,
        fieldSelector: this.#opts.fieldSelector,
        limit: this.#opts.pageSize ?? 500,
        continue: cont,
      });
      if (signal.aborted) return;
      for (const item of page.items) items.push(this.#withKind(item));
      cont = page.continue || undefined;
      rv = page.resourceVersion;
    } while (cont);
    const seen = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      this.#apply(key, obj);
    }
    for (const [key, old] of [...this.#cache]) {
      if (seen.has(key)) continue;
      this.#cache.delete(key);
      for (const h of this.#handlers) h.delete?.(old);
    }
    this.#resourceVersion = rv;
    if (!this.#synced) {
      this.#synced = true;
      const waiters = this.#syncWaiters;
      this.#syncWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** The informer's type parameter is the caller's promise about what the resource holds. */
  #withKind(obj: KubeObject): T {
    return obj as T;
  }

  #apply(key: string, obj: T): void {
    const old = this.#cache.get(key);
    this.#cache.set(key, obj);
    if (old === undefined) {
      for (const h of this.#handlers) h.add?.(obj);
    } else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) {
      for (const h of this.#handlers) h.update?.(old, obj);
    }
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const stream = this.#opts.client.watch(
      this.ref,
      {
        namespace: this.#opts.namespace,
        labelSelector: this.#opts.labelSelector,
        fieldSelector: this.#opts.fieldSelector,
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
      },
      signal,
    );
    for await (const ev of stream) {
      if (signal.aborted) return;
      const obj = ev.object;
      switch (ev.type) {
        case "ADDED":
        case "MODIFIED": {
          const typed = this.#withKind(obj);
          this.#apply(objectKey(typed), typed);
          break;
        }
        case "DELETED": {
          const key = objectKey(obj);
          this.#cache.delete(key);
          const last = this.#withKind(obj);
          for (const h of this.#handlers) h.delete?.(last);
          break;
        }
        case "BOOKMARK":
          break;
        case "ERROR":
          // Usually 410 Gone: our resourceVersion left the history window; relist.
          this.#log.debug("watch ended with an error; relisting", { status: obj });
          return;
      }
      if (obj.metadata?.resourceVersion) this.#resourceVersion = obj.metadata.resourceVersion;
    }
  }
}
