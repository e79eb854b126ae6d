/**
 * The control plane judged by gRPC's own xDS client (@grpc/grpc-js-xds, proxyless mode). That
 * package registers process-wide state (the xds: resolver, one shared ADS stream), so every
 * scenario that needs it lives in this one file.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as grpcXds from "@grpc/grpc-js-xds";
import type { MeshEndpoint, MeshService } from "../../model/index.js";
import { StaticServiceView } from "../resources/static-view.js";
import { XdsServer } from "./server.js";

const host = "echo.sample.svc.cluster.local";
const echoPath = "/isthmus.test.Echo/Say";
const bytes = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};
const echoService = {
  Say: { path: echoPath, requestStream: false, responseStream: false, ...bytes },
} satisfies grpc.ServiceDefinition;

/** A gRPC server that answers every call with its own name, standing for a pod in one Kubernetes cluster. */
async function startBackend(name: string): Promise<{ port: number; served: number[]; close: () => void }> {
  const server = new grpc.Server();
  const served: number[] = [];
  server.addService(echoService, {
    Say: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      served.push(Date.now());
      cb(null, Buffer.from(name));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { port, served, close: () => server.forceShutdown() };
}

function endpoint(clusterId: string, port: number, pod: string): MeshEndpoint {
  return {
    address: "127.0.0.1",
    port,
    servicePortName: "grpc",
    clusterId,
    network: "network1",
    locality: { region: "", zone: "", subZone: "" },
    labels: { app: "echo", "topology.istio.io/cluster": clusterId },
    serviceAccount: "spiffe://cluster.local/ns/sample/sa/default",
    tlsMode: "disabled",
    workloadName: "echo",
    namespace: "sample",
    podName: pod,
    nodeName: `${clusterId}-node`,
    ready: true,
    terminating: false,
  };
}

const service: MeshService = {
  hostname: host,
  name: "echo",
  namespace: "sample",
  ports: [{ name: "grpc", port: 5000, protocol: "GRPC" }],
  clusterVips: new Map([
    ["cluster1", "10.201.0.40"],
    ["cluster2", "10.201.1.40"],
  ]),
  serviceAccounts: ["spiffe://cluster.local/ns/sample/sa/default"],
  clusterLocal: false,
};

test("grpc-js-xds (proxyless) reaches both Kubernetes clusters, and stops using a removed one within 1 s", async (t) => {
  const b1 = await startBackend("echo-cluster1");
  const b2 = await startBackend("echo-cluster2");
  // One hook, in order: the gRPC channel first (so the xDS client drops its watches), then the
  // control plane, then the backends.
  const closers: (() => unknown)[] = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
  });
  closers.push(() => {
    b1.close();
    b2.close();
  });
  const both = new StaticServiceView([
    { service, endpoints: [endpoint("cluster1", b1.port, "echo-1"), endpoint("cluster2", b2.port, "echo-2")] },
  ]);
  const state = { view: both };
  // Istio's default debounce: the 1 s budget below includes it.
  const xds = new XdsServer({ view: () => state.view, clusterId: "cluster1" });
  closers.push(() => xds.close(200));
  const xdsPort = await xds.listen({ host: "127.0.0.1", port: 0 });

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      { server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] },
    ],
    node: {
      id: "sidecar~127.0.0.1~grpc-client-0.sample~sample.svc.cluster.local",
      locality: {},
      metadata: { CLUSTER_ID: "cluster1", NAMESPACE: "sample", GENERATOR: "grpc" },
    },
  });
  grpcXds.register();
  const Echo = grpc.makeGenericClientConstructor(echoService, "Echo");
  const client = new Echo(`xds:///${host}:5000`, grpc.credentials.createInsecure());
  closers.push(() => client.close());
  const say = () =>
    new Promise<string>((resolve, reject) =>
      client.makeUnaryRequest(
        echoPath,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err, res) => (err || res === undefined ? reject(err ?? new Error("no response")) : resolve(res.toString())),
      ),
    );

  const counts = new Map<string, number>();
  for (let i = 0; i < 20; i++) {
    const who = await say();
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  assert.ok((counts.get("echo-cluster1") ?? 0) >= 5, `answers: ${JSON.stringify([...counts])}`);
  assert.ok((counts.get("echo-cluster2") ?? 0) >= 5, `answers: ${JSON.stringify([...counts])}`);

  // What gRPC asked for, and that it ACKed everything we sent.
  const conn = xds.connections()[0];
  assert.equal(conn?.proxyType, "proxyless");
  const byType = new Map(conn?.types.map((x) => [x.type, x]));
  assert.deepEqual(byType.get("LDS")?.subscribed, [`${host}:5000`]);
  assert.deepEqual(byType.get("CDS")?.subscribed, [`outbound|5000||${host}`]);
  for (const type of ["LDS", "RDS", "CDS", "EDS"])
    assert.equal(byType.get(type)?.status, "SYNCED", `${type} not ACKed`);

  // cluster2 goes away (its remote secret was removed): only its endpoints change.
  state.view = new StaticServiceView([{ service, endpoints: [endpoint("cluster1", b1.port, "echo-1")] }]);
  const removedAt = Date.now();
  xds.pushRequest({ full: false, edsHostnames: new Set([host]), reason: "cluster2 removed" });
  let streak = 0;
  while (streak < 20) {
    const who = await say();
    streak = who === "echo-cluster1" ? streak + 1 : 0;
    if (Date.now() - removedAt > 5000) assert.fail("traffic still reaches cluster2 after 5 s");
  }
  const lastToCluster2 = Math.max(removedAt, ...b2.served);
  assert.ok(lastToCluster2 - removedAt < 1000, `cluster2 still served ${lastToCluster2 - removedAt} ms after removal`);
});
