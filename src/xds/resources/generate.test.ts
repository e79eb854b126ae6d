import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Cluster } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { Cluster_LbPolicy } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import type { ClusterLoadAssignment } from "../../gen/envoy/config/endpoint/v3/endpoint_pb.js";
import type { Listener } from "../../gen/envoy/config/listener/v3/listener_pb.js";
import type { RouteConfiguration } from "../../gen/envoy/config/route/v3/route_pb.js";
import type { ProxyView } from "../../model/index.js";
import { allTypeUrls, PushContext, shortType, TypeUrl } from "./common.js";
import { generate, resourceToBinary, resourceToJson } from "./generate.js";
import {
  guideView,
  helloworldEndpoints,
  helloworldHost,
  helloworldService,
  proxylessClientCluster1,
  sleepSidecarCluster1,
} from "./guide-topology.js";
import { StaticServiceView } from "./static-view.js";

const testdata = join(import.meta.dirname, "testdata");
const mesh = { trustDomain: "cluster.local", dnsDomain: "cluster.local" };

function dump(proxy: ProxyView, names: Partial<Record<string, ReadonlySet<string>>>): string {
  const ctx = new PushContext(guideView(), mesh);
  const out: Record<string, unknown> = {};
  for (const typeUrl of allTypeUrls) {
    out[shortType(typeUrl)] = generate(ctx, proxy, typeUrl, names[typeUrl]).map((r) =>
      resourceToJson(typeUrl, r.message),
    );
  }
  return `${JSON.stringify(out, null, 2)}\n`;
}

function golden(file: string, actual: string): void {
  const path = join(testdata, file);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, "utf8"), `${file} differs; rerun with UPDATE_GOLDEN=1 and review the diff`);
}

test("golden: sleep sidecar in cluster1", () => {
  golden(
    "sleep-sidecar-cluster1.json",
    dump(sleepSidecarCluster1, {
      [TypeUrl.ClusterLoadAssignment]: new Set([
        `outbound|5000||${helloworldHost}`,
        "outbound|80||sleep.sample.svc.cluster.local",
      ]),
      [TypeUrl.RouteConfiguration]: new Set(["5000", "80"]),
    }),
  );
});

test("golden: proxyless gRPC client in cluster1", () => {
  const name = `${helloworldHost}:5000`;
  golden(
    "proxyless-client-cluster1.json",
    dump(proxylessClientCluster1, {
      [TypeUrl.Listener]: new Set([name]),
      [TypeUrl.RouteConfiguration]: new Set([name]),
      [TypeUrl.Cluster]: new Set([`outbound|5000||${helloworldHost}`]),
      [TypeUrl.ClusterLoadAssignment]: new Set([`outbound|5000||${helloworldHost}`]),
    }),
  );
});

test("generation is deterministic: same inputs, same bytes", () => {
  for (const typeUrl of allTypeUrls) {
    const a = generate(new PushContext(guideView(), mesh), sleepSidecarCluster1, typeUrl);
    const b = generate(new PushContext(guideView(), mesh), sleepSidecarCluster1, typeUrl);
    const bytes = (rs: typeof a) => rs.map((r) => Buffer.from(resourceToBinary(typeUrl, r.message)).toString("hex"));
    assert.deepEqual(bytes(a), bytes(b));
    assert.ok(a.length > 0, `${shortType(typeUrl)} produced nothing`);
  }
});

test("EDS holds both Kubernetes clusters' endpoints, each locality weighted", () => {
  const ctx = new PushContext(guideView(), mesh);
  const [cla] = generate(
    ctx,
    sleepSidecarCluster1,
    TypeUrl.ClusterLoadAssignment,
    new Set([`outbound|5000||${helloworldHost}`]),
  );
  const msg = cla?.message as ClusterLoadAssignment;
  const addrs = msg.endpoints.flatMap((l) =>
    l.lbEndpoints.map((e) =>
      e.hostIdentifier.case === "endpoint" && e.hostIdentifier.value.address?.address.case === "socketAddress"
        ? e.hostIdentifier.value.address.address.value.address
        : "",
    ),
  );
  assert.deepEqual(addrs, ["10.200.1.10", "10.200.2.10"]);
  for (const l of msg.endpoints) assert.equal(l.loadBalancingWeight, l.lbEndpoints.length);
});

test("EDS drops not-ready and terminating endpoints, and other clusters for cluster-local services", () => {
  const [v1, v2] = helloworldEndpoints as [(typeof helloworldEndpoints)[0], (typeof helloworldEndpoints)[0]];
  const view = guideView().withEndpoints(helloworldHost, [
    { ...v1, ready: false },
    v2,
    { ...v2, address: "10.200.2.99", terminating: true },
  ]);
  const ctx = new PushContext(view, mesh);
  const cla = generate(
    ctx,
    sleepSidecarCluster1,
    TypeUrl.ClusterLoadAssignment,
    new Set([`outbound|5000||${helloworldHost}`]),
  )[0]?.message as ClusterLoadAssignment;
  assert.equal(cla.endpoints.flatMap((l) => l.lbEndpoints).length, 1);

  // The same endpoints behind a cluster-local service: a cluster1 proxy sees none of cluster2's.
  const local = new StaticServiceView([
    { service: { ...helloworldService, clusterLocal: true }, endpoints: helloworldEndpoints },
  ]);
  const localCla = generate(
    new PushContext(local, mesh),
    sleepSidecarCluster1,
    TypeUrl.ClusterLoadAssignment,
    new Set([`outbound|5000||${helloworldHost}`]),
  )[0]?.message as ClusterLoadAssignment;
  assert.deepEqual(
    localCla.endpoints.flatMap((l) =>
      l.lbEndpoints.map((e) => String(e.metadata?.filterMetadata.istio?.workload ?? "").split(";")[4]),
    ),
    ["cluster1"],
  );
});

test("a TCP service gets a tcp_proxy chain matching its ClusterIP in the proxy's cluster on 0.0.0.0_<port>", () => {
  const db = {
    ...helloworldService,
    hostname: "db.sample.svc.cluster.local",
    name: "db",
    ports: [{ name: "tcp-db", port: 5432, protocol: "TCP" as const }],
  };
  const ctx = new PushContext(new StaticServiceView([{ service: db, endpoints: [] }]), mesh);
  const l = generate(ctx, sleepSidecarCluster1, TypeUrl.Listener).find((x) => x.name === "0.0.0.0_5432")
    ?.message as Listener;
  const chain = l.filterChains[0];
  assert.equal(chain?.name, "outbound|5432||db.sample.svc.cluster.local");
  assert.deepEqual(
    chain?.filterChainMatch?.prefixRanges.map((p) => `${p.addressPrefix}/${p.prefixLen}`),
    ["10.201.0.20/32"],
  );
  assert.equal(chain?.filters[0]?.name, "envoy.filters.network.tcp_proxy");
  assert.equal(l.bindToPort, false);
});

test("proxyless clusters use ROUND_ROBIN and no SDS; sidecars LEAST_REQUEST with mTLS match", () => {
  const ctx = new PushContext(guideView(), mesh);
  const name = `outbound|5000||${helloworldHost}`;
  const pl = generate(ctx, proxylessClientCluster1, TypeUrl.Cluster, new Set([name]))[0]?.message as Cluster;
  const sc = generate(ctx, sleepSidecarCluster1, TypeUrl.Cluster).find((c) => c.name === name)?.message as Cluster;
  assert.equal(pl.lbPolicy, Cluster_LbPolicy.ROUND_ROBIN);
  assert.equal(pl.transportSocketMatches.length, 0);
  assert.equal(sc.lbPolicy, Cluster_LbPolicy.LEAST_REQUEST);
  assert.equal(sc.transportSocketMatches[0]?.name, "tlsMode-istio");
});

test("RDS domains: short names only from the service's namespace, VIP of the proxy's own cluster", () => {
  const ctx = new PushContext(guideView(), mesh);
  const rc = generate(
    ctx,
    { ...sleepSidecarCluster1, namespace: "other" },
    TypeUrl.RouteConfiguration,
    new Set(["5000"]),
  )[0]?.message as RouteConfiguration;
  const domains = rc.virtualHosts[0]?.domains ?? [];
  assert.ok(!domains.includes("helloworld"));
  assert.ok(domains.includes("helloworld.sample:5000"));
  assert.ok(domains.includes("10.201.0.20"));
  assert.ok(!domains.includes("10.201.1.20"));
  assert.equal(rc.virtualHosts.at(-1)?.name, "allow_any");
});
