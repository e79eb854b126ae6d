import assert from "node:assert/strict";
import { test } from "node:test";
import { proxyFromNode } from "./node.js";

const defaults = { clusterId: "cluster1", network: "network1", meshId: "mesh1" };

test("an Istio sidecar node ID and metadata become a ProxyView", () => {
  const r = proxyFromNode(
    {
      id: "sidecar~10.200.2.11~sleep-5d8b7c9f4-fghij.sample~sample.svc.cluster.local",
      userAgentName: "envoy",
      metadata: {
        CLUSTER_ID: "cluster2",
        NETWORK: "network1",
        MESH_ID: "mesh1",
        LABELS: { app: "sleep", "pod-template-hash": "5d8b7c9f4", n: 1 },
        NAMESPACE: "sample",
        INSTANCE_IPS: "10.200.2.11",
      },
    },
    defaults,
  );
  assert.deepEqual(r, {
    ok: true,
    value: {
      id: "sidecar~10.200.2.11~sleep-5d8b7c9f4-fghij.sample~sample.svc.cluster.local",
      type: "sidecar",
      ip: "10.200.2.11",
      podName: "sleep-5d8b7c9f4-fghij",
      namespace: "sample",
      clusterId: "cluster2",
      network: "network1",
      meshId: "mesh1",
      labels: { app: "sleep", "pod-template-hash": "5d8b7c9f4" },
      dnsDomain: "sample.svc.cluster.local",
    },
  });
});

test("gRPC's own client is proxyless, by user agent or GENERATOR=grpc; CLUSTER_ID defaults to the control plane's", () => {
  const byAgent = proxyFromNode(
    { id: "sidecar~10.0.0.9~c-0.ns~ns.svc.cluster.local", userAgentName: "gRPC Node Pure JS", metadata: {} },
    defaults,
  );
  assert.ok(byAgent.ok && byAgent.value.type === "proxyless" && byAgent.value.clusterId === "cluster1");
  const byMeta = proxyFromNode(
    { id: "sidecar~10.0.0.9~c-0.ns~ns.svc.cluster.local", userAgentName: "", metadata: { GENERATOR: "grpc" } },
    defaults,
  );
  assert.ok(byMeta.ok && byMeta.value.type === "proxyless");
});

test("a non-Istio node ID works when metadata carries the IP and namespace", () => {
  const r = proxyFromNode(
    { id: "client-7", userAgentName: "", metadata: { INSTANCE_IPS: "10.0.0.7,fd00::7", NAMESPACE: "ns" } },
    defaults,
  );
  assert.ok(r.ok && r.value.ip === "10.0.0.7" && r.value.namespace === "ns");
});

test("an unusable node is refused with a reason naming the ID", () => {
  const r = proxyFromNode({ id: "client-7", userAgentName: "", metadata: {} }, defaults);
  assert.equal(r.ok, false);
  assert.match(r.ok ? "" : r.reasons.join(), /"client-7"/);
  const empty = proxyFromNode({ id: "", userAgentName: "", metadata: {} }, defaults);
  assert.equal(empty.ok, false);
});
