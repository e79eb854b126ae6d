import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EndpointSlice, Namespace, Node, Pod, Service } from "../kube/index.js";
import {
  type EndpointContext,
  localityLabel,
  localityOf,
  networkOf,
  toClusterService,
  toMeshEndpoints,
  workloadNameOf,
} from "./convert.js";

const helloworld: Service = {
  metadata: { name: "helloworld", namespace: "sample" },
  spec: {
    clusterIP: "10.201.0.20",
    ports: [{ name: "http", port: 5000, targetPort: 5000 }],
    selector: { app: "helloworld" },
  },
};

const pod = (name: string, ip: string, labels: Record<string, string> = {}, sa = "default"): Pod => ({
  metadata: {
    name,
    namespace: "sample",
    labels: { app: "helloworld", ...labels },
    ownerReferences: [{ kind: "ReplicaSet", name: "helloworld-v1-7b8f9c6d5", controller: true }],
  },
  spec: { serviceAccountName: sa, nodeName: "node1" },
  status: { podIP: ip },
});

const slice = (
  endpoints: EndpointSlice["endpoints"],
  ports: EndpointSlice["ports"] = [{ name: "http", port: 5000 }],
): EndpointSlice => ({
  metadata: { name: "helloworld-abcde", namespace: "sample", labels: { "kubernetes.io/service-name": "helloworld" } },
  addressType: "IPv4",
  endpoints,
  ports,
});

function ctx(pods: Pod[], extra: Partial<EndpointContext> = {}): EndpointContext {
  return {
    clusterId: "cluster2",
    trustDomain: "cluster.local",
    defaultNetwork: "network1",
    systemNamespace: undefined,
    pod: (ns, name, ip) =>
      pods.find((p) => p.metadata.namespace === ns && (p.metadata.name === name || p.status?.podIP === ip)),
    node: () => ({
      metadata: {
        name: "node1",
        labels: { "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/zone": "z1" },
      },
    }),
    ...extra,
  };
}

describe("toClusterService", () => {
  const cases: [string, Service, ReturnType<typeof toClusterService>][] = [
    [
      "a ClusterIP service",
      helloworld,
      {
        hostname: "helloworld.sample.svc.cluster.local",
        name: "helloworld",
        namespace: "sample",
        ports: [{ name: "http", port: 5000, protocol: "HTTP" }],
        vip: "10.201.0.20",
        clusterLocal: false,
      },
    ],
    [
      "a headless service with appProtocol",
      {
        metadata: { name: "db", namespace: "x" },
        spec: { clusterIP: "None", ports: [{ name: "p", port: 7, appProtocol: "grpc" }] },
      },
      {
        hostname: "db.x.svc.cluster.local",
        name: "db",
        namespace: "x",
        ports: [{ name: "p", port: 7, protocol: "GRPC" }],
        vip: undefined,
        clusterLocal: false,
      },
    ],
    [
      "kube-dns, which is cluster-local",
      {
        metadata: { name: "kube-dns", namespace: "kube-system" },
        spec: { clusterIP: "10.201.0.10", ports: [{ name: "dns-tcp", port: 53 }] },
      },
      {
        hostname: "kube-dns.kube-system.svc.cluster.local",
        name: "kube-dns",
        namespace: "kube-system",
        ports: [{ name: "dns-tcp", port: 53, protocol: "UNKNOWN" }],
        vip: "10.201.0.10",
        clusterLocal: true,
      },
    ],
    [
      "an ExternalName service (no endpoints to serve)",
      { metadata: { name: "e", namespace: "x" }, spec: { type: "ExternalName", externalName: "example.com" } },
      undefined,
    ],
  ];
  for (const [what, input, want] of cases)
    it(`converts ${what}`, () => assert.deepEqual(toClusterService(input), want));
});

describe("toMeshEndpoints", () => {
  const cs = toClusterService(helloworld);
  assert.ok(cs);

  it("labels an endpoint with cluster, network, locality and node, and gives it a SPIFFE identity", () => {
    const p = pod(
      "helloworld-v1-7b8f9c6d5-x2x2x",
      "10.200.1.5",
      { "security.istio.io/tlsMode": "istio" },
      "helloworld",
    );
    const eps = toMeshEndpoints(
      cs,
      [
        slice([
          {
            addresses: ["10.200.1.5"],
            conditions: { ready: true },
            targetRef: { kind: "Pod", name: p.metadata.name, namespace: "sample" },
          },
        ]),
      ],
      ctx([p]),
    );
    assert.deepEqual(eps, [
      {
        address: "10.200.1.5",
        port: 5000,
        servicePortName: "http",
        clusterId: "cluster2",
        network: "network1",
        locality: { region: "r1", zone: "z1", subZone: "" },
        labels: {
          app: "helloworld",
          "security.istio.io/tlsMode": "istio",
          "topology.kubernetes.io/region": "r1",
          "topology.kubernetes.io/zone": "z1",
          "topology.istio.io/cluster": "cluster2",
          "kubernetes.io/hostname": "node1",
          "topology.istio.io/network": "network1",
        },
        serviceAccount: "spiffe://cluster.local/ns/sample/sa/helloworld",
        tlsMode: "istio",
        workloadName: "helloworld-v1",
        namespace: "sample",
        podName: "helloworld-v1-7b8f9c6d5-x2x2x",
        nodeName: "node1",
        ready: true,
        terminating: false,
      },
    ]);
  });

  it("keeps not-ready and terminating endpoints with their flags, and finds pods by IP without a targetRef", () => {
    const eps = toMeshEndpoints(
      cs,
      [
        slice([
          { addresses: ["10.200.1.6"], conditions: { ready: false } },
          { addresses: ["10.200.1.7"], conditions: { ready: false, terminating: true } },
        ]),
      ],
      ctx([pod("a", "10.200.1.6"), pod("b", "10.200.1.7")]),
    );
    assert.deepEqual(
      eps.map((e) => [e.podName, e.ready, e.terminating, e.tlsMode]),
      [
        ["a", false, false, "disabled"],
        ["b", false, true, "disabled"],
      ],
    );
  });

  it("drops slice ports the service does not name, FQDN slices, and duplicates across slices", () => {
    const base = slice(
      [{ addresses: ["10.200.1.8"] }],
      [
        { name: "http", port: 5000 },
        { name: "metrics", port: 9090 },
      ],
    );
    const fqdn: EndpointSlice = { ...base, metadata: { ...base.metadata, name: "z" }, addressType: "FQDN" };
    const dup: EndpointSlice = { ...base, metadata: { ...base.metadata, name: "y" } };
    const eps = toMeshEndpoints(cs, [base, dup, fqdn], ctx([]));
    assert.deepEqual(
      eps.map((e) => `${e.address}:${e.port}/${e.servicePortName}`),
      ["10.200.1.8:5000/http"],
    );
    assert.equal(eps[0]?.serviceAccount, "", "no pod, no identity");
  });

  it("matches an unnamed slice port to the unnamed service port", () => {
    const svc = toClusterService({
      metadata: { name: "s", namespace: "sample" },
      spec: { clusterIP: "10.201.0.9", ports: [{ port: 80, targetPort: 8080 }] },
    });
    assert.ok(svc);
    const eps = toMeshEndpoints(svc, [slice([{ addresses: ["10.200.1.9"] }], [{ port: 8080 }])], ctx([]));
    assert.deepEqual(
      eps.map((e) => [e.port, e.servicePortName]),
      [[8080, ""]],
    );
  });
});

describe("network, locality and workload", () => {
  const sys = (label?: string): Namespace => ({
    metadata: { name: "istio-system", ...(label ? { labels: { "topology.istio.io/network": label } } : {}) },
  });
  const cases: [string, Pod | undefined, Namespace | undefined, string][] = [
    [
      "the pod's label first",
      pod("p", "1.1.1.1", { "topology.istio.io/network": "net-pod" }),
      sys("net-ns"),
      "net-pod",
    ],
    ["then the system namespace's label", pod("p", "1.1.1.1"), sys("net-ns"), "net-ns"],
    ["then the configured default", pod("p", "1.1.1.1"), sys(), "network1"],
    ["with no pod at all", undefined, undefined, "network1"],
  ];
  for (const [what, p, ns, want] of cases)
    it(`takes the network from ${what}`, () => assert.equal(networkOf(p, ns, "network1"), want));

  it("prefers the istio-locality label over node labels", () => {
    const node: Node = {
      metadata: {
        name: "n",
        labels: {
          "topology.kubernetes.io/region": "r",
          "topology.kubernetes.io/zone": "z",
          "topology.istio.io/subzone": "s",
        },
      },
    };
    assert.deepEqual(localityOf(pod("p", "1", { "istio-locality": "us.east.a" }), node), {
      region: "us",
      zone: "east",
      subZone: "a",
    });
    assert.equal(localityLabel(localityOf(undefined, node)), "r/z/s");
    assert.equal(localityLabel(localityOf(undefined, undefined)), "");
  });

  it("names the workload after the Deployment behind a ReplicaSet", () => {
    assert.equal(workloadNameOf(pod("x", "1")), "helloworld-v1");
    assert.equal(workloadNameOf({ metadata: { name: "bare" } }), "bare");
  });
});
