/**
 * A list+watch mirror of one resource collection, so RBAC decisions and webhook matching need
 * not read the store on every request. Until the first list completes (hasSynced), callers
 * read through ApiClient instead; after a watch error it relists, keeping the last state meanwhile.
 */
import { Backoff, errorMessage, type Logger, silentLogger, sleep } from "../../base/index.js";
import type { ApiClient, KubeObject, ResourceRef } from "../api/types.js";

export interface WatchedCollectionOptions {
  client: ApiClient;
  ref: ResourceRef;
  log?: Logger;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;

/** Mirror of one collection; `start(signal)` runs it until the signal aborts. */
export class WatchedCollection {
  readonly #client: ApiClient;
  readonly #ref: ResourceRef;
  readonly #log: Logger;
  #objects = new Map<string, KubeObject>();
  #synced = false;
  #started = false;
  #waiters: (() => void)[] = [];

  constructor(opts: WatchedCollectionOptions) {
    this.#client = opts.client;
    this.#ref = opts.ref;
    this.#log = (opts.log ?? silentLogger).child(opts.ref.resource);
  }

  /** True once the initial list has been loaded. */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Resolves after the next (re)list or watch event has been applied. */
  nextChange(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Resolves once the initial list has been loaded. */
  async whenSynced(): Promise<void> {
    while (!this.#synced) await this.nextChange();
  }

  #changed(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Starts listing and watching in the background; a second call does nothing. */
  start(signal: AbortSignal): void {
    if (this.#started) return;
    this.#started = true;
    void this.#run(signal);
  }

  /** Every object, sorted by namespace then name (the order the store lists them). */
  items(namespace?: string): KubeObject[] {
    const out = [...this.#objects.values()].filter(
      (o) => namespace === undefined || o.metadata.namespace === namespace,
    );
    return out.sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#objects.get(`${namespace ?? ""}/${name}`);
  }

  async #run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(200, 10_000);
    while (!signal.aborted) {
      try {
        const list = await this.#client.list(this.#ref);
        this.#objects = new Map(list.items.map((o) => [keyOf(o), o]));
        this.#synced = true;
        this.#changed();
        backoff.reset();
        for await (const ev of this.#client.watch(
          this.#ref,
          { resourceVersion: list.resourceVersion, allowWatchBookmarks: true },
          signal,
        )) {
          if (ev.type === "ERROR") break;
          if (ev.type === "BOOKMARK") continue;
          if (ev.type === "DELETED") this.#objects.delete(keyOf(ev.object));
          else this.#objects.set(keyOf(ev.object), ev.object);
          this.#changed();
        }
        // The watch ended (expiry, 410, server closing): relist, but never in a tight loop.
        if (!signal.aborted) await sleep(backoff.next(), signal).catch(() => {});
      } catch (err) {
        if (signal.aborted) return;
        this.#log.warn("list/watch failed; retrying", { error: errorMessage(err) });
        try {
          await sleep(backoff.next(), signal);
        } catch {
          return;
        }
      }
    }
  }
}
