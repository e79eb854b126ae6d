/**
 * The Deployment controller: one ReplicaSet per pod template, named
 * `<deployment>-<pod-template-hash>`, scaled by the Deployment's strategy (RollingUpdate
 * within maxSurge/maxUnavailable, or Recreate), old ReplicaSets kept up to
 * revisionHistoryLimit, revisions in `deployment.kubernetes.io/revision`, and the
 * Deployment's status and Available/Progressing conditions.
 */
import type { Logger } from "../../base/index.js";
import { type LabelSelector, matchLabelSelector } from "../api/label-selector.js";
import { type ApiClient, isApiError, type KubeObject, Resources } from "../api/types.js";
import { claimDependents } from "./claim.js";
import { type EventRecorder, involved } from "./events.js";
import { podTemplateHash, stableStringify } from "./hash.js";
import type { Informer } from "./informer.js";
import {
  clone,
  controllerRef,
  controllerRefTo,
  type Deployment,
  type DeploymentCondition,
  isControlledBy,
  type Pod,
  type PodTemplate,
  type ReplicaSet,
} from "./objects.js";
import { WorkQueue } from "./queue.js";
import { type ControllerContext, nsKey } from "./shared.js";

export const revisionAnnotation = "deployment.kubernetes.io/revision";
export const desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas";
export const maxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
export const podTemplateHashLabel = "pod-template-hash";

/**
 * Resolves an int-or-percent against `total`: numbers as they are, "25%" of total rounded
 * up or down as asked. Unparseable values count as 0.
 */
export function resolveIntOrPercent(
  value: number | string | undefined,
  fallback: string,
  total: number,
  roundUp: boolean,
): number {
  const v = value ?? fallback;
  if (typeof v === "number") return v;
  const m = /^(\d+)%$/.exec(v);
  if (m) {
    const exact = (Number(m[1]) * total) / 100;
    return roundUp ? Math.ceil(exact) : Math.floor(exact);
  }
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** maxSurge and maxUnavailable as pod counts; never both 0 (then one pod may be unavailable). */
export function rollingBounds(d: Deployment): { maxSurge: number; maxUnavailable: number } {
  const replicas = d.spec?.replicas ?? 1;
  if (d.spec?.strategy?.type === "Recreate") return { maxSurge: 0, maxUnavailable: replicas };
  const ru = d.spec?.strategy?.rollingUpdate;
  const maxSurge = resolveIntOrPercent(ru?.maxSurge, "25%", replicas, true);
  let maxUnavailable = resolveIntOrPercent(ru?.maxUnavailable, "25%", replicas, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: Math.min(maxUnavailable, replicas) };
}

function withoutHashLabel(t: PodTemplate | undefined): unknown {
  const c = clone(t ?? {});
  if (c.metadata?.labels) {
    delete c.metadata.labels[podTemplateHashLabel];
    if (Object.keys(c.metadata.labels).length === 0) delete c.metadata.labels;
  }
  return c;
}

/** True when two pod templates are equal apart from the pod-template-hash label. */
export function templatesEqualIgnoringHash(a: PodTemplate | undefined, b: PodTemplate | undefined): boolean {
  return stableStringify(withoutHashLabel(a)) === stableStringify(withoutHashLabel(b));
}

/** A ReplicaSet's revision number (0 when unset). */
export function revisionOf(obj: KubeObject): number {
  const n = Number(obj.metadata.annotations?.[revisionAnnotation] ?? "0");
  return Number.isFinite(n) ? n : 0;
}

/** The ReplicaSet a Deployment makes for its current template (name, labels, selector, owner). Pure. */
export function newReplicaSetFor(d: Deployment, hash: string, replicas: number, revision: number): ReplicaSet {
  const template = clone(d.spec?.template ?? {});
  template.metadata = template.metadata ?? {};
  template.metadata.labels = { ...(template.metadata.labels ?? {}), [podTemplateHashLabel]: hash };
  const selector: LabelSelector = clone(d.spec?.selector ?? {});
  selector.matchLabels = { ...(selector.matchLabels ?? {}), [podTemplateHashLabel]: hash };
  const { maxSurge } = rollingBounds(d);
  const want = d.spec?.replicas ?? 1;
  const rs: ReplicaSet = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${d.metadata.name}-${hash}`,
      namespace: d.metadata.namespace,
      labels: { ...(template.metadata.labels ?? {}) },
      annotations: {
        [desiredReplicasAnnotation]: String(want),
        [maxReplicasAnnotation]: String(want + maxSurge),
        [revisionAnnotation]: String(revision),
      },
      ownerReferences: [controllerRefTo(d, "apps/v1", "Deployment")],
    },
    spec: { replicas, selector, template },
  };
  if (d.spec?.minReadySeconds) rs.spec!.minReadySeconds = d.spec.minReadySeconds;
  return rs;
}

function replicasOf(rs: ReplicaSet): number {
  return rs.spec?.replicas ?? 0;
}

function byCreation(a: KubeObject, b: KubeObject): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? "") || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? "") || 0;
  return ta !== tb ? ta - tb : (a.metadata.name ?? "").localeCompare(b.metadata.name ?? "");
}

/** What one rolling-update step wants: target spec.replicas per ReplicaSet name. Pure. */
export function planRollingUpdate(d: Deployment, newRs: ReplicaSet, oldRss: ReplicaSet[]): Map<string, number> {
  const plan = new Map<string, number>();
  const want = d.spec?.replicas ?? 1;
  const { maxSurge, maxUnavailable } = rollingBounds(d);
  const all = [newRs, ...oldRss];
  const total = () => all.reduce((n, rs) => n + (plan.get(rs.metadata.name ?? "") ?? replicasOf(rs)), 0);
  const cur = (rs: ReplicaSet) => plan.get(rs.metadata.name ?? "") ?? replicasOf(rs);

  // Scale the new ReplicaSet up as far as surge allows (or down if the Deployment shrank).
  const newName = newRs.metadata.name ?? "";
  if (cur(newRs) > want) plan.set(newName, want);
  else if (cur(newRs) < want) {
    const room = want + maxSurge - total();
    if (room > 0) plan.set(newName, cur(newRs) + Math.min(room, want - cur(newRs)));
  }

  // Scale old ReplicaSets down as far as availability allows.
  const oldCount = oldRss.reduce((n, rs) => n + cur(rs), 0);
  if (oldCount === 0) return plan;
  const minAvailable = want - maxUnavailable;
  const newUnavailable = replicasOf(newRs) - (newRs.status?.availableReplicas ?? 0);
  let maxScaledDown = total() - minAvailable - Math.max(0, newUnavailable);
  if (maxScaledDown <= 0) return plan;
  const oldest = [...oldRss].sort(byCreation);
  // First the pods that are not available anyway: removing them costs no availability.
  for (const rs of oldest) {
    if (maxScaledDown <= 0) break;
    const unhealthy = cur(rs) - (rs.status?.availableReplicas ?? 0);
    if (unhealthy <= 0) continue;
    const down = Math.min(maxScaledDown, unhealthy);
    plan.set(rs.metadata.name ?? "", cur(rs) - down);
    maxScaledDown -= down;
  }
  const available = all.reduce((n, rs) => n + Math.min(rs.status?.availableReplicas ?? 0, cur(rs)), 0);
  let budget = Math.min(maxScaledDown, available - minAvailable);
  for (const rs of oldest) {
    if (budget <= 0) break;
    const down = Math.min(cur(rs), budget);
    if (down <= 0) continue;
    plan.set(rs.metadata.name ?? "", cur(rs) - down);
    budget -= down;
  }
  return plan;
}

function condition(
  prev: DeploymentCondition[] | undefined,
  type: string,
  status: "True" | "False",
  reason: string,
  message: string,
  now: string,
): DeploymentCondition {
  const old = prev?.find((c) => c.type === type);
  const sameStatus = old?.status === status;
  const same = sameStatus && old?.reason === reason && old?.message === message;
  return {
    type,
    status,
    lastUpdateTime: same ? (old?.lastUpdateTime ?? now) : now,
    lastTransitionTime: sameStatus ? (old?.lastTransitionTime ?? now) : now,
    reason,
    message,
  };
}

/** The Deployment status the controller writes for these ReplicaSets. Pure except for `now`. */
export function deploymentStatus(
  d: Deployment,
  newRs: ReplicaSet | undefined,
  all: ReplicaSet[],
  now: string,
  justCreated: boolean,
): NonNullable<Deployment["status"]> {
  const want = d.spec?.replicas ?? 1;
  const sum = (f: (rs: ReplicaSet) => number) => all.reduce((n, rs) => n + f(rs), 0);
  const replicas = sum((rs) => rs.status?.replicas ?? 0);
  const readyReplicas = sum((rs) => rs.status?.readyReplicas ?? 0);
  const availableReplicas = sum((rs) => rs.status?.availableReplicas ?? 0);
  const updatedReplicas = newRs?.status?.replicas ?? 0;
  const unavailableReplicas = Math.max(0, sum(replicasOf) - availableReplicas);
  const { maxUnavailable } = rollingBounds(d);
  const prev = d.status?.conditions;
  const available =
    availableReplicas >= want - maxUnavailable
      ? condition(prev, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
      : condition(
          prev,
          "Available",
          "False",
          "MinimumReplicasUnavailable",
          "Deployment does not have minimum availability.",
          now,
        );
  const rsName = newRs?.metadata.name ?? "";
  const complete =
    newRs !== undefined &&
    updatedReplicas === want &&
    replicas === want &&
    availableReplicas === want &&
    all.every((rs) => rs === newRs || replicasOf(rs) === 0);
  let progressing: DeploymentCondition;
  if (complete) {
    progressing = condition(
      prev,
      "Progressing",
      "True",
      "NewReplicaSetAvailable",
      `ReplicaSet "${rsName}" has successfully progressed.`,
      now,
    );
  } else if (justCreated) {
    progressing = condition(
      prev,
      "Progressing",
      "True",
      "NewReplicaSetCreated",
      `Created new replica set "${rsName}"`,
      now,
    );
  } else if (newRs) {
    const old = prev?.find((c) => c.type === "Progressing");
    const before = d.status ?? {};
    const progressed =
      (before.replicas ?? 0) !== replicas ||
      (before.updatedReplicas ?? 0) !== updatedReplicas ||
      (before.readyReplicas ?? 0) !== readyReplicas ||
      (before.availableReplicas ?? 0) !== availableReplicas;
    const deadline = d.spec?.progressDeadlineSeconds;
    const stalledSince = Date.parse(old?.lastUpdateTime ?? "");
    const aboutThis = old?.message?.includes(`"${rsName}"`) === true;
    if (progressed || !old || !aboutThis) {
      // Any step forward restarts the progress deadline.
      progressing = {
        ...condition(prev, "Progressing", "True", "ReplicaSetUpdated", `ReplicaSet "${rsName}" is progressing.`, now),
        lastUpdateTime: now,
      };
    } else if (
      deadline !== undefined &&
      old.status === "True" &&
      Number.isFinite(stalledSince) &&
      stalledSince + deadline * 1000 <= Date.parse(now)
    ) {
      progressing = condition(
        prev,
        "Progressing",
        "False",
        "ProgressDeadlineExceeded",
        `ReplicaSet "${rsName}" has timed out progressing.`,
        now,
      );
    } else {
      // Nothing moved: keep what we said ("created", "progressing" or "timed out") and its times.
      progressing = old;
    }
  } else {
    progressing = condition(
      prev,
      "Progressing",
      "True",
      "ReplicaSetUpdated",
      "Waiting for old replica sets to scale down.",
      now,
    );
  }
  const status: NonNullable<Deployment["status"]> = {
    observedGeneration: d.metadata.generation ?? 0,
    replicas,
    updatedReplicas,
    readyReplicas,
    availableReplicas,
    unavailableReplicas,
    conditions: [available, progressing],
  };
  if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
  return status;
}

/** The Deployment controller; `run(signal)` works until the signal aborts. */
export class DeploymentController {
  readonly #client: ApiClient;
  readonly #log: Logger;
  readonly #events: EventRecorder;
  readonly #deployments: Informer<Deployment>;
  readonly #replicaSets: Informer<ReplicaSet>;
  readonly #pods: Informer<Pod>;
  readonly #queue: WorkQueue;

  constructor(ctx: ControllerContext) {
    this.#client = ctx.client;
    this.#log = ctx.log.child("deployment");
    this.#events = ctx.recorder("deployment-controller");
    this.#deployments = ctx.informers.informer<Deployment>(Resources.deployments);
    this.#replicaSets = ctx.informers.informer<ReplicaSet>(Resources.replicasets);
    this.#pods = ctx.informers.informer<Pod>(Resources.pods);
    this.#queue = new WorkQueue({ name: "deployment", process: (k) => this.#sync(k), workers: 2, log: this.#log });
    const enqueue = (d: Deployment) => this.#queue.add(nsKey(d.metadata.namespace, d.metadata.name ?? ""));
    this.#deployments.addHandler({ add: enqueue, update: (_o, n) => enqueue(n), delete: enqueue });
    const owner = (rs: ReplicaSet) => {
      const ref = controllerRef(rs);
      if (ref?.kind === "Deployment") this.#queue.add(nsKey(rs.metadata.namespace, ref.name));
      if (ref) return;
      // An orphan may be adopted by a Deployment whose selector matches it.
      for (const d of this.#deployments.list(rs.metadata.namespace)) {
        const sel = d.spec?.selector;
        if (sel !== undefined && matchLabelSelector(sel, rs.metadata.labels)) enqueue(d);
      }
    };
    this.#replicaSets.addHandler({ add: owner, update: (_o, n) => owner(n), delete: owner });
    // Recreate waits for old pods to be gone; their deletion is the event that lets it go on.
    this.#pods.addHandler({
      delete: (pod) => {
        const ref = controllerRef(pod);
        if (ref?.kind !== "ReplicaSet") return;
        const rs = this.#replicaSets.get(pod.metadata.namespace, ref.name);
        if (rs) owner(rs);
      },
    });
  }

  run(signal: AbortSignal): Promise<void> {
    return this.#queue.run(signal);
  }

  async #sync(key: string): Promise<void> {
    const d = this.#deployments.getByKey(key);
    if (!d || d.metadata.deletionTimestamp) return;
    const ns = d.metadata.namespace ?? "";
    const dName = d.metadata.name ?? "";
    const owned = await this.#claimReplicaSets(d, this.#replicaSets.list(ns));
    const template = d.spec?.template;
    // Match by template; failing that by hash label, so that defaulting the API server might apply
    // to a ReplicaSet's copy of the template can never make us create a ReplicaSet per pass.
    const hash = podTemplateHash(template ?? {}, d.status?.collisionCount);
    let newRs =
      owned.find((rs) => templatesEqualIgnoringHash(rs.spec?.template, template)) ??
      owned.find((rs) => rs.metadata.labels?.[podTemplateHashLabel] === hash);
    const oldRss = owned.filter((rs) => rs !== newRs);
    const maxOldRevision = oldRss.reduce((n, rs) => Math.max(n, revisionOf(rs)), 0);
    const want = d.spec?.replicas ?? 1;
    const recreate = d.spec?.strategy?.type === "Recreate";
    let justCreated = false;
    const rsIndex = new Map(owned.map((rs) => [rs.metadata.name ?? "", rs]));

    if (!d.spec?.paused) {
      if (recreate) {
        for (const rs of oldRss)
          if (replicasOf(rs) > 0) rsIndex.set(rs.metadata.name ?? "", await this.#scale(d, rs, 0));
        const oldPodsLeft = this.#pods.list(ns).some((p) => oldRss.some((rs) => isControlledBy(p, rs.metadata.uid)));
        if (!oldPodsLeft) {
          if (!newRs) {
            newRs = await this.#createNewRs(d, want, maxOldRevision + 1);
            justCreated = true;
          } else if (replicasOf(newRs) !== want) newRs = await this.#scale(d, newRs, want);
          rsIndex.set(newRs.metadata.name ?? "", newRs);
        }
      } else {
        if (!newRs) {
          const { maxSurge } = rollingBounds(d);
          const current = oldRss.reduce((n, rs) => n + replicasOf(rs), 0);
          // The first ReplicaSet starts at full size; later ones within the surge budget.
          const start = oldRss.length === 0 ? want : Math.max(0, Math.min(want, want + maxSurge - current));
          newRs = await this.#createNewRs(d, start, maxOldRevision + 1);
          justCreated = true;
          rsIndex.set(newRs.metadata.name ?? "", newRs);
        }
        const plan = planRollingUpdate(d, newRs, oldRss);
        for (const [name, replicas] of plan) {
          const rs = rsIndex.get(name);
          if (rs && replicasOf(rs) !== replicas) rsIndex.set(name, await this.#scale(d, rs, replicas));
        }
        newRs = rsIndex.get(newRs.metadata.name ?? "") ?? newRs;
      }
      if (newRs && revisionOf(newRs) <= maxOldRevision) {
        // A rollback to an older template makes its ReplicaSet the newest revision again.
        newRs = await this.#annotate(newRs, { [revisionAnnotation]: String(maxOldRevision + 1) });
        rsIndex.set(newRs.metadata.name ?? "", newRs);
      }
    }

    const all = [...rsIndex.values()];
    if (newRs && d.metadata.annotations?.[revisionAnnotation] !== String(revisionOf(newRs))) {
      await this.#client.patch(Resources.deployments, ns, dName, "application/merge-patch+json", {
        metadata: { annotations: { [revisionAnnotation]: String(revisionOf(newRs)) } },
      });
    }
    const now = new Date().toISOString();
    const status = deploymentStatus(d, newRs, all, now, justCreated);
    this.#watchDeadline(key, d, status);
    if (!sameStatus(d.status, status)) {
      try {
        await this.#client.patch(
          Resources.deployments,
          ns,
          dName,
          "application/merge-patch+json",
          { status },
          { subresource: "status" },
        );
      } catch (err) {
        if (!isApiError(err, 404)) throw err;
      }
    }
    if (newRs && status.availableReplicas === want && status.updatedReplicas === want) {
      await this.#cleanup(d, newRs, all);
    }
  }

  /** The ReplicaSets this Deployment controls, after adopting orphans its selector matches and releasing ones it no longer does. */
  #claimReplicaSets(d: Deployment, all: ReplicaSet[]): Promise<ReplicaSet[]> {
    return claimDependents(all, {
      client: this.#client,
      resource: Resources.replicasets,
      owner: d,
      ownerApiVersion: "apps/v1",
      ownerKind: "Deployment",
      selector: d.spec?.selector,
      mayAdopt: (rs) => !rs.metadata.deletionTimestamp,
    });
  }

  /** When the Deployment's progress deadline passes without progress, look again. */
  #watchDeadline(key: string, d: Deployment, status: NonNullable<Deployment["status"]>): void {
    const deadline = d.spec?.progressDeadlineSeconds;
    const p = status.conditions?.find((c) => c.type === "Progressing");
    if (deadline === undefined || p?.status !== "True" || p.reason === "NewReplicaSetAvailable") return;
    const since = Date.parse(p.lastUpdateTime ?? "");
    if (!Number.isFinite(since)) return;
    this.#queue.addAfter(key, Math.max(0, since + deadline * 1000 - Date.now()) + 50);
  }

  async #createNewRs(d: Deployment, replicas: number, revision: number): Promise<ReplicaSet> {
    const hash = podTemplateHash(d.spec?.template ?? {}, d.status?.collisionCount);
    const rs = newReplicaSetFor(d, hash, replicas, revision);
    try {
      const created = (await this.#client.create(Resources.replicasets, rs)) as ReplicaSet;
      this.#events.normal(
        involved(d, "apps/v1", "Deployment"),
        "ScalingReplicaSet",
        `Scaled up replica set ${created.metadata.name} from 0 to ${replicas}`,
      );
      return created;
    } catch (err) {
      if (!isApiError(err, 409)) throw err;
      const existing = (await this.#client.get(
        Resources.replicasets,
        d.metadata.namespace,
        rs.metadata.name ?? "",
      )) as ReplicaSet;
      if (
        isControlledBy(existing, d.metadata.uid) &&
        (templatesEqualIgnoringHash(existing.spec?.template, d.spec?.template) ||
          existing.metadata.labels?.[podTemplateHashLabel] === hash)
      ) {
        return existing;
      }
      // A different template hashed to a taken name: bump collisionCount, and the next pass hashes anew.
      await this.#client.patch(
        Resources.deployments,
        d.metadata.namespace,
        d.metadata.name ?? "",
        "application/merge-patch+json",
        { status: { collisionCount: (d.status?.collisionCount ?? 0) + 1 } },
        { subresource: "status" },
      );
      throw new Error(`replica set name ${rs.metadata.name} is taken by another template; retrying with a new hash`);
    }
  }

  async #scale(d: Deployment, rs: ReplicaSet, replicas: number): Promise<ReplicaSet> {
    const from = replicasOf(rs);
    const { maxSurge } = rollingBounds(d);
    const want = d.spec?.replicas ?? 1;
    const updated = (await this.#client.patch(
      Resources.replicasets,
      rs.metadata.namespace,
      rs.metadata.name ?? "",
      "application/merge-patch+json",
      {
        metadata: {
          resourceVersion: rs.metadata.resourceVersion,
          annotations: { [desiredReplicasAnnotation]: String(want), [maxReplicasAnnotation]: String(want + maxSurge) },
        },
        spec: { replicas },
      },
    )) as ReplicaSet;
    this.#events.normal(
      involved(d, "apps/v1", "Deployment"),
      "ScalingReplicaSet",
      `Scaled ${replicas > from ? "up" : "down"} replica set ${rs.metadata.name} from ${from} to ${replicas}`,
    );
    return updated;
  }

  async #annotate(rs: ReplicaSet, annotations: Record<string, string>): Promise<ReplicaSet> {
    return (await this.#client.patch(
      Resources.replicasets,
      rs.metadata.namespace,
      rs.metadata.name ?? "",
      "application/merge-patch+json",
      { metadata: { resourceVersion: rs.metadata.resourceVersion, annotations } },
    )) as ReplicaSet;
  }

  /** Deletes drained old ReplicaSets beyond revisionHistoryLimit, oldest revision first. */
  async #cleanup(d: Deployment, newRs: ReplicaSet, all: ReplicaSet[]): Promise<void> {
    const limit = d.spec?.revisionHistoryLimit ?? 10;
    const drained = all
      .filter(
        (rs) =>
          rs !== newRs && replicasOf(rs) === 0 && (rs.status?.replicas ?? 0) === 0 && !rs.metadata.deletionTimestamp,
      )
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of drained.slice(0, Math.max(0, drained.length - limit))) {
      try {
        await this.#client.delete(Resources.replicasets, rs.metadata.namespace, rs.metadata.name ?? "", {
          propagationPolicy: "Background",
          preconditions: { uid: rs.metadata.uid },
        });
      } catch (err) {
        if (!isApiError(err, 404)) throw err;
      }
    }
  }
}

function sameStatus(a: Deployment["status"], b: NonNullable<Deployment["status"]>): boolean {
  if (!a) return false;
  const strip = (s: Deployment["status"]) => ({
    ...s,
    conditions: (s?.conditions ?? []).map(({ lastUpdateTime: _u, lastTransitionTime: _t, ...rest }) => rest),
  });
  return stableStringify(strip(a)) === stableStringify(strip(b));
}
