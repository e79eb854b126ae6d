import assert from "node:assert/strict";
import { test } from "node:test";
import {
  deploymentStatus,
  newReplicaSetFor,
  planRollingUpdate,
  resolveIntOrPercent,
  rollingBounds,
  templatesEqualIgnoringHash,
} from "./deployment.js";
import type { Deployment, ReplicaSet } from "./objects.js";

function deploy(
  replicas: number,
  rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string },
): Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "d", namespace: "ns", uid: "d-uid", generation: 3 },
    spec: {
      replicas,
      selector: { matchLabels: { app: "d" } },
      template: { metadata: { labels: { app: "d" } }, spec: { containers: [{ name: "c", image: "i:2" }] } },
      strategy: rollingUpdate ? { type: "RollingUpdate", rollingUpdate } : undefined,
    },
  };
}

function rs(name: string, replicas: number, available: number, created: string): ReplicaSet {
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name, creationTimestamp: created },
    spec: { replicas },
    status: { replicas, availableReplicas: available, readyReplicas: available },
  };
}

test("resolveIntOrPercent rounds surge up and unavailability down, as Kubernetes does", () => {
  assert.equal(resolveIntOrPercent(undefined, "25%", 10, true), 3);
  assert.equal(resolveIntOrPercent(undefined, "25%", 10, false), 2);
  assert.equal(resolveIntOrPercent(2, "25%", 10, true), 2);
  assert.equal(resolveIntOrPercent("50%", "25%", 3, false), 1);
});

test("rollingBounds: defaults, both zero means one unavailable, Recreate", () => {
  assert.deepEqual(rollingBounds(deploy(4)), { maxSurge: 1, maxUnavailable: 1 });
  assert.deepEqual(rollingBounds(deploy(4, { maxSurge: 0, maxUnavailable: 0 })), { maxSurge: 0, maxUnavailable: 1 });
  const recreate = deploy(4);
  recreate.spec!.strategy = { type: "Recreate" };
  assert.deepEqual(rollingBounds(recreate), { maxSurge: 0, maxUnavailable: 4 });
});

test("planRollingUpdate steps: surge the new ReplicaSet, then drain the old as availability allows", () => {
  const d = deploy(4, { maxSurge: 1, maxUnavailable: 0 });
  // Start: old has 4 available, new has 0: only surge (one extra pod), nothing may go down.
  let plan = planRollingUpdate(d, rs("new", 0, 0, "2026-01-02T00:00:00Z"), [rs("old", 4, 4, "2026-01-01T00:00:00Z")]);
  assert.deepEqual(Object.fromEntries(plan), { new: 1 });
  // The new pod is available: one old pod may go.
  plan = planRollingUpdate(d, rs("new", 1, 1, "2026-01-02T00:00:00Z"), [rs("old", 4, 4, "2026-01-01T00:00:00Z")]);
  assert.deepEqual(Object.fromEntries(plan), { old: 3 });
  // While the new pods are not available, nothing more may go down (availability would drop below 3).
  plan = planRollingUpdate(deploy(4, { maxSurge: 1, maxUnavailable: 1 }), rs("new", 2, 0, "2026-01-02T00:00:00Z"), [
    rs("old", 3, 2, "2026-01-01T00:00:00Z"),
  ]);
  assert.deepEqual(Object.fromEntries(plan), {});
  // Old pods that are not available go first and cost no availability.
  plan = planRollingUpdate(deploy(4, { maxSurge: 1, maxUnavailable: 1 }), rs("new", 1, 1, "2026-01-02T00:00:00Z"), [
    rs("old", 4, 2, "2026-01-01T00:00:00Z"),
  ]);
  assert.deepEqual(Object.fromEntries(plan), { old: 2 });
  // Scaling down while nothing rolls: the new ReplicaSet follows the Deployment.
  plan = planRollingUpdate(deploy(1), rs("new", 3, 3, "2026-01-02T00:00:00Z"), []);
  assert.deepEqual(Object.fromEntries(plan), { new: 1 });
});

test("newReplicaSetFor names <deployment>-<hash>, adds the hash label to labels, selector and template", () => {
  const r = newReplicaSetFor(deploy(2), "5d4b9c8f6", 2, 7);
  assert.equal(r.metadata.name, "d-5d4b9c8f6");
  assert.equal(r.metadata.labels?.["pod-template-hash"], "5d4b9c8f6");
  assert.deepEqual(r.spec?.selector?.matchLabels, { app: "d", "pod-template-hash": "5d4b9c8f6" });
  assert.equal(r.spec?.template?.metadata?.labels?.["pod-template-hash"], "5d4b9c8f6");
  assert.equal(r.metadata.annotations?.["deployment.kubernetes.io/revision"], "7");
  assert.deepEqual(r.metadata.ownerReferences, [
    { apiVersion: "apps/v1", kind: "Deployment", name: "d", uid: "d-uid", controller: true, blockOwnerDeletion: true },
  ]);
  assert.ok(templatesEqualIgnoringHash(r.spec?.template, deploy(2).spec?.template));
  const other = deploy(2);
  other.spec!.template!.spec!.containers = [{ name: "c", image: "i:3" }];
  assert.ok(!templatesEqualIgnoringHash(r.spec?.template, other.spec?.template));
});

test("deploymentStatus sums ReplicaSets and sets Available/Progressing", () => {
  const d = deploy(2);
  const n = rs("new", 2, 2, "2026-01-02T00:00:00Z");
  const s = deploymentStatus(d, n, [n, rs("old", 0, 0, "2026-01-01T00:00:00Z")], "2026-01-03T00:00:00Z", false);
  assert.equal(s.replicas, 2);
  assert.equal(s.updatedReplicas, 2);
  assert.equal(s.availableReplicas, 2);
  assert.equal(s.unavailableReplicas, 0);
  assert.equal(s.observedGeneration, 3);
  assert.deepEqual(
    s.conditions?.map((c) => [c.type, c.status, c.reason]),
    [
      ["Available", "True", "MinimumReplicasAvailable"],
      ["Progressing", "True", "NewReplicaSetAvailable"],
    ],
  );
  const starting = rs("new", 2, 0, "2026-01-02T00:00:00Z");
  const s2 = deploymentStatus(d, starting, [starting], "2026-01-03T00:00:00Z", true);
  assert.deepEqual(
    s2.conditions?.map((c) => [c.type, c.status, c.reason]),
    [
      ["Available", "False", "MinimumReplicasUnavailable"],
      ["Progressing", "True", "NewReplicaSetCreated"],
    ],
  );
});

test("deploymentStatus: no progress past progressDeadlineSeconds is ProgressDeadlineExceeded; any progress restarts the clock", () => {
  const d = deploy(2);
  d.spec!.progressDeadlineSeconds = 10;
  const stuck = rs("new", 2, 0, "2026-01-02T00:00:00Z");
  stuck.status = { replicas: 2, readyReplicas: 0, availableReplicas: 0 };
  d.status = {
    replicas: 2,
    updatedReplicas: 2,
    readyReplicas: 0,
    availableReplicas: 0,
    conditions: [
      {
        type: "Progressing",
        status: "True",
        reason: "ReplicaSetUpdated",
        message: 'ReplicaSet "new" is progressing.',
        lastUpdateTime: "2026-01-03T00:00:00Z",
        lastTransitionTime: "2026-01-03T00:00:00Z",
      },
    ],
  };
  const early = deploymentStatus(d, stuck, [stuck], "2026-01-03T00:00:05Z", false);
  assert.equal(early.conditions?.[1]?.reason, "ReplicaSetUpdated");
  assert.equal(early.conditions?.[1]?.lastUpdateTime, "2026-01-03T00:00:00Z");
  const late = deploymentStatus(d, stuck, [stuck], "2026-01-03T00:00:11Z", false);
  assert.deepEqual([late.conditions?.[1]?.status, late.conditions?.[1]?.reason], ["False", "ProgressDeadlineExceeded"]);
  assert.equal(late.conditions?.[1]?.message, 'ReplicaSet "new" has timed out progressing.');
  const moving = rs("new", 2, 1, "2026-01-02T00:00:00Z");
  const progressed = deploymentStatus(d, moving, [moving], "2026-01-03T00:00:11Z", false);
  assert.deepEqual(
    [
      progressed.conditions?.[1]?.status,
      progressed.conditions?.[1]?.reason,
      progressed.conditions?.[1]?.lastUpdateTime,
    ],
    ["True", "ReplicaSetUpdated", "2026-01-03T00:00:11Z"],
  );
});
