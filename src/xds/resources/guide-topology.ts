/**
 * The guide's topology as a ServiceView, for golden tests, server tests and benchmarks:
 * helloworld (port 5000 "http") with v1 in cluster1 and v2 in cluster2, sleep (port 80 "http")
 * in both, ClusterIPs differing per cluster, every pod with a sidecar (tlsMode istio).
 */
import type { ClusterId, MeshEndpoint, MeshService, ProxyView } from "../../model/index.js";
import { spiffeId } from "../../model/index.js";
import { StaticServiceView } from "./static-view.js";

const td = "cluster.local";

function endpoint(o: {
  address: string;
  port: number;
  portName: string;
  clusterId: ClusterId;
  app: string;
  version?: string;
  workload: string;
  pod: string;
  sa: string;
}): MeshEndpoint {
  return {
    address: o.address,
    port: o.port,
    servicePortName: o.portName,
    clusterId: o.clusterId,
    network: "network1",
    locality: { region: "", zone: "", subZone: "" },
    labels: {
      app: o.app,
      ...(o.version ? { version: o.version } : {}),
      "security.istio.io/tlsMode": "istio",
      "topology.istio.io/cluster": o.clusterId,
      "topology.istio.io/network": "network1",
    },
    serviceAccount: spiffeId(td, "sample", o.sa),
    tlsMode: "istio",
    workloadName: o.workload,
    namespace: "sample",
    podName: o.pod,
    nodeName: `${o.clusterId}-node`,
    ready: true,
    terminating: false,
  };
}

export const helloworldHost = "helloworld.sample.svc.cluster.local";
export const sleepHost = "sleep.sample.svc.cluster.local";

export const helloworldService: MeshService = {
  hostname: helloworldHost,
  name: "helloworld",
  namespace: "sample",
  ports: [{ name: "http", port: 5000, protocol: "HTTP" }],
  clusterVips: new Map([
    ["cluster1", "10.201.0.20"],
    ["cluster2", "10.201.1.20"],
  ]),
  serviceAccounts: [spiffeId(td, "sample", "default")],
  clusterLocal: false,
};

export const sleepService: MeshService = {
  hostname: sleepHost,
  name: "sleep",
  namespace: "sample",
  ports: [{ name: "http", port: 80, protocol: "HTTP" }],
  clusterVips: new Map([
    ["cluster1", "10.201.0.30"],
    ["cluster2", "10.201.1.30"],
  ]),
  serviceAccounts: [spiffeId(td, "sample", "sleep")],
  clusterLocal: false,
};

export const helloworldEndpoints: readonly MeshEndpoint[] = [
  endpoint({
    address: "10.200.1.10",
    port: 5000,
    portName: "http",
    clusterId: "cluster1",
    app: "helloworld",
    version: "v1",
    workload: "helloworld-v1",
    pod: "helloworld-v1-6d65866976-7n8nq",
    sa: "default",
  }),
  endpoint({
    address: "10.200.2.10",
    port: 5000,
    portName: "http",
    clusterId: "cluster2",
    app: "helloworld",
    version: "v2",
    workload: "helloworld-v2",
    pod: "helloworld-v2-7d8c4b6c5b-xw2kq",
    sa: "default",
  }),
];

export const sleepEndpoints: readonly MeshEndpoint[] = [
  endpoint({
    address: "10.200.1.11",
    port: 80,
    portName: "http",
    clusterId: "cluster1",
    app: "sleep",
    workload: "sleep",
    pod: "sleep-5d8b7c9f4-abcde",
    sa: "sleep",
  }),
  endpoint({
    address: "10.200.2.11",
    port: 80,
    portName: "http",
    clusterId: "cluster2",
    app: "sleep",
    workload: "sleep",
    pod: "sleep-5d8b7c9f4-fghij",
    sa: "sleep",
  }),
];

/** The guide's services and endpoints in both Kubernetes clusters. */
export function guideView(): StaticServiceView {
  return new StaticServiceView([
    { service: helloworldService, endpoints: helloworldEndpoints },
    { service: sleepService, endpoints: sleepEndpoints },
  ]);
}

/** The sleep pod's sidecar in cluster1, as its node would describe it. */
export const sleepSidecarCluster1: ProxyView = {
  id: "sidecar~10.200.1.11~sleep-5d8b7c9f4-abcde.sample~sample.svc.cluster.local",
  type: "sidecar",
  ip: "10.200.1.11",
  podName: "sleep-5d8b7c9f4-abcde",
  namespace: "sample",
  clusterId: "cluster1",
  network: "network1",
  meshId: "mesh1",
  labels: { app: "sleep" },
  dnsDomain: "sample.svc.cluster.local",
};

/** A proxyless gRPC client pod in cluster1's sample namespace. */
export const proxylessClientCluster1: ProxyView = {
  id: "sidecar~10.200.1.12~grpc-client-0.sample~sample.svc.cluster.local",
  type: "proxyless",
  ip: "10.200.1.12",
  podName: "grpc-client-0",
  namespace: "sample",
  clusterId: "cluster1",
  network: "network1",
  meshId: "mesh1",
  labels: { app: "grpc-client" },
  dnsDomain: "sample.svc.cluster.local",
};
