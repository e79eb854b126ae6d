import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { KubeObject } from "../../api/types.js";
import { humanDuration, podStatusReason, toTable } from "./table.js";

// Captured from a real kube-apiserver (shared/reference sits beside the checkout).
const samples = new URL("../../../../../shared/reference/kube-api-samples/", import.meta.url);
const sample = (name: string) => JSON.parse(readFileSync(new URL(name, samples), "utf8")) as Record<string, unknown>;

function pod(status: Record<string, unknown>, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: "n", creationTimestamp: "2026-11-25T00:00:00Z", ...(extra.metadata ?? {}) },
    spec: extra.spec ?? { containers: [{ name: "a", image: "x" }] },
    status,
  };
}

test("humanDuration follows kubectl's AGE steps", () => {
  const s = 1000;
  assert.equal(humanDuration(5 * s), "5s");
  assert.equal(humanDuration(119 * s), "119s");
  assert.equal(humanDuration(150 * s), "2m30s");
  assert.equal(humanDuration(10 * 60 * s), "10m");
  assert.equal(humanDuration(3 * 3600 * s + 5 * 60 * s), "3h5m");
  assert.equal(humanDuration(30 * 3600 * s), "30h");
  assert.equal(humanDuration(3 * 86400 * s + 4 * 3600 * s), "3d4h");
  assert.equal(humanDuration(400 * 86400 * s), "400d");
  assert.equal(humanDuration(-5 * s), "<invalid>");
});

test("pod STATUS: phase, waiting and terminated reasons, init progress, Terminating", () => {
  assert.equal(podStatusReason(pod({ phase: "Pending" })).reason, "Pending");
  const running = pod({
    phase: "Running",
    containerStatuses: [{ name: "a", ready: true, restartCount: 2, state: { running: {} } }],
  });
  assert.deepEqual(
    { ...podStatusReason(running), lastRestart: undefined },
    { reason: "Running", ready: 1, total: 1, restarts: 2, lastRestart: undefined },
  );
  for (const waiting of ["ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff"]) {
    const p = pod({
      phase: "Pending",
      containerStatuses: [{ name: "a", ready: false, state: { waiting: { reason: waiting } } }],
    });
    assert.equal(podStatusReason(p).reason, waiting);
  }
  const init = pod(
    { phase: "Pending", initContainerStatuses: [{ name: "i", state: { waiting: { reason: "PodInitializing" } } }] },
    { spec: { initContainers: [{ name: "i" }], containers: [{ name: "a" }] } },
  );
  assert.equal(podStatusReason(init).reason, "Init:0/1");
  const initPull = pod(
    { phase: "Pending", initContainerStatuses: [{ name: "i", state: { waiting: { reason: "ErrImagePull" } } }] },
    { spec: { initContainers: [{ name: "i" }], containers: [{ name: "a" }] } },
  );
  assert.equal(podStatusReason(initPull).reason, "Init:ErrImagePull");
  const exited = pod({ phase: "Failed", containerStatuses: [{ name: "a", state: { terminated: { exitCode: 3 } } }] });
  assert.equal(podStatusReason(exited).reason, "ExitCode:3");
  const deleting = pod({ phase: "Running" }, { metadata: { name: "p", deletionTimestamp: "2026-11-25T00:00:01Z" } });
  assert.equal(podStatusReason(deleting).reason, "Terminating");
});

test("pod rows: READY ready/total and the wide columns", () => {
  const p = pod(
    {
      phase: "Running",
      podIP: "10.200.0.5",
      containerStatuses: [
        { name: "a", ready: true, state: { running: {} } },
        { name: "b", ready: false, state: { running: {} } },
      ],
    },
    { spec: { nodeName: "node1", containers: [{ name: "a" }, { name: "b" }] } },
  );
  const t = toTable([p], {
    group: "",
    resource: "pods",
    tableVersion: "v1",
    includeObject: "None",
    now: Date.parse("2026-11-25T00:00:30Z"),
  });
  assert.deepEqual(
    t.columnDefinitions.map((c) => c.name),
    ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"],
  );
  assert.deepEqual(t.rows[0]?.cells, ["p", "1/2", "Running", "0", "30s", "10.200.0.5", "node1", "<none>", "<none>"]);
  assert.equal(t.rows[0]?.object, undefined);
});

test("service rows match what a real kube-apiserver printed for the same Service", () => {
  const real = sample("table-services.json") as {
    columnDefinitions: { name: string; priority: number }[];
    rows: { cells: unknown[] }[];
  };
  const svc = sample("service-helloworld.json") as unknown as KubeObject;
  const t = toTable([svc], {
    group: "",
    resource: "services",
    tableVersion: "v1",
    includeObject: "Metadata",
    now: Date.parse(svc.metadata.creationTimestamp ?? "") + 1000,
    resourceVersion: "21217",
  });
  assert.deepEqual(
    t.columnDefinitions.map((c) => [c.name, c.priority]),
    real.columnDefinitions.map((c) => [c.name, c.priority]),
  );
  assert.deepEqual(t.rows[0]?.cells, real.rows[0]?.cells);
  assert.deepEqual(t.rows[0]?.object, {
    kind: "PartialObjectMetadata",
    apiVersion: "meta.k8s.io/v1",
    metadata: svc.metadata,
  });
  assert.deepEqual(t.metadata, { resourceVersion: "21217" });
});

test("custom resources: NAME AGE by default, printer columns when the CRD has them", () => {
  const cr: KubeObject = {
    apiVersion: "example.com/v1",
    kind: "Widget",
    metadata: { name: "w", creationTimestamp: "2026-11-25T00:00:00Z" },
    spec: { size: 3 },
  };
  const now = Date.parse("2026-11-25T00:01:00Z");
  const base = {
    group: "example.com",
    resource: "widgets",
    tableVersion: "v1" as const,
    includeObject: "None" as const,
    now,
  };
  assert.deepEqual(toTable([cr], base).rows[0]?.cells, ["w", "60s"]);
  const t = toTable([cr], { ...base, printerColumns: [{ name: "Size", type: "integer", jsonPath: ".spec.size" }] });
  assert.deepEqual(
    t.columnDefinitions.map((c) => c.name),
    ["Name", "Size"],
  );
  assert.deepEqual(t.rows[0]?.cells, ["w", 3]);
});

test("deployment and ReplicaSet rows: their counts, AGE, then the template's containers, images and selector", () => {
  const workload = (kind: string, spec: Record<string, unknown>, status: Record<string, unknown>): KubeObject => ({
    apiVersion: "apps/v1",
    kind,
    metadata: { name: "web", namespace: "n", creationTimestamp: "2026-11-25T00:00:00Z" },
    spec: {
      ...spec,
      selector: {
        matchLabels: { app: "web" },
        matchExpressions: [
          { key: "tier", operator: "In", values: ["a", "b"] },
          { key: "canary", operator: "DoesNotExist" },
        ],
      },
      template: {
        spec: {
          containers: [
            { name: "app", image: "web:1" },
            { name: "istio-proxy", image: "proxyv2" },
          ],
        },
      },
    },
    status,
  });
  const opts = (resource: string) => ({
    group: "apps",
    resource,
    tableVersion: "v1" as const,
    includeObject: "None" as const,
    now: Date.parse("2026-11-25T00:02:30Z"),
  });
  const wide = ["app,istio-proxy", "web:1,proxyv2", "app=web,tier in (a,b),!canary"];
  const d = toTable(
    [workload("Deployment", {}, { readyReplicas: 1, updatedReplicas: 1, availableReplicas: 0 })],
    opts("deployments"),
  );
  assert.deepEqual(
    d.columnDefinitions.map((c) => [c.name, c.priority]),
    [
      ["Name", 0],
      ["Ready", 0],
      ["Up-to-date", 0],
      ["Available", 0],
      ["Age", 0],
      ["Containers", 1],
      ["Images", 1],
      ["Selector", 1],
    ],
  );
  // No spec.replicas: the desired count is Kubernetes' default of 1.
  assert.deepEqual(d.rows[0]?.cells, ["web", "1/1", 1, 0, "2m30s", ...wide]);
  const rs = toTable([workload("ReplicaSet", { replicas: 3 }, { replicas: 2, readyReplicas: 1 })], opts("replicasets"));
  assert.deepEqual(
    rs.columnDefinitions.map((c) => c.name),
    ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"],
  );
  assert.deepEqual(rs.rows[0]?.cells, ["web", 3, 2, 1, "2m30s", ...wide]);
});
