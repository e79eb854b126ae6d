/**
 * A cached, watched view of one kind in one Kubernetes cluster: list, then watch from the list's
 * resourceVersion; relist on 410 Gone; any other failure retries with back-off, keeping the cache
 * (a remote API server that stops answering must not make its objects vanish).
 */
import { Backoff, type Logger, errorMessage, sleep as realSleep } from "../base/index.js";
import { type ListWatcher, KubeApiError } from "./client.js";
import { type KubeObject, type ResourceType, labelsMatch, objectKey } from "./objects.js";
import { SyncGate } from "./sync-gate.js";

export type InformerEvent<T> =
  | { readonly type: "added"; readonly object: T }
  | { readonly type: "updated"; readonly object: T; readonly previous: T }
  | { readonly type: "deleted"; readonly object: T };

/** Cached, read-only view of one kind. Never calls the API server. */
export interface Reader<T extends KubeObject> {
  get(name: string, namespace?: string): T | undefined;
  /** A fresh array; the objects in it are shared and must not be mutated. */
  list(namespace?: string, selector?: Readonly<Record<string, string>>): T[];
}

export interface InformerOptions {
  readonly client: ListWatcher;
  readonly type: ResourceType;
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly log: Logger;
  /** Injected so tests drive retries without real time. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly backoff?: Backoff;
}

/** One informer. Handlers run synchronously on each change and must only record or enqueue work. */
export class Informer<T extends KubeObject> implements Reader<T> {
  readonly #opts: InformerOptions;
  readonly #cache = new Map<string, T>();
  readonly #handlers = new Set<(e: InformerEvent<T>) => void>();
  readonly #synced = new SyncGate();
  readonly #backoff: Backoff;
  #lastError: string | undefined;
  #connected = false;

  constructor(opts: InformerOptions) {
    this.#opts = opts;
    this.#backoff = opts.backoff ?? new Backoff(500, 30_000);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string, selector?: Readonly<Record<string, string>>): T[] {
    const out: T[] = [];
    for (const obj of this.#cache.values()) {
      if (namespace !== undefined && obj.metadata.namespace !== namespace) continue;
      if (selector !== undefined && !labelsMatch(obj.metadata.labels, selector)) continue;
      out.push(obj);
    }
    return out;
  }

  /** Adds a handler; returns its remover. A handler added after sync first gets every cached object as "added". */
  subscribe(handler: (e: InformerEvent<T>) => void): () => void {
    this.#handlers.add(handler);
    if (this.#synced.isOpen()) for (const object of this.#cache.values()) handler({ type: "added", object });
    return () => this.#handlers.delete(handler);
  }

  /** True once the first list has been delivered to the handlers. */
  hasSynced(): boolean {
    return this.#synced.isOpen();
  }

  /** Resolves once synced, or when `signal` aborts (then hasSynced() tells which). */
  waitForSync(signal: AbortSignal): Promise<void> {
    return this.#synced.wait(signal);
  }

  /** The last list/watch failure while it persists (undefined once a list or watch succeeds again). */
  lastError(): string | undefined {
    return this.#lastError;
  }

  /** True while a watch stream is open. */
  connected(): boolean {
    return this.#connected;
  }

  #emit(e: InformerEvent<T>): void {
    for (const h of this.#handlers) {
      try {
        h(e);
      } catch (err) {
        this.#opts.log.error("informer handler threw; continuing", { resource: this.#opts.type.plural, err });
      }
    }
  }

  #apply(type: "ADDED" | "MODIFIED" | "DELETED", obj: T): void {
    const key = objectKey(obj);
    const prev = this.#cache.get(key);
    if (type === "DELETED") {
      if (prev === undefined) return;
      this.#cache.delete(key);
      this.#emit({ type: "deleted", object: obj });
      return;
    }
    this.#cache.set(key, obj);
    if (prev === undefined) this.#emit({ type: "added", object: obj });
    else if (
      prev.metadata.resourceVersion !== obj.metadata.resourceVersion ||
      prev.metadata.resourceVersion === undefined
    )
      this.#emit({ type: "updated", object: obj, previous: prev });
  }

  /** Replaces the cache with a fresh list, emitting only the differences. */
  async #relist(signal: AbortSignal): Promise<string> {
    const { client, type, namespace, labelSelector } = this.#opts;
    const res = await client.list(type, { namespace, labelSelector }, signal);
    const seen = new Set<string>();
    for (const obj of res.items) {
      seen.add(objectKey(obj));
      this.#apply("ADDED", obj as T);
    }
    for (const [key, obj] of [...this.#cache]) if (!seen.has(key)) this.#apply("DELETED", obj);
    this.#synced.open();
    return res.resourceVersion;
  }

  /** Runs list and watch until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { client, type, namespace, labelSelector, log } = this.#opts;
    const sleep = this.#opts.sleep ?? realSleep;
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        resourceVersion ??= await this.#relist(signal);
        this.#lastError = undefined;
        const stream = client.watch(type, { namespace, labelSelector, resourceVersion }, signal);
        this.#connected = true;
        const openedAt = Date.now();
        let events = 0;
        for await (const ev of stream) {
          events++;
          this.#lastError = undefined;
          this.#backoff.reset();
          const rv = ev.object.metadata?.resourceVersion;
          if (rv) resourceVersion = rv;
          if (ev.type !== "BOOKMARK") this.#apply(ev.type, ev.object as T);
        }
        this.#connected = false;
        // A server that ends every watch at once must not turn this loop into a busy one.
        if (events === 0 && Date.now() - openedAt < 1000) await sleep(this.#backoff.next(), signal);
      } catch (err) {
        this.#connected = false;
        if (signal.aborted) return;
        if (err instanceof KubeApiError && err.status === 410) {
          // Our resourceVersion left the server's window: list again, emitting only differences.
          resourceVersion = undefined;
          continue;
        }
        this.#lastError = errorMessage(err);
        const wait = this.#backoff.next();
        log.warn("list/watch failed; retrying", { resource: type.plural, retryInMs: wait, err: this.#lastError });
        try {
          await sleep(wait, signal);
        } catch {
          return;
        }
      }
    }
  }
}
