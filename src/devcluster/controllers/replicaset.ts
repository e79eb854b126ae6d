/**
 * The ReplicaSet controller: keeps `spec.replicas` active pods per ReplicaSet (pods named
 * `<replicaset>-<5 random chars>` through generateName, controlled by the ReplicaSet) and
 * writes the ReplicaSet's status. Pods it just created or deleted are remembered until the
 * pod informer reports them, so a slow watch never makes it create or delete twice.
 */
import type { Logger } from "../../base/index.js";
import { errorMessage } from "../../base/index.js";
import { type ApiClient, isApiError, type KubeObject, Resources } from "../api/types.js";
import { claimDependents } from "./claim.js";
import { type EventRecorder, involved } from "./events.js";
import type { Informer } from "./informer.js";
import { splitKey } from "./informer.js";
import {
  clone,
  controllerRef,
  controllerRefTo,
  isPodActive,
  isPodAvailable,
  isPodReady,
  type Pod,
  podReadyCondition,
  type ReplicaSet,
  selectorPicks,
} from "./objects.js";
import { WorkQueue } from "./queue.js";
import { type ControllerContext, nsKey } from "./shared.js";

/** How long a create or delete we issued is assumed in flight before we stop waiting for the informer. */
const expectationTtlMs = 30_000;
/** Largest create batch (batches grow 1, 2, 4, ... so a failing admission webhook costs few calls). */
const maxBatch = 64;

/**
 * Orders pods for deletion when scaling down, most deletable first: unscheduled before
 * scheduled, Pending before Unknown before Running, not ready before ready, ready more
 * recently before ready longer, more restarts first, newer before older.
 */
export function comparePodsForDeletion(a: Pod, b: Pod): number {
  const assigned = (p: Pod) => (p.spec?.nodeName ? 1 : 0);
  if (assigned(a) !== assigned(b)) return assigned(a) - assigned(b);
  const phaseRank = (p: Pod) => ({ Pending: 0, Unknown: 1, Running: 2 })[p.status?.phase ?? "Pending"] ?? 0;
  if (phaseRank(a) !== phaseRank(b)) return phaseRank(a) - phaseRank(b);
  const ready = (p: Pod) => (isPodReady(p) ? 1 : 0);
  if (ready(a) !== ready(b)) return ready(a) - ready(b);
  if (isPodReady(a) && isPodReady(b)) {
    const ta = Date.parse(podReadyCondition(a)?.lastTransitionTime ?? "") || 0;
    const tb = Date.parse(podReadyCondition(b)?.lastTransitionTime ?? "") || 0;
    if (ta !== tb) return tb - ta;
  }
  const restarts = (p: Pod) => (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  const created = (p: Pod) => Date.parse(p.metadata.creationTimestamp ?? "") || 0;
  return created(b) - created(a);
}

/** The pod a ReplicaSet creates from its template (name left to the API server's generateName). */
export function podFromTemplate(rs: ReplicaSet): KubeObject {
  const tmpl = rs.spec?.template ?? {};
  const meta = tmpl.metadata ?? {};
  const pod: KubeObject = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: `${rs.metadata.name}-`,
      namespace: rs.metadata.namespace,
      labels: { ...(meta.labels ?? {}) },
      ownerReferences: [controllerRefTo(rs, "apps/v1", "ReplicaSet")],
    },
    spec: clone(tmpl.spec ?? {}),
  };
  if (meta.annotations && Object.keys(meta.annotations).length > 0) pod.metadata.annotations = { ...meta.annotations };
  if (Array.isArray(meta.finalizers)) pod.metadata.finalizers = [...(meta.finalizers as string[])];
  return pod;
}

export interface ReplicaSetStatusCounts {
  replicas: number;
  fullyLabeledReplicas: number;
  readyReplicas: number;
  availableReplicas: number;
  /** Milliseconds until a Ready pod becomes available (minReadySeconds), if any is waiting. */
  recheckInMs?: number;
}

/** Counts a ReplicaSet's status from its active pods at `now`. Pure. */
export function replicaSetCounts(rs: ReplicaSet, pods: Pod[], now: number): ReplicaSetStatusCounts {
  const templateLabels = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  let fully = 0;
  let ready = 0;
  let available = 0;
  let recheck: number | undefined;
  for (const p of pods) {
    const labels = p.metadata.labels ?? {};
    if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fully++;
    if (!isPodReady(p)) continue;
    ready++;
    if (isPodAvailable(p, minReady, now)) available++;
    else {
      const since = Date.parse(podReadyCondition(p)?.lastTransitionTime ?? "") || now;
      const wait = since + minReady * 1000 - now;
      recheck = recheck === undefined ? wait : Math.min(recheck, wait);
    }
  }
  return {
    replicas: pods.length,
    fullyLabeledReplicas: fully,
    readyReplicas: ready,
    availableReplicas: available,
    recheckInMs: recheck,
  };
}

/** Remembers pods we created or deleted until the informer reflects it. */
class Expectations {
  readonly #creates = new Map<string, Map<string, number>>();
  readonly #deletes = new Map<string, Map<string, number>>();

  expectCreate(rsKey: string, podName: string): void {
    this.#entry(this.#creates, rsKey).set(podName, Date.now() + expectationTtlMs);
  }
  expectDelete(rsKey: string, podName: string): void {
    this.#entry(this.#deletes, rsKey).set(podName, Date.now() + expectationTtlMs);
  }
  /** Pod names created but not yet seen in `seen`. */
  pendingCreates(rsKey: string, seen: Set<string>): number {
    const m = this.#creates.get(rsKey);
    if (!m) return 0;
    const now = Date.now();
    for (const [name, until] of m) if (seen.has(name) || until < now) m.delete(name);
    return m.size;
  }
  /** True when we asked to delete `podName` and the informer still shows it alive. */
  isDeleting(rsKey: string, podName: string): boolean {
    const until = this.#deletes.get(rsKey)?.get(podName);
    return until !== undefined && until >= Date.now();
  }
  observedGone(rsKey: string, podName: string): void {
    this.#deletes.get(rsKey)?.delete(podName);
  }
  forget(rsKey: string): void {
    this.#creates.delete(rsKey);
    this.#deletes.delete(rsKey);
  }
  #entry(map: Map<string, Map<string, number>>, key: string): Map<string, number> {
    let m = map.get(key);
    if (!m) {
      m = new Map();
      map.set(key, m);
    }
    return m;
  }
}

/** The ReplicaSet controller; `run(signal)` works until the signal aborts. */
export class ReplicaSetController {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #events: EventRecorder;
  readonly #pods: Informer<Pod>;
  readonly #replicaSets: Informer<ReplicaSet>;
  readonly #queue: WorkQueue;
  readonly #expect = new Expectations();

  constructor(ctx: ControllerContext) {
    this.#client = ctx.client;
    this.#log = ctx.log.child("replicaset");
    this.#events = ctx.recorder("replicaset-controller");
    this.#pods = ctx.informers.informer<Pod>(Resources.pods);
    this.#replicaSets = ctx.informers.informer<ReplicaSet>(Resources.replicasets);
    this.#queue = new WorkQueue({ name: "replicaset", process: (k) => this.#sync(k), workers: 4, log: this.#log });
    const enqueueRs = (rs: ReplicaSet) => this.#queue.add(nsKey(rs.metadata.namespace, rs.metadata.name ?? ""));
    this.#replicaSets.addHandler({ add: enqueueRs, update: (_o, n) => enqueueRs(n), delete: enqueueRs });
    const owner = (pod: Pod): string | undefined => {
      const ref = controllerRef(pod);
      return ref?.kind === "ReplicaSet" ? nsKey(pod.metadata.namespace, ref.name) : undefined;
    };
    // A pod without a controller may be adopted by any ReplicaSet whose selector matches it.
    const adopters = (pod: Pod) => {
      if (controllerRef(pod) || !isPodActive(pod)) return;
      for (const rs of this.#replicaSets.list(pod.metadata.namespace)) {
        if (selectorPicks(rs.spec?.selector, pod.metadata.labels))
          this.#queue.add(nsKey(rs.metadata.namespace, rs.metadata.name ?? ""));
      }
    };
    this.#pods.addHandler({
      add: (pod) => {
        const k = owner(pod);
        if (k) this.#queue.add(k);
        else adopters(pod);
      },
      update: (oldPod, pod) => {
        adopters(pod);
        const k = owner(pod);
        const ok = owner(oldPod);
        if (pod.metadata.deletionTimestamp && k) this.#expect.observedGone(k, pod.metadata.name ?? "");
        if (k) this.#queue.add(k);
        if (ok && ok !== k) this.#queue.add(ok);
      },
      delete: (pod) => {
        const k = owner(pod);
        if (!k) return;
        this.#expect.observedGone(k, pod.metadata.name ?? "");
        this.#queue.add(k);
      },
    });
  }

  run(signal: AbortSignal): Promise<void> {
    return this.#queue.run(signal);
  }

  async #sync(key: string): Promise<void> {
    const rs = this.#replicaSets.getByKey(key);
    if (!rs) {
      this.#expect.forget(key);
      return;
    }
    const { namespace } = splitKey(key);
    const owned = await this.#claimPods(rs, this.#pods.list(namespace));
    const seen = new Set(owned.map((p) => p.metadata.name ?? ""));
    const active = owned.filter((p) => isPodActive(p) && !this.#expect.isDeleting(key, p.metadata.name ?? ""));
    const want = rs.spec?.replicas ?? 1;
    let failure: unknown;
    if (!rs.metadata.deletionTimestamp) {
      const have = active.length + this.#expect.pendingCreates(key, seen);
      try {
        if (have < want) await this.#createPods(key, rs, want - have);
        else if (have > want) await this.#deletePods(key, rs, active, have - want);
      } catch (err) {
        failure = err;
      }
    }
    await this.#writeStatus(key, rs, owned.filter(isPodActive));
    if (failure) throw failure;
  }

  /**
   * The pods this ReplicaSet controls after adopting matching orphans and releasing pods whose
   * labels no longer match, as Kubernetes' controllers do (a pod relabelled by hand leaves its ReplicaSet).
   */
  #claimPods(rs: ReplicaSet, pods: Pod[]): Promise<Pod[]> {
    return claimDependents(pods, {
      client: this.#client,
      resource: Resources.pods,
      owner: rs,
      ownerApiVersion: "apps/v1",
      ownerKind: "ReplicaSet",
      selector: rs.spec?.selector,
      mayAdopt: (p) => isPodActive(p) && !rs.metadata.deletionTimestamp,
    });
  }

  async #createPods(key: string, rs: ReplicaSet, count: number): Promise<void> {
    const template = podFromTemplate(rs);
    let remaining = count;
    let batch = 1;
    while (remaining > 0) {
      const n = Math.min(batch, remaining);
      const results = await Promise.allSettled(
        Array.from({ length: n }, () => this.#client.create(Resources.pods, clone(template))),
      );
      let failed: unknown;
      for (const r of results) {
        if (r.status === "fulfilled") {
          const name = r.value.metadata.name ?? "";
          this.#expect.expectCreate(key, name);
          this.#events.normal(involved(rs, "apps/v1", "ReplicaSet"), "SuccessfulCreate", `Created pod: ${name}`);
        } else {
          failed = r.reason;
        }
      }
      if (failed !== undefined) {
        const msg = errorMessage(failed);
        this.#events.warning(involved(rs, "apps/v1", "ReplicaSet"), "FailedCreate", `Error creating: ${msg}`);
        // A namespace being deleted refuses new pods; nothing to retry then.
        if (isApiError(failed, 403) && /terminat/i.test(msg)) return;
        throw failed;
      }
      remaining -= n;
      batch = Math.min(batch * 2, maxBatch);
    }
  }

  async #deletePods(key: string, rs: ReplicaSet, active: Pod[], count: number): Promise<void> {
    const victims = [...active].sort(comparePodsForDeletion).slice(0, count);
    const results = await Promise.allSettled(
      victims.map(async (p) => {
        const name = p.metadata.name ?? "";
        this.#expect.expectDelete(key, name);
        try {
          await this.#client.delete(Resources.pods, p.metadata.namespace, name, {
            preconditions: { uid: p.metadata.uid },
          });
          this.#events.normal(involved(rs, "apps/v1", "ReplicaSet"), "SuccessfulDelete", `Deleted pod: ${name}`);
        } catch (err) {
          this.#expect.observedGone(key, name);
          if (isApiError(err, 404)) return;
          this.#events.warning(
            involved(rs, "apps/v1", "ReplicaSet"),
            "FailedDelete",
            `Error deleting: ${errorMessage(err)}`,
          );
          throw err;
        }
      }),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  async #writeStatus(key: string, rs: ReplicaSet, activePods: Pod[]): Promise<void> {
    const counts = replicaSetCounts(rs, activePods, Date.now());
    if (counts.recheckInMs !== undefined) this.#queue.addAfter(key, counts.recheckInMs + 10);
    const status = {
      replicas: counts.replicas,
      fullyLabeledReplicas: counts.fullyLabeledReplicas,
      readyReplicas: counts.readyReplicas,
      availableReplicas: counts.availableReplicas,
      observedGeneration: rs.metadata.generation ?? 0,
    };
    const cur = rs.status ?? {};
    if (
      (cur.replicas ?? 0) === status.replicas &&
      (cur.fullyLabeledReplicas ?? 0) === status.fullyLabeledReplicas &&
      (cur.readyReplicas ?? 0) === status.readyReplicas &&
      (cur.availableReplicas ?? 0) === status.availableReplicas &&
      (cur.observedGeneration ?? 0) === status.observedGeneration
    ) {
      return;
    }
    try {
      await this.#client.patch(
        Resources.replicasets,
        rs.metadata.namespace,
        rs.metadata.name ?? "",
        "application/merge-patch+json",
        { status },
        { subresource: "status" },
      );
    } catch (err) {
      if (isApiError(err, 404)) return;
      throw err;
    }
  }
}
