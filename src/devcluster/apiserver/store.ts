/**
 * The object store: objects by collection ("group/resource") and key ("namespace/name"), one
 * global resourceVersion counter, a bounded history of changes, and watch fan-out through
 * per-watcher bounded queues. It knows nothing of validation or admission (api.ts does that);
 * it only applies writes atomically, with optional resourceVersion preconditions, and makes them
 * durable through the Wal before they are acknowledged and delivered to watchers.
 */
import type { Logger } from "../../base/index.js";
import type { KubeObject, WatchEvent } from "../api/types.js";
import { expired, internalError } from "./errors.js";
import type { Wal } from "./wal.js";

/** A stored object: frozen by convention (never mutated after commit) with its JSON text. */
export interface Entry {
  readonly obj: KubeObject;
  readonly json: string;
  readonly rv: number;
}

/** One change, as kept in the history window. */
export interface Change {
  readonly rv: number;
  readonly coll: string;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly entry: Entry;
  readonly prev?: Entry;
}

/** Decides whether (and as what) a watcher sees objects; `matches` is applied to the object. */
export interface WatchFilter {
  coll: string;
  namespace?: string;
  matches: (obj: KubeObject) => boolean;
  /** Kind and apiVersion of the resource, for BOOKMARK objects (clients decode them as this kind). */
  kind: string;
  apiVersion: string;
  /** Set apiVersion on delivered objects (custom resources are stored once, served at several versions). */
  rewriteApiVersion?: boolean;
}

export interface StoreOptions {
  log: Logger;
  /** Changes kept for watches from an older resourceVersion; default 10,000. */
  historyWindow?: number;
  /** Events a watcher may have queued before it is closed with 410; default 10,000. */
  watcherQueueLimit?: number;
  /** How often a watcher that asked for bookmarks gets one; default 30 s. */
  bookmarkIntervalMs?: number;
}

export const nsKey = (namespace: string | undefined, name: string): string => `${namespace ?? ""}/${name}`;

/** Thrown by `commit` when a precondition fails; api.ts turns it into the right Status. */
export class PreconditionFailed extends Error {
  constructor(readonly why: "exists" | "missing" | "stale") {
    super(why);
  }
}

class Collection {
  readonly items = new Map<string, Entry>();
  #sorted: string[] | undefined;
  sortedKeys(): string[] {
    if (!this.#sorted) this.#sorted = [...this.items.keys()].sort();
    return this.#sorted;
  }
  set(k: string, e: Entry): void {
    if (!this.items.has(k)) this.#sorted = undefined;
    this.items.set(k, e);
  }
  delete(k: string): void {
    if (this.items.delete(k)) this.#sorted = undefined;
  }
}

/** Sets metadata.resourceVersion, placing a new key after uid as Kubernetes prints it. */
function setResourceVersion(obj: KubeObject, rv: string): void {
  const m = obj.metadata;
  if ("resourceVersion" in m) {
    m.resourceVersion = rv;
    return;
  }
  const out: Record<string, unknown> = {};
  let placed = false;
  for (const [k, v] of Object.entries(m)) {
    out[k] = v;
    if (k === "uid") {
      out.resourceVersion = rv;
      placed = true;
    }
  }
  if (!placed) out.resourceVersion = rv;
  obj.metadata = out as KubeObject["metadata"];
}

export function entryOf(obj: KubeObject): Entry {
  return { obj, json: JSON.stringify(obj), rv: Number(obj.metadata.resourceVersion ?? "0") };
}

/** The store. Constructed empty; `load` fills it from a Wal (or not, for memory only). */
export class Store {
  readonly #opts: StoreOptions;
  readonly #colls = new Map<string, Collection>();
  #rv = 0;
  /** Highest resourceVersion handed to watchers and in the history. */
  #dispatchedRv = 0;
  /** Watches from a resourceVersion below this cannot be served (events were dropped). */
  #compactedRv = 0;
  #history: Change[] = [];
  #historyHead = 0;
  readonly #watchers = new Map<string, Set<Watcher>>();
  #wal: Wal | undefined;
  /** Changes committed in memory, waiting for durability before dispatch, in rv order. */
  #undispatched: { change: Change; durable: boolean }[] = [];

  constructor(opts: StoreOptions) {
    this.#opts = opts;
  }

  get log(): Logger {
    return this.#opts.log;
  }

  /** Fills the store from loaded state; the resourceVersion counter continues after it. */
  loadFrom(state: { rv: number; objects: Map<string, Map<string, KubeObject>> }, wal: Wal | undefined): void {
    this.#wal = wal;
    for (const [coll, m] of state.objects) {
      const c = this.#coll(coll);
      for (const [k, o] of m) c.set(k, entryOf(o));
    }
    this.#rv = state.rv;
    this.#dispatchedRv = state.rv;
    this.#compactedRv = state.rv;
  }

  /** The newest resourceVersion committed (in memory). */
  get resourceVersion(): number {
    return this.#rv;
  }

  /** Changes older than this resourceVersion are gone from the history. */
  get compactedResourceVersion(): number {
    return this.#compactedRv;
  }

  #coll(name: string): Collection {
    let c = this.#colls.get(name);
    if (!c) {
      c = new Collection();
      this.#colls.set(name, c);
    }
    return c;
  }

  get(coll: string, namespace: string | undefined, name: string): Entry | undefined {
    return this.#colls.get(coll)?.items.get(nsKey(namespace, name));
  }

  /** Objects of a collection in key order (namespace, then name), from `after` (exclusive) on. */
  *scan(coll: string, namespace?: string, after?: string): Generator<[string, Entry]> {
    const c = this.#colls.get(coll);
    if (!c) return;
    const keys = c.sortedKeys();
    let i = 0;
    const start = after ?? (namespace !== undefined ? `${namespace}/` : undefined);
    if (start !== undefined) {
      let lo = 0;
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((keys[mid] ?? "") <= start) lo = mid + 1;
        else hi = mid;
      }
      i = lo;
      if (after === undefined && namespace !== undefined && keys[i - 1] === start) i--;
    }
    const prefix = namespace !== undefined ? `${namespace}/` : undefined;
    for (; i < keys.length; i++) {
      const k = keys[i] ?? "";
      if (prefix !== undefined && !k.startsWith(prefix)) return;
      const e = c.items.get(k);
      if (e) yield [k, e];
    }
  }

  /** Number of objects in a collection (for namespaces: used to decide emptiness). */
  count(coll: string): number {
    return this.#colls.get(coll)?.items.size ?? 0;
  }

  /** Every collection name with objects. */
  collections(): string[] {
    return [...this.#colls.keys()];
  }

  /**
   * Writes `obj` (or deletes when `obj` is undefined) under (coll, namespace, name) atomically:
   * `expect` is "absent", "present", or a resourceVersion that must be current. Assigns the next
   * resourceVersion and returns the stored entry plus a promise that settles once it is durable.
   */
  commit(
    coll: string,
    namespace: string | undefined,
    name: string,
    obj: KubeObject | undefined,
    expect: "absent" | "present" | string | undefined,
  ): { entry: Entry; durable: Promise<void> } {
    const c = this.#coll(coll);
    const key = nsKey(namespace, name);
    const prev = c.items.get(key);
    if (expect === "absent" && prev) throw new PreconditionFailed("exists");
    if (expect !== undefined && expect !== "absent" && !prev) throw new PreconditionFailed("missing");
    if (
      expect !== undefined &&
      expect !== "absent" &&
      expect !== "present" &&
      prev &&
      prev.obj.metadata.resourceVersion !== expect
    ) {
      throw new PreconditionFailed("stale");
    }
    if (!obj && !prev) throw new PreconditionFailed("missing");
    const rv = ++this.#rv;
    let entry: Entry;
    let type: Change["type"];
    if (obj) {
      setResourceVersion(obj, String(rv));
      entry = { obj, json: JSON.stringify(obj), rv };
      c.set(key, entry);
      type = prev ? "MODIFIED" : "ADDED";
    } else {
      // A deletion event carries the last state with the deletion's resourceVersion, as Kubernetes sends it.
      const last = JSON.parse(prev?.json ?? "{}") as KubeObject;
      last.metadata.resourceVersion = String(rv);
      entry = { obj: last, json: JSON.stringify(last), rv };
      c.delete(key);
      type = "DELETED";
    }
    const change: Change = prev ? { rv, coll, type, entry, prev } : { rv, coll, type, entry };
    if (!this.#wal) {
      this.#dispatch(change);
      return { entry, durable: Promise.resolve() };
    }
    const slot = { change, durable: false };
    this.#undispatched.push(slot);
    const durable = this.#wal.append(obj ? { rv, r: coll, k: key, o: obj } : { rv, r: coll, k: key }).then(
      () => {
        slot.durable = true;
        this.#drain();
      },
      (err: unknown) => {
        // The write stays in memory (later writes may build on it) and watchers still hear of it;
        // the caller learns that it may not survive a restart.
        slot.durable = true;
        this.#drain();
        throw internalError(`the object log could not be written: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
    return { entry, durable };
  }

  #drain(): void {
    while (this.#undispatched.length > 0 && this.#undispatched[0]?.durable) {
      const s = this.#undispatched.shift();
      if (s) this.#dispatch(s.change);
    }
  }

  #dispatch(change: Change): void {
    this.#dispatchedRv = change.rv;
    this.#history.push(change);
    const window = this.#opts.historyWindow ?? 10_000;
    if (this.#history.length - this.#historyHead > window) {
      const dropped = this.#history[this.#historyHead];
      this.#historyHead++;
      if (dropped) this.#compactedRv = dropped.rv;
      if (this.#historyHead > 1024 && this.#historyHead * 2 > this.#history.length) {
        this.#history = this.#history.slice(this.#historyHead);
        this.#historyHead = 0;
      }
    }
    const ws = this.#watchers.get(change.coll);
    if (ws) for (const w of ws) w.offer(change);
  }

  /** Snapshot source for the Wal: every object with its JSON text, and the rv it reflects. */
  snapshot(): { rv: number; entries: Iterable<{ r: string; k: string; json: string }> } {
    const colls = [...this.#colls.entries()].map(([r, c]) => [r, [...c.items.entries()]] as const);
    return {
      rv: this.#rv,
      entries: (function* () {
        for (const [r, items] of colls) for (const [k, e] of items) yield { r, k, json: e.json };
      })(),
    };
  }

  /**
   * Starts a watch. `fromRv` undefined: send the current state as ADDED first; a number: replay
   * what changed after it from the history (or one 410 ERROR when it is older than the window).
   */
  watch(
    filter: WatchFilter,
    fromRv: number | undefined,
    opts: { bookmarks: boolean; signal: AbortSignal; initialEventsEnd?: boolean },
  ): AsyncIterable<WatchEvent> {
    const w = new Watcher(filter, this, opts.bookmarks, this.#opts.watcherQueueLimit ?? 10_000);
    if (fromRv === undefined) {
      for (const [, e] of this.scan(filter.coll, filter.namespace)) {
        if (filter.matches(e.obj)) w.push("ADDED", e.json, undefined, true);
      }
      w.fromRv = this.#rv;
      // Watch-list (sendInitialEvents): a bookmark annotated k8s.io/initial-events-end closes the initial state.
      if (opts.initialEventsEnd) w.pushInitialEventsEnd(this.#rv);
    } else if (fromRv < this.#compactedRv) {
      w.fail(expired(`too old resource version: ${fromRv} (${this.#compactedRv + 1})`));
      return w.iterable(opts.signal);
    } else {
      w.fromRv = fromRv;
      for (let i = this.#historyHead; i < this.#history.length; i++) {
        const ch = this.#history[i];
        if (ch && ch.coll === filter.coll) w.offer(ch);
      }
    }
    let set = this.#watchers.get(filter.coll);
    if (!set) {
      set = new Set();
      this.#watchers.set(filter.coll, set);
    }
    set.add(w);
    w.onClose = () => set.delete(w);
    if (opts.bookmarks) w.startBookmarks(this.#opts.bookmarkIntervalMs ?? 30_000);
    return w.iterable(opts.signal);
  }

  /** The resourceVersion a bookmark reports now. */
  get dispatchedResourceVersion(): number {
    return this.#dispatchedRv;
  }

  /** Number of open watchers (diagnostics, tests). */
  watcherCount(): number {
    let n = 0;
    for (const s of this.#watchers.values()) n += s.size;
    return n;
  }

  /** Ends every watch (their iterators finish). */
  closeWatchers(): void {
    for (const s of this.#watchers.values()) for (const w of [...s]) w.close();
  }
}

type Queued = {
  type: WatchEvent["type"];
  json?: string;
  rv?: number;
  error?: WatchEvent["object"];
  initialEnd?: boolean;
};

/** One watch: filters changes into a bounded queue that its consumer drains. */
class Watcher {
  fromRv = 0;
  onClose: (() => void) | undefined;
  readonly #filter: WatchFilter;
  readonly #store: Store;
  readonly #limit: number;
  #queue: Queued[] = [];
  #head = 0;
  #wake: (() => void) | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(filter: WatchFilter, store: Store, bookmarks: boolean, limit: number) {
    this.#filter = filter;
    this.#store = store;
    this.#limit = limit;
    void bookmarks;
  }

  offer(ch: Change): void {
    if (this.#closed || ch.rv <= this.fromRv) return;
    const f = this.#filter;
    const inNs = (o: KubeObject) => f.namespace === undefined || o.metadata.namespace === f.namespace;
    const now = inNs(ch.entry.obj) && f.matches(ch.entry.obj);
    if (ch.type === "DELETED") {
      if (now) this.push("DELETED", ch.entry.json);
      return;
    }
    const before = ch.prev !== undefined && inNs(ch.prev.obj) && f.matches(ch.prev.obj);
    if (now) this.push(before ? "MODIFIED" : "ADDED", ch.entry.json);
    else if (before && ch.prev) this.push("DELETED", ch.prev.json, ch.rv);
  }

  pushInitialEventsEnd(rv: number): void {
    this.#queue.push({ type: "BOOKMARK", rv, initialEnd: true });
  }

  /** Queues an event; `initial` (the synthetic ADDED of a watch from "0") is exempt from the limit. */
  push(type: WatchEvent["type"], json: string, rv?: number, initial = false): void {
    if (this.#closed) return;
    if (!initial && this.#queue.length - this.#head >= this.#limit) {
      this.#store.log.warn("closing a watch that fell too far behind", {
        collection: this.#filter.coll,
        queued: this.#limit,
      });
      this.fail(
        expired(
          `the watch fell more than ${this.#limit} events behind; list again and watch from the new resourceVersion`,
        ),
      );
      return;
    }
    this.#queue.push(rv === undefined ? { type, json } : { type, json, rv });
    this.#wake?.();
  }

  /** Ends the watch with one ERROR event carrying the given Status. */
  fail(err: { status: WatchEvent["object"] | object }): void {
    if (this.#closed) return;
    this.#queue = [{ type: "ERROR", error: err.status as WatchEvent["object"] }];
    this.#head = 0;
    this.#finish();
  }

  close(): void {
    if (this.#closed) return;
    this.#finish();
  }

  #finish(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.onClose?.();
    this.#wake?.();
  }

  startBookmarks(intervalMs: number): void {
    this.#timer = setInterval(() => {
      if (this.#closed) return;
      // A bookmark only says "you are up to date to here"; skip it while events are queued.
      if (this.#queue.length - this.#head > 0) return;
      this.#queue.push({ type: "BOOKMARK", rv: Math.max(this.fromRv, this.#store.dispatchedResourceVersion) });
      this.#wake?.();
    }, intervalMs);
    // Kept referenced: a client waiting for its next bookmark is work in progress; close() clears it.
    // (unref here let the process exit under a waiting watcher.)
  }

  #toEvent(q: Queued): WatchEvent {
    if (q.type === "ERROR") return { type: "ERROR", object: q.error as WatchEvent["object"] };
    const f = this.#filter;
    if (q.type === "BOOKMARK") {
      return {
        type: "BOOKMARK",
        object: {
          kind: f.kind,
          apiVersion: f.apiVersion,
          metadata: q.initialEnd
            ? { resourceVersion: String(q.rv ?? 0), annotations: { "k8s.io/initial-events-end": "true" } }
            : { resourceVersion: String(q.rv ?? 0) },
        },
      };
    }
    const obj = JSON.parse(q.json ?? "{}") as WatchEvent["object"];
    if (q.rv !== undefined) obj.metadata.resourceVersion = String(q.rv);
    if (f.rewriteApiVersion) obj.apiVersion = f.apiVersion;
    return { type: q.type, object: obj };
  }

  iterable(signal: AbortSignal): AsyncIterable<WatchEvent> {
    const onAbort = () => this.close();
    if (signal.aborted) this.close();
    else signal.addEventListener("abort", onAbort, { once: true });
    const self = this;
    return {
      [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
        return {
          async next(): Promise<IteratorResult<WatchEvent>> {
            for (;;) {
              if (self.#head < self.#queue.length) {
                const q = self.#queue[self.#head++] as Queued;
                if (self.#head > 256 && self.#head * 2 > self.#queue.length) {
                  self.#queue = self.#queue.slice(self.#head);
                  self.#head = 0;
                }
                if (q.type === "BOOKMARK" && !signal.aborted) return { done: false, value: self.#toEvent(q) };
                if (q.type !== "BOOKMARK") return { done: false, value: self.#toEvent(q) };
                continue;
              }
              if (self.#closed) {
                signal.removeEventListener("abort", onAbort);
                return { done: true, value: undefined };
              }
              await new Promise<void>((resolve) => {
                self.#wake = resolve;
              });
              self.#wake = undefined;
            }
          },
          async return(): Promise<IteratorResult<WatchEvent>> {
            self.close();
            signal.removeEventListener("abort", onAbort);
            return { done: true, value: undefined };
          },
        };
      },
    };
  }
}
