import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { silentLogger } from "../base/index.js";
import { KubeClient } from "../kube/index.js";
import { FakeApiServer } from "../../test/support/fake-apiserver.js";
import { Aggregate, type RegistryChange } from "./aggregate.js";
import { ClusterRegistry } from "./cluster-registry.js";

const host = "helloworld.sample.svc.cluster.local";

function pod(name: string, ip: string, labels: Record<string, string> = {}) {
  return {
    metadata: { name, namespace: "sample", labels: { app: "helloworld", ...labels } },
    spec: { serviceAccountName: "helloworld", nodeName: "node1" },
    status: { podIP: ip },
  };
}

function slice(addresses: string[]) {
  return {
    metadata: { name: "helloworld-x1", namespace: "sample", labels: { "kubernetes.io/service-name": "helloworld" } },
    addressType: "IPv4",
    endpoints: addresses.map((a, i) => ({
      addresses: [a],
      conditions: { ready: true },
      nodeName: "node1",
      targetRef: { kind: "Pod", name: `p${i}`, namespace: "sample" },
    })),
    ports: [{ name: "http", port: 5000 }],
  };
}

describe("ClusterRegistry against an API server", () => {
  it("turns Services, EndpointSlices, Pods, Nodes and the system namespace into the cluster's shard, and follows changes", async (t) => {
    const server = new FakeApiServer();
    await server.start();
    server.put("namespaces", {
      metadata: { name: "istio-system", labels: { "topology.istio.io/network": "network1" } },
    });
    server.put("nodes", {
      metadata: {
        name: "node1",
        labels: { "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": "z1" },
      },
    });
    server.put("services", {
      metadata: { name: "helloworld", namespace: "sample" },
      spec: { clusterIP: "10.201.1.20", ports: [{ name: "http", port: 5000 }] },
    });
    server.put("pods", pod("p0", "10.200.1.5"));
    server.put("endpointslices", slice(["10.200.1.5"]));

    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    const agg = new Aggregate({ ownClusterId: "cluster1", log: silentLogger });
    const shard = agg.createShard("cluster2");
    agg.activate(shard);
    const changes: RegistryChange[] = [];
    let wake: (() => void) | undefined;
    agg.onChange((c) => {
      changes.push(c);
      wake?.();
    });
    const nextChange = async () => {
      const n = changes.length;
      while (changes.length === n) await new Promise<void>((r) => (wake = r));
      return changes[changes.length - 1];
    };
    const registry = new ClusterRegistry({
      clusterId: "cluster2",
      client: new KubeClient(kc),
      shard,
      trustDomain: "cluster.local",
      defaultNetwork: "",
      systemNamespace: "istio-system",
      log: silentLogger,
    });
    const abort = new AbortController();
    const run = registry.run(abort.signal);
    t.after(async () => {
      abort.abort();
      await run;
      await server.stop();
    });
    await registry.waitForSync(abort.signal);
    assert.equal(registry.hasSynced(), true);

    let view = agg.view();
    assert.deepEqual([...(view.service(host)?.clusterVips ?? [])], [["cluster2", "10.201.1.20"]]);
    const eps = view.endpoints(host, "http").get("cluster2") ?? [];
    assert.deepEqual(
      eps.map((e) => [
        e.address,
        e.port,
        e.network,
        e.locality.zone,
        e.serviceAccount,
        e.labels["topology.istio.io/cluster"],
      ]),
      [["10.200.1.5", 5000, "network1", "z1", "spiffe://cluster.local/ns/sample/sa/helloworld", "cluster2"]],
    );

    // A new endpoint is an EDS-only change for this host.
    server.put("pods", pod("p1", "10.200.1.6"));
    server.put("endpointslices", slice(["10.200.1.5", "10.200.1.6"]));
    let c = await nextChange();
    while ((agg.view().endpoints(host, "http").get("cluster2")?.length ?? 0) < 2) c = await nextChange();
    assert.equal(c?.full, false);
    assert.deepEqual([...(c?.edsHostnames ?? [])], [host]);

    // A pod's label change reaches its endpoint.
    server.put("pods", pod("p1", "10.200.1.6", { version: "v2" }));
    while (agg.view().endpoints(host, "http").get("cluster2")?.[1]?.labels.version !== "v2") await nextChange();

    // The service going away takes its endpoints with it: a full push.
    server.remove("services", "sample", "helloworld");
    c = await nextChange();
    assert.equal(c?.full, true);
    view = agg.view();
    assert.equal(view.service(host), undefined);
    assert.equal(view.endpoints(host, "http").size, 0);
  });
});
