import assert from "node:assert/strict";
import { test } from "node:test";
import type { LabelSelector } from "../api/label-selector.js";
import { type Pod, type ReplicaSet, selectorPicks } from "./objects.js";
import { comparePodsForDeletion, podFromTemplate, replicaSetCounts } from "./replicaset.js";

function pod(
  name: string,
  o: {
    node?: string;
    phase?: string;
    readySince?: string;
    restarts?: number;
    created?: string;
    labels?: Record<string, string>;
  } = {},
): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      creationTimestamp: o.created ?? "2026-01-01T00:00:00Z",
      labels: o.labels ?? { app: "x", "pod-template-hash": "h" },
    },
    spec: o.node ? { nodeName: o.node } : {},
    status: {
      phase: o.phase ?? "Running",
      conditions: o.readySince ? [{ type: "Ready", status: "True", lastTransitionTime: o.readySince }] : [],
      containerStatuses: [{ restartCount: o.restarts ?? 0 }],
    },
  };
}

test("comparePodsForDeletion picks unscheduled, pending, unready, recently ready, restarting, newer pods first", () => {
  const pods = [
    pod("ready-old", { node: "n", readySince: "2026-01-01T00:00:00Z" }),
    pod("ready-new", { node: "n", readySince: "2026-01-02T00:00:00Z" }),
    pod("unready", { node: "n" }),
    pod("unready-restarting", { node: "n", restarts: 3 }),
    pod("pending", { node: "n", phase: "Pending" }),
    pod("unscheduled", { phase: "Pending" }),
  ];
  assert.deepEqual(
    [...pods].sort(comparePodsForDeletion).map((p) => p.metadata.name),
    ["unscheduled", "pending", "unready-restarting", "unready", "ready-new", "ready-old"],
  );
  const younger = pod("younger", { node: "n", created: "2026-01-05T00:00:00Z" });
  const older = pod("older", { node: "n", created: "2026-01-01T00:00:00Z" });
  assert.deepEqual(
    [older, younger].sort(comparePodsForDeletion).map((p) => p.metadata.name),
    ["younger", "older"],
  );
});

test("replicaSetCounts counts labelled, ready and available (minReadySeconds) pods", () => {
  const rs: ReplicaSet = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name: "r" },
    spec: { minReadySeconds: 10, template: { metadata: { labels: { app: "x", "pod-template-hash": "h" } } } },
  };
  const now = Date.parse("2026-01-01T00:01:00Z");
  const counts = replicaSetCounts(
    rs,
    [
      pod("long-ready", { readySince: "2026-01-01T00:00:00Z" }),
      pod("just-ready", { readySince: "2026-01-01T00:00:55Z" }),
      pod("unready"),
      pod("relabelled", { labels: { app: "x" } }),
    ],
    now,
  );
  assert.deepEqual(counts, {
    replicas: 4,
    fullyLabeledReplicas: 3,
    readyReplicas: 2,
    availableReplicas: 1,
    recheckInMs: 5000,
  });
});

test("podFromTemplate: generateName <rs>-, template labels and annotations, controller reference", () => {
  const rs: ReplicaSet = {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: { name: "web-5d4b9c", namespace: "ns", uid: "rs-uid" },
    spec: {
      replicas: 1,
      template: {
        metadata: { labels: { app: "web" }, annotations: { a: "b" } },
        spec: { containers: [{ name: "c", image: "i" }] },
      },
    },
  };
  const p = podFromTemplate(rs);
  assert.equal(p.metadata.generateName, "web-5d4b9c-");
  assert.equal(p.metadata.name, undefined);
  assert.deepEqual(p.metadata.labels, { app: "web" });
  assert.deepEqual(p.metadata.annotations, { a: "b" });
  assert.deepEqual(p.metadata.ownerReferences, [
    {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      name: "web-5d4b9c",
      uid: "rs-uid",
      controller: true,
      blockOwnerDeletion: true,
    },
  ]);
  assert.deepEqual(p.spec, { containers: [{ name: "c", image: "i" }] });
});

test("selectorPicks: missing and empty selectors pick nothing, others match as label selectors do", () => {
  // Every operator is covered by api/label-selector.test.ts; this pins what controllers add to it.
  const labels = { app: "x", tier: "web" };
  const cases: [LabelSelector | undefined, boolean][] = [
    [undefined, false],
    [{}, false],
    [{ matchLabels: {}, matchExpressions: [] }, false],
    [{ matchLabels: { app: "x" } }, true],
    [{ matchLabels: { app: "y" } }, false],
    [{ matchExpressions: [{ key: "tier", operator: "In", values: ["web", "db"] }] }, true],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["web"] }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "Exists" }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, false],
  ];
  for (const [sel, want] of cases) assert.equal(selectorPicks(sel, labels), want, JSON.stringify(sel));
});
