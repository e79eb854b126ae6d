/**
 * Plumbing every controller shares: one informer per resource for the whole process
 * (so pods are listed and watched once however many controllers look at them), and the
 * small context object controllers are built from.
 */
import { setMaxListeners } from "node:events";
import type { Logger } from "../../base/index.js";
import { type ApiClient, type DeleteOptions, isApiError, type KubeObject, type ResourceRef } from "../api/types.js";
import type { EventRecorder } from "./events.js";
import { Informer } from "./informer.js";

function refKey(ref: ResourceRef): string {
  return `${ref.group}/${ref.version}/${ref.resource}`;
}

/**
 * A set of all-namespace informers keyed by resource. Informers asked for after `start`
 * start at once; `waitForSync` waits for every informer created so far.
 */
export class SharedInformers {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #informers = new Map<string, Informer<KubeObject>>();
  readonly #stops = new Map<string, AbortController>();
  #signal: AbortSignal | undefined;

  constructor(client: ApiClient, log: Logger) {
    this.#client = client;
    this.#log = log;
  }

  /** The shared informer for `ref`; created on first use. The type parameter is the caller's view of the objects. */
  informer<T extends KubeObject>(ref: ResourceRef): Informer<T> {
    const key = refKey(ref);
    let inf = this.#informers.get(key);
    if (!inf) {
      inf = new Informer<KubeObject>({ client: this.#client, ref, log: this.#log });
      this.#informers.set(key, inf);
      if (this.#signal) this.#run(key, inf, this.#signal);
    }
    return inf as Informer<T>;
  }

  /** True when an informer for `ref` exists. */
  has(ref: ResourceRef): boolean {
    return this.#informers.has(refKey(ref));
  }

  /** Stops and forgets the informer for `ref` (a CRD went away). */
  drop(ref: ResourceRef): void {
    const key = refKey(ref);
    this.#stops.get(key)?.abort();
    this.#stops.delete(key);
    this.#informers.delete(key);
  }

  /** Starts every informer (and any created later) until `signal` aborts. */
  start(signal: AbortSignal): void {
    this.#signal = signal;
    for (const [key, inf] of this.#informers) this.#run(key, inf, signal);
  }

  #run(key: string, inf: Informer<KubeObject>, signal: AbortSignal): void {
    if (this.#stops.has(key)) return;
    const stop = new AbortController();
    this.#stops.set(key, stop);
    const both = AbortSignal.any([signal, stop.signal]);
    setMaxListeners(0, both);
    void inf.run(both);
  }

  /** Resolves when every informer created so far has synced. */
  async waitForSync(signal?: AbortSignal): Promise<void> {
    await Promise.all([...this.#informers.values()].map((i) => i.waitForSync(signal)));
  }

  /** Every informer's resource, for callers that walk all monitored kinds. */
  refs(): ResourceRef[] {
    return [...this.#informers.values()].map((i) => i.ref);
  }
}

/** What each controller is built from. */
export interface ControllerContext {
  readonly client: ApiClient;
  readonly informers: SharedInformers;
  readonly log: Logger;
  /** Makes an EventRecorder reporting as `component`. */
  readonly recorder: (component: string) => EventRecorder;
}

/** The namespace/name key of a namespaced object. */
export function nsKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * Deletes exactly `obj` of resource `ref` (a uid precondition spares a namesake created since).
 * Resolves when it is deleted, already gone (404) or replaced (409): nothing is left to delete in
 * each case. Other failures throw.
 */
export async function deleteExactly(
  client: ApiClient,
  target: { ref: ResourceRef; obj: KubeObject; propagationPolicy?: DeleteOptions["propagationPolicy"] },
): Promise<void> {
  const { ref, obj, propagationPolicy } = target;
  try {
    await client.delete(ref, obj.metadata.namespace, obj.metadata.name ?? "", {
      ...(propagationPolicy ? { propagationPolicy } : {}),
      preconditions: { uid: obj.metadata.uid },
    });
  } catch (err) {
    if (!isApiError(err, 404) && !isApiError(err, 409)) throw err;
  }
}
