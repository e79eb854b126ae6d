/**
 * The namespace lifecycle controller: a namespace being deleted (deletionTimestamp set) is
 * drained of every namespaced object, custom resources included; once nothing is left, the
 * `kubernetes` finalizer is removed through `namespaces/<name>/finalize` and the API server
 * lets the namespace go.
 */
import type { Logger } from "../../base/index.js";
import { errorMessage } from "../../base/index.js";
import { type ApiClient, isApiError, type KubeObject, Resources } from "../api/types.js";
import { type Discovery, uniqueListable } from "./discovery.js";
import type { Informer } from "./informer.js";
import type { Namespace } from "./objects.js";
import { WorkQueue } from "./queue.js";
import { type ControllerContext, deleteExactly } from "./shared.js";

export const namespaceFinalizer = "kubernetes";

/** Outcome of one drain pass over a namespace. */
export interface DrainResult {
  /** Objects still present, by `resource.group`. */
  remaining: Map<string, number>;
  /** Problems a person may have to act on (e.g. a resource that could not be listed). */
  errors: string[];
}

/** The namespace controller; `run(signal)` works until the signal aborts. */
export class NamespaceController {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #discovery: Discovery;
  readonly #namespaces: Informer<Namespace>;
  readonly #queue: WorkQueue;
  readonly #attempts = new Map<string, number>();

  constructor(ctx: ControllerContext, discovery: Discovery) {
    this.#client = ctx.client;
    this.#log = ctx.log.child("namespace");
    this.#discovery = discovery;
    this.#namespaces = ctx.informers.informer<Namespace>(Resources.namespaces);
    this.#queue = new WorkQueue({ name: "namespace", process: (k) => this.#sync(k), workers: 2, log: this.#log });
    const enqueue = (ns: Namespace) => {
      if (ns.metadata.deletionTimestamp) this.#queue.add(ns.metadata.name ?? "");
    };
    this.#namespaces.addHandler({ add: enqueue, update: (_o, n) => enqueue(n) });
    // Pods go last (grace periods); each one gone is worth another look at its namespace.
    ctx.informers.informer(Resources.pods).addHandler({
      delete: (pod) => {
        const ns = this.#namespaces.get(undefined, pod.metadata.namespace ?? "");
        if (ns) enqueue(ns);
      },
    });
  }

  run(signal: AbortSignal): Promise<void> {
    return this.#queue.run(signal);
  }

  async #sync(name: string): Promise<void> {
    const ns = this.#namespaces.get(undefined, name);
    if (!ns?.metadata.deletionTimestamp) {
      this.#attempts.delete(name);
      return;
    }
    if (!(ns.spec?.finalizers ?? []).includes(namespaceFinalizer)) return;
    const result = await this.drain(name);
    const left = [...result.remaining.values()].reduce((a, b) => a + b, 0);
    if (left > 0 || result.errors.length > 0) {
      const n = (this.#attempts.get(name) ?? 0) + 1;
      this.#attempts.set(name, n);
      // Objects with grace periods or finalizers leave on their own time; look again soon, then less often.
      this.#queue.addAfter(name, Math.min(2_000, 25 * 2 ** Math.min(n, 7)));
      await this.#setCondition(ns, left, result);
      return;
    }
    this.#attempts.delete(name);
    await this.#finalize(name);
  }

  /** Deletes every namespaced object in `namespace` once; reports what is still there. */
  async drain(namespace: string): Promise<DrainResult> {
    const remaining = new Map<string, number>();
    const errors: string[] = [];
    const resources = uniqueListable(await this.#discovery()).filter((r) => r.namespaced);
    await Promise.all(
      resources.map(async (r) => {
        const label = r.group ? `${r.resource}.${r.group}` : r.resource;
        let items: KubeObject[];
        try {
          items = (await this.#client.list(r, { namespace })).items;
        } catch (err) {
          if (!isApiError(err, 404)) errors.push(`listing ${label}: ${errorMessage(err)}`);
          return;
        }
        if (items.length === 0) return;
        remaining.set(label, items.length);
        await Promise.all(
          items
            .filter((o) => !o.metadata.deletionTimestamp)
            .map(async (o) => {
              try {
                await deleteExactly(this.#client, { ref: r, obj: o, propagationPolicy: "Background" });
              } catch (err) {
                errors.push(`deleting ${label} ${o.metadata.name}: ${errorMessage(err)}`);
              }
            }),
        );
      }),
    );
    // Count again: most objects leave at once, and the namespace can finish in this pass.
    const after = new Map<string, number>();
    await Promise.all(
      resources
        .filter((r) => remaining.has(r.group ? `${r.resource}.${r.group}` : r.resource))
        .map(async (r) => {
          const label = r.group ? `${r.resource}.${r.group}` : r.resource;
          try {
            const n = (await this.#client.list(r, { namespace })).items.length;
            if (n > 0) after.set(label, n);
          } catch (err) {
            if (!isApiError(err, 404)) errors.push(`listing ${label}: ${errorMessage(err)}`);
          }
        }),
    );
    return { remaining: after, errors };
  }

  async #setCondition(ns: Namespace, left: number, result: DrainResult): Promise<void> {
    const parts = [...result.remaining].map(([r, n]) => `${r} has ${n} resource instances`);
    const conditions = [
      {
        type: "NamespaceContentRemaining",
        status: left > 0 ? "True" : "False",
        reason: left > 0 ? "SomeResourcesRemain" : "ContentRemoved",
        message: left > 0 ? `Some resources are remaining: ${parts.join(", ")}` : "All content successfully removed",
        lastTransitionTime: new Date().toISOString(),
      },
      {
        type: "NamespaceDeletionContentFailure",
        status: result.errors.length > 0 ? "True" : "False",
        reason: result.errors.length > 0 ? "ContentDeletionFailed" : "ContentDeleted",
        message:
          result.errors.length > 0
            ? result.errors.join("; ")
            : "All content successfully deleted, may be waiting on finalization",
        lastTransitionTime: new Date().toISOString(),
      },
    ];
    const same = (a: unknown[] | undefined) =>
      JSON.stringify((a ?? []).map((c) => ({ ...(c as Record<string, unknown>), lastTransitionTime: undefined }))) ===
      JSON.stringify(conditions.map((c) => ({ ...c, lastTransitionTime: undefined })));
    if (same(ns.status?.conditions)) return;
    try {
      await this.#client.patch(
        Resources.namespaces,
        undefined,
        ns.metadata.name ?? "",
        "application/merge-patch+json",
        { status: { conditions } },
        { subresource: "status" },
      );
    } catch (err) {
      this.#log.debug("could not update namespace conditions", {
        namespace: ns.metadata.name,
        error: errorMessage(err),
      });
    }
  }

  async #finalize(name: string): Promise<void> {
    let ns: Namespace;
    try {
      ns = (await this.#client.get(Resources.namespaces, undefined, name)) as Namespace;
    } catch (err) {
      if (isApiError(err, 404)) return;
      throw err;
    }
    const finalizers = ns.spec?.finalizers ?? [];
    if (!finalizers.includes(namespaceFinalizer)) return;
    const next: Namespace = {
      ...ns,
      spec: { ...ns.spec, finalizers: finalizers.filter((f) => f !== namespaceFinalizer) },
    };
    try {
      await this.#client.update(Resources.namespaces, next, { subresource: "finalize" });
      this.#log.info("namespace drained", { namespace: name });
    } catch (err) {
      if (isApiError(err, 404)) return;
      throw err;
    }
  }
}
