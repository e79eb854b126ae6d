import assert from "node:assert/strict";
import { test } from "node:test";
import {
  desiredSlices,
  endpointsSubsets,
  maxEndpointsPerSlice,
  resolveTargetPort,
  sliceLabels,
} from "./endpointslice.js";
import type { Pod, Service } from "./objects.js";

function pod(
  name: string,
  opts: {
    ip?: string;
    ready?: boolean;
    deleting?: boolean;
    labels?: Record<string, string>;
    port?: number;
    node?: string;
    phase?: string;
  } = {},
): Pod {
  const p: Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "ns", uid: `uid-${name}`, labels: opts.labels ?? { app: "hw" } },
    spec: { containers: [{ name: "c", ports: [{ name: "http", containerPort: opts.port ?? 5000 }] }] },
    status: { phase: opts.phase ?? "Running", conditions: [{ type: "Ready", status: opts.ready ? "True" : "False" }] },
  };
  if (opts.ip) p.status!.podIP = opts.ip;
  if (opts.deleting) p.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
  if (opts.node) p.spec!.nodeName = opts.node;
  return p;
}

const svc = (extra: Partial<NonNullable<Service["spec"]>> = {}): Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "hw", namespace: "ns", labels: { team: "a" } },
  spec: { selector: { app: "hw" }, ports: [{ name: "http", port: 80, targetPort: "http" }], ...extra },
});

test("resolveTargetPort: numbers, numeric strings, named container ports per protocol, unset means the service port", () => {
  const p = pod("a");
  const cases: [Parameters<typeof resolveTargetPort>[0], number | undefined][] = [
    [{ port: 80, targetPort: 8080 }, 8080],
    [{ port: 80, targetPort: "9090" }, 9090],
    [{ port: 80, targetPort: "http" }, 5000],
    [{ port: 80, targetPort: "http", protocol: "UDP" }, undefined],
    [{ port: 80, targetPort: "missing" }, undefined],
    [{ port: 80 }, 80],
  ];
  for (const [sp, want] of cases) assert.equal(resolveTargetPort(sp, p), want, JSON.stringify(sp));
});

test("desiredSlices: selected pods with IPs, conditions from readiness and deletion, placeholder when empty", () => {
  const pods = [
    pod("ready", { ip: "10.0.0.1", ready: true, node: "n1" }),
    pod("unready", { ip: "10.0.0.2" }),
    pod("terminating", { ip: "10.0.0.3", ready: true, deleting: true }),
    pod("no-ip", { ready: true }),
    pod("other", { ip: "10.0.0.4", ready: true, labels: { app: "other" } }),
    pod("done", { ip: "10.0.0.5", phase: "Succeeded" }),
  ];
  const slices = desiredSlices(svc(), pods, new Map([["n1", "zone-a"]]));
  assert.equal(slices.length, 1);
  const s = slices[0]!;
  assert.deepEqual(s.ports, [{ name: "http", port: 5000, protocol: "TCP" }]);
  const byName = Object.fromEntries(s.endpoints.map((e) => [e.targetRef.name, e]));
  assert.deepEqual(Object.keys(byName).sort(), ["ready", "terminating", "unready"]);
  assert.deepEqual(byName.ready?.conditions, { ready: true, serving: true, terminating: false });
  assert.equal(byName.ready?.nodeName, "n1");
  assert.equal(byName.ready?.zone, "zone-a");
  assert.deepEqual(byName.unready?.conditions, { ready: false, serving: false, terminating: false });
  assert.deepEqual(byName.terminating?.conditions, { ready: false, serving: true, terminating: true });
  assert.deepEqual(byName.ready?.targetRef, { kind: "Pod", namespace: "ns", name: "ready", uid: "uid-ready" });

  assert.deepEqual(desiredSlices(svc(), [], new Map()), [{ ports: [], endpoints: [] }]);
  const published = desiredSlices(svc({ publishNotReadyAddresses: true }), [pod("u", { ip: "10.0.0.9" })], new Map());
  assert.deepEqual(published[0]?.endpoints[0]?.conditions, { ready: true, serving: true, terminating: false });
});

test("desiredSlices: pods whose named port resolves differently get separate slices; slices hold at most 100", () => {
  const split = desiredSlices(
    svc(),
    [pod("a", { ip: "10.0.0.1", port: 5000 }), pod("b", { ip: "10.0.0.2", port: 8080 })],
    new Map(),
  );
  assert.deepEqual(
    split.map((s) => [s.ports[0]?.port, s.endpoints.map((e) => e.targetRef.name)]),
    [
      [5000, ["a"]],
      [8080, ["b"]],
    ],
  );
  const many = Array.from({ length: 250 }, (_, i) =>
    pod(`p${String(i).padStart(3, "0")}`, { ip: `10.0.${Math.floor(i / 200)}.${(i % 200) + 1}` }),
  );
  const chunks = desiredSlices(svc(), many, new Map());
  assert.deepEqual(
    chunks.map((c) => c.endpoints.length),
    [maxEndpointsPerSlice, maxEndpointsPerSlice, 50],
  );
});

test("sliceLabels carry the Service's labels, its name, the manager and headlessness", () => {
  assert.deepEqual(sliceLabels(svc()), {
    team: "a",
    "kubernetes.io/service-name": "hw",
    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
  });
  assert.equal(sliceLabels(svc({ clusterIP: "None" }))["service.kubernetes.io/headless"], "");
});

test("endpointsSubsets splits ready and not-ready addresses and leaves terminating ones out", () => {
  const slices = desiredSlices(
    svc(),
    [
      pod("r", { ip: "10.0.0.1", ready: true }),
      pod("u", { ip: "10.0.0.2" }),
      pod("t", { ip: "10.0.0.3", ready: true, deleting: true }),
    ],
    new Map(),
  );
  const subsets = endpointsSubsets(slices) as {
    addresses?: { ip: string }[];
    notReadyAddresses?: { ip: string }[];
    ports?: unknown[];
  }[];
  assert.equal(subsets.length, 1);
  assert.deepEqual(
    subsets[0]?.addresses?.map((a) => a.ip),
    ["10.0.0.1"],
  );
  assert.deepEqual(
    subsets[0]?.notReadyAddresses?.map((a) => a.ip),
    ["10.0.0.2"],
  );
  assert.deepEqual(subsets[0]?.ports, [{ name: "http", port: 5000, protocol: "TCP" }]);
  assert.deepEqual(endpointsSubsets([{ ports: [], endpoints: [] }]), []);
});
