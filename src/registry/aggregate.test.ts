import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../base/index.js";
import type { MeshEndpoint } from "../model/index.js";
import { Aggregate, type RegistryChange } from "./aggregate.js";
import type { ClusterService } from "./convert.js";

const host = "helloworld.sample.svc.cluster.local";
/** The addresses of cluster2's endpoints of `host`'s http port in the aggregate's current view. */
const cluster2Addresses = (agg: Aggregate) =>
  agg
    .view()
    .endpoints(host, "http")
    .get("cluster2")
    ?.map((e) => e.address);
const svc = (vip: string, port = 5000): ClusterService => ({
  hostname: host,
  name: "helloworld",
  namespace: "sample",
  ports: [{ name: "http", port, protocol: "HTTP" }],
  vip,
  clusterLocal: false,
});
const ep = (clusterId: string, address: string, sa = "helloworld"): MeshEndpoint => ({
  address,
  port: 5000,
  servicePortName: "http",
  clusterId,
  network: "network1",
  locality: { region: "", zone: "", subZone: "" },
  labels: {},
  serviceAccount: `spiffe://cluster.local/ns/sample/sa/${sa}`,
  tlsMode: "istio",
  workloadName: "helloworld-v1",
  namespace: "sample",
  podName: address,
  nodeName: "n",
  ready: true,
  terminating: false,
});

/** The next notification of `agg`. */
const next = (agg: Aggregate) =>
  new Promise<RegistryChange>((resolve) => {
    const off = agg.onChange((c) => {
      off();
      resolve(c);
    });
  });

describe("Aggregate", () => {
  it("merges a hostname across clusters: own cluster's ports, every VIP, union of service accounts", async () => {
    const agg = new Aggregate({ ownClusterId: "cluster1", log: silentLogger });
    const c2 = agg.createShard("cluster2");
    agg.activate(c2);
    const c1 = agg.createShard("cluster1");
    agg.activate(c1);
    c2.setService(host, svc("10.201.1.20", 5001));
    c2.setEndpoints(host, [ep("cluster2", "10.200.2.5", "v2")]);
    c1.setService(host, svc("10.201.0.20"));
    c1.setEndpoints(host, [ep("cluster1", "10.200.1.5", "v1")]);
    const view = agg.view();
    const s = view.service(host);
    assert.ok(s);
    assert.deepEqual(
      s.ports,
      [{ name: "http", port: 5000, protocol: "HTTP" }],
      "the own cluster (cluster1) wins, though added last",
    );
    assert.deepEqual(
      [...s.clusterVips],
      [
        ["cluster1", "10.201.0.20"],
        ["cluster2", "10.201.1.20"],
      ],
    );
    assert.deepEqual(s.serviceAccounts, [
      "spiffe://cluster.local/ns/sample/sa/v1",
      "spiffe://cluster.local/ns/sample/sa/v2",
    ]);
    assert.deepEqual([...view.endpoints(host, "http").keys()], ["cluster1", "cluster2"]);
    assert.deepEqual(view.endpoints(host, "grpc").size, 0);
    assert.deepEqual(
      view.servicesOfWorkload("cluster2", "10.200.2.5").map((x) => x.hostname),
      [host],
    );
    assert.deepEqual(view.servicesOfWorkload("cluster1", "10.200.2.5"), []);
    assert.equal(agg.view(), view, "unchanged registry, same snapshot");
  });

  it("classifies changes: endpoints only -> EDS for that host; a new service account, a service or a cluster -> full", async () => {
    const agg = new Aggregate({ ownClusterId: "cluster1", log: silentLogger });
    const c1 = agg.createShard("cluster1");
    let n = next(agg);
    agg.activate(c1);
    c1.setService(host, svc("10.201.0.20"));
    c1.setEndpoints(host, [ep("cluster1", "10.200.1.5")]);
    assert.equal((await n).full, true);

    n = next(agg);
    c1.setEndpoints(host, [ep("cluster1", "10.200.1.5"), ep("cluster1", "10.200.1.6")]);
    let c = await n;
    assert.equal(c.full, false);
    assert.deepEqual([...c.edsHostnames], [host]);

    n = next(agg);
    c1.setEndpoints(host, [ep("cluster1", "10.200.1.6", "other")]);
    assert.equal((await n).full, true, "service accounts changed");

    n = next(agg);
    c1.setService(host, svc("10.201.0.21"));
    assert.equal((await n).full, true);

    // Writing the same thing again notifies nobody.
    let notified = false;
    const off = agg.onChange(() => {
      notified = true;
    });
    c1.setService(host, svc("10.201.0.21"));
    c1.setEndpoints(host, [ep("cluster1", "10.200.1.6", "other")]);
    await Promise.resolve();
    await Promise.resolve();
    off();
    assert.equal(notified, false);

    const c2 = agg.createShard("cluster2");
    c2.setService(host, svc("10.201.1.20"));
    n = next(agg);
    agg.activate(c2);
    c = await n;
    assert.equal(c.full, true);
    assert.match(c.reasons.join(), /cluster cluster2 added/);
  });

  it("hides a shard until activated, and a replaced shard's writes stop counting (make-before-break)", async () => {
    const agg = new Aggregate({ ownClusterId: "cluster1", log: silentLogger });
    const old = agg.createShard("cluster2");
    agg.activate(old);
    old.setService(host, svc("10.201.1.20"));
    old.setEndpoints(host, [ep("cluster2", "10.200.2.5")]);
    const fresh = agg.createShard("cluster2");
    fresh.setService(host, svc("10.201.1.20"));
    fresh.setEndpoints(host, [ep("cluster2", "10.200.2.9")]);
    assert.deepEqual(cluster2Addresses(agg), ["10.200.2.5"]);
    agg.activate(fresh);
    assert.deepEqual(cluster2Addresses(agg), ["10.200.2.9"]);
    old.setEndpoints(host, []);
    agg.removeCluster("cluster2", old);
    assert.deepEqual(cluster2Addresses(agg), ["10.200.2.9"]);
  });

  it("removing a cluster drops all its services and endpoints with a full push", async () => {
    const agg = new Aggregate({ ownClusterId: "cluster1", log: silentLogger });
    const c1 = agg.createShard("cluster1");
    const c2 = agg.createShard("cluster2");
    agg.activate(c1);
    agg.activate(c2);
    c1.setService(host, svc("10.201.0.20"));
    c1.setEndpoints(host, [ep("cluster1", "10.200.1.5")]);
    c2.setService(host, svc("10.201.1.20"));
    c2.setEndpoints(host, [ep("cluster2", "10.200.2.5")]);
    await next(agg);
    const n = next(agg);
    agg.removeCluster("cluster2");
    assert.equal((await n).full, true);
    const view = agg.view();
    assert.deepEqual([...view.endpoints(host, "http").keys()], ["cluster1"]);
    assert.deepEqual([...(view.service(host)?.clusterVips.keys() ?? [])], ["cluster1"]);
    assert.deepEqual(agg.clusterIds(), ["cluster1"]);
  });
});
