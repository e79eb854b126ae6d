/**
 * The garbage collector: objects whose ownerReferences all point at owners that are gone (by
 * uid) are deleted in the background; references to gone owners are dropped from objects that
 * still have a live owner. Owners deleted with propagationPolicy Foreground (finalizer
 * `foregroundDeletion`) wait until their dependents are gone; with Orphan (finalizer `orphan`)
 * their dependents lose the reference instead. Absence is always confirmed with a live GET.
 */
import type { Logger } from "../../base/index.js";
import { errorMessage } from "../../base/index.js";
import { type ApiClient, isApiError, type KubeObject, type OwnerReference, Resources } from "../api/types.js";
import { builtinResources, type Discovery, type ServedResource, uniqueListable } from "./discovery.js";
import type { Informer } from "./informer.js";
import { WorkQueue } from "./queue.js";
import { type ControllerContext, deleteExactly, type SharedInformers } from "./shared.js";

export const foregroundFinalizer = "foregroundDeletion";
export const orphanFinalizer = "orphan";

interface Located {
  res: ServedResource;
  namespace: string;
  name: string;
}

function resKey(r: { group: string; resource: string }): string {
  return `${r.group}/${r.resource}`;
}

/** Queue keys: `<group>/<resource>|<namespace>|<name>`. */
function itemKey(res: ServedResource, obj: KubeObject): string {
  return `${resKey(res)}|${obj.metadata.namespace ?? ""}|${obj.metadata.name ?? ""}`;
}

function groupOf(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf("/");
  return i < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** Resources not worth watching for owners: Events never carry ownerReferences that matter. */
const unwatched = new Set(["/events", "events.k8s.io/events"]);

/** The garbage collector; `run(signal)` works until the signal aborts. */
export class GarbageCollector {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #informers: SharedInformers;
  readonly #discovery: Discovery;
  readonly #queue: WorkQueue;
  /** Watched resources by `group/resource`. */
  readonly #watched = new Map<string, { res: ServedResource; informer: Informer<KubeObject> }>();
  /** uid → where the object is, for every watched object. */
  readonly #byUid = new Map<string, Located>();
  /** owner uid → queue keys of objects that name it. */
  readonly #dependents = new Map<string, Set<string>>();
  #resources: readonly ServedResource[] = [];

  constructor(ctx: ControllerContext, discovery: Discovery) {
    this.#client = ctx.client;
    this.#log = ctx.log.child("garbagecollector");
    this.#informers = ctx.informers;
    this.#discovery = discovery;
    this.#queue = new WorkQueue({
      name: "garbagecollector",
      process: (k) => this.#sync(k),
      workers: 2,
      log: this.#log,
    });
    // New CRDs bring new kinds to watch.
    const refresh = () => this.#queue.add("refresh");
    ctx.informers
      .informer(Resources.customresourcedefinitions)
      .addHandler({ add: refresh, update: refresh, delete: refresh });
  }

  /** Watches every listable resource known now; later CRDs are picked up as they come. */
  async start(): Promise<void> {
    await this.#refresh();
  }

  run(signal: AbortSignal): Promise<void> {
    return this.#queue.run(signal);
  }

  async #refresh(): Promise<void> {
    this.#resources = await this.#discovery();
    const want = uniqueListable(this.#resources).filter((r) => !unwatched.has(resKey(r)));
    const wantKeys = new Set(want.map(resKey));
    for (const r of want) {
      const k = resKey(r);
      if (this.#watched.has(k)) continue;
      const informer = this.#informers.informer<KubeObject>(r);
      this.#watched.set(k, { res: r, informer });
      informer.addHandler({
        add: (o) => this.#observe(r, undefined, o),
        update: (old, o) => this.#observe(r, old, o),
        delete: (o) => this.#gone(r, o),
      });
    }
    for (const [k, w] of this.#watched) {
      // Only custom resources go away; built-in informers are shared with other controllers.
      if (wantKeys.has(k) || builtinResources.some((b) => resKey(b) === k)) continue;
      this.#watched.delete(k);
      this.#informers.drop(w.res);
    }
  }

  #observe(res: ServedResource, old: KubeObject | undefined, obj: KubeObject): void {
    const uid = obj.metadata.uid;
    if (uid) this.#byUid.set(uid, { res, namespace: obj.metadata.namespace ?? "", name: obj.metadata.name ?? "" });
    const key = itemKey(res, obj);
    const refs = obj.metadata.ownerReferences ?? [];
    const oldRefs = old?.metadata.ownerReferences ?? [];
    for (const r of oldRefs) if (!refs.some((n) => n.uid === r.uid)) this.#forgetDependent(r.uid, key);
    for (const r of refs) {
      let set = this.#dependents.get(r.uid);
      if (!set) {
        set = new Set();
        this.#dependents.set(r.uid, set);
      }
      set.add(key);
    }
    const refsChanged = JSON.stringify(refs) !== JSON.stringify(oldRefs);
    if (refs.length > 0 && (old === undefined || refsChanged)) this.#queue.add(key);
    const fins = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp && (fins.includes(foregroundFinalizer) || fins.includes(orphanFinalizer))) {
      this.#queue.add(key);
    }
    // A dependent changing may unblock an owner waiting in foreground deletion.
    for (const r of refs) this.#enqueueOwnerIfWaiting(r.uid);
  }

  #gone(res: ServedResource, obj: KubeObject): void {
    const uid = obj.metadata.uid;
    const key = itemKey(res, obj);
    for (const r of obj.metadata.ownerReferences ?? []) {
      this.#forgetDependent(r.uid, key);
      this.#enqueueOwnerIfWaiting(r.uid);
    }
    if (!uid) return;
    this.#byUid.delete(uid);
    for (const dep of this.#dependents.get(uid) ?? []) this.#queue.add(dep);
  }

  #forgetDependent(ownerUid: string, key: string): void {
    const set = this.#dependents.get(ownerUid);
    if (!set) return;
    set.delete(key);
    if (set.size === 0) this.#dependents.delete(ownerUid);
  }

  #enqueueOwnerIfWaiting(ownerUid: string): void {
    const loc = this.#byUid.get(ownerUid);
    if (!loc) return;
    const owner = this.#watched.get(resKey(loc.res))?.informer.get(loc.namespace || undefined, loc.name);
    if (owner?.metadata.deletionTimestamp && owner.metadata.finalizers?.includes(foregroundFinalizer)) {
      this.#queue.add(itemKey(loc.res, owner));
    }
  }

  async #sync(key: string): Promise<void> {
    if (key === "refresh") return this.#refresh();
    const [rk = "", namespace = "", name = ""] = key.split("|");
    const w = this.#watched.get(rk);
    if (!w) return;
    const obj = w.informer.get(namespace || undefined, name);
    if (!obj) return;
    const fins = obj.metadata.finalizers ?? [];
    if (obj.metadata.deletionTimestamp && fins.includes(orphanFinalizer)) {
      await this.#orphanDependents(w.res, obj);
      return;
    }
    if (obj.metadata.deletionTimestamp && fins.includes(foregroundFinalizer)) {
      await this.#deleteDependentsFirst(w.res, obj);
      return;
    }
    await this.#collectIfOrphaned(w.res, obj);
  }

  /** The resource an ownerReference names, if this cluster serves it. */
  #resourceFor(ref: OwnerReference): ServedResource | undefined {
    const { group, version } = groupOf(ref.apiVersion);
    return (
      this.#resources.find((r) => r.group === group && r.version === version && r.kind === ref.kind) ??
      this.#resources.find((r) => r.group === group && r.kind === ref.kind)
    );
  }

  /** Whether the owner still exists; "unknown" when its kind is not served (then nothing is deleted). */
  async #ownerState(dependent: KubeObject, ref: OwnerReference): Promise<"present" | "absent" | "unknown"> {
    const res = this.#resourceFor(ref);
    if (!res) return "unknown";
    const ns = res.namespaced ? dependent.metadata.namespace : undefined;
    // A namespaced owner can only own objects of its own namespace; a cluster-scoped dependent has none.
    if (res.namespaced && !ns) return "absent";
    try {
      const owner = await this.#client.get(res, ns, ref.name);
      return owner.metadata.uid === ref.uid ? "present" : "absent";
    } catch (err) {
      if (isApiError(err, 404)) return "absent";
      throw err;
    }
  }

  async #collectIfOrphaned(res: ServedResource, obj: KubeObject): Promise<void> {
    const refs = obj.metadata.ownerReferences ?? [];
    if (refs.length === 0 || obj.metadata.deletionTimestamp) return;
    const absent: OwnerReference[] = [];
    let present = 0;
    for (const r of refs) {
      const cached = this.#byUid.get(r.uid);
      if (cached) {
        present++;
        continue;
      }
      const state = await this.#ownerState(obj, r);
      if (state === "absent") absent.push(r);
      else present++;
    }
    if (absent.length === 0) return;
    const ns = obj.metadata.namespace;
    const name = obj.metadata.name ?? "";
    if (present === 0) {
      this.#log.debug("deleting object whose owners are gone", { resource: res.resource, namespace: ns, name });
      await deleteExactly(this.#client, { ref: res, obj, propagationPolicy: "Background" });
      return;
    }
    const keep = refs.filter((r) => !absent.some((a) => a.uid === r.uid));
    await this.#setOwnerRefs(res, obj, keep);
  }

  async #setOwnerRefs(res: ServedResource, obj: KubeObject, refs: OwnerReference[]): Promise<void> {
    try {
      await this.#client.patch(res, obj.metadata.namespace, obj.metadata.name ?? "", "application/merge-patch+json", {
        metadata: { resourceVersion: obj.metadata.resourceVersion, ownerReferences: refs.length > 0 ? refs : null },
      });
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
  }

  /** The live dependents of `owner` among watched objects. */
  #dependentsOf(owner: KubeObject): { res: ServedResource; obj: KubeObject }[] {
    const out: { res: ServedResource; obj: KubeObject }[] = [];
    for (const key of this.#dependents.get(owner.metadata.uid ?? "") ?? []) {
      const [rk = "", namespace = "", name = ""] = key.split("|");
      const w = this.#watched.get(rk);
      const obj = w?.informer.get(namespace || undefined, name);
      if (w && obj?.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid)) out.push({ res: w.res, obj });
    }
    return out;
  }

  async #orphanDependents(res: ServedResource, owner: KubeObject): Promise<void> {
    for (const d of this.#dependentsOf(owner)) {
      const keep = (d.obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      await this.#setOwnerRefs(d.res, d.obj, keep);
    }
    await this.#removeFinalizer(res, owner, orphanFinalizer);
  }

  async #deleteDependentsFirst(res: ServedResource, owner: KubeObject): Promise<void> {
    const deps = this.#dependentsOf(owner);
    for (const d of deps) {
      if (d.obj.metadata.deletionTimestamp) continue;
      try {
        await deleteExactly(this.#client, { ref: d.res, obj: d.obj, propagationPolicy: "Foreground" });
      } catch (err) {
        this.#log.warn("could not delete dependent", { dependent: d.obj.metadata.name, error: errorMessage(err) });
        throw err;
      }
    }
    const blocking = deps.filter((d) =>
      d.obj.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid && r.blockOwnerDeletion === true),
    );
    // Dependents that do not block their owner need not be waited for.
    if (blocking.length > 0) return;
    await this.#removeFinalizer(res, owner, foregroundFinalizer);
  }

  async #removeFinalizer(res: ServedResource, obj: KubeObject, finalizer: string): Promise<void> {
    const finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    try {
      await this.#client.patch(res, obj.metadata.namespace, obj.metadata.name ?? "", "application/merge-patch+json", {
        metadata: {
          resourceVersion: obj.metadata.resourceVersion,
          finalizers: finalizers.length > 0 ? finalizers : null,
        },
      });
    } catch (err) {
      if (!isApiError(err, 404)) throw err;
    }
  }
}
