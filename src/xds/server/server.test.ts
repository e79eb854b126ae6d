import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { NodeSchema } from "../../gen/envoy/config/core/v3/base_pb.js";
import { ClusterLoadAssignmentSchema } from "../../gen/envoy/config/endpoint/v3/endpoint_pb.js";
import {
  type DeltaDiscoveryRequest,
  DeltaDiscoveryRequestSchema,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  DiscoveryRequestSchema,
  type DiscoveryResponse,
} from "../../gen/envoy/service/discovery/v3/discovery_pb.js";
import type { ServiceView } from "../../model/index.js";
import { XdsClient, type XdsClientOptions } from "../client/client.js";
import { TypeUrl } from "../resources/common.js";
import { guideView, helloworldEndpoints, helloworldHost, sleepHost } from "../resources/guide-topology.js";
import { adsServiceDefinition } from "./ads-service.js";
import { XdsServer } from "./server.js";

const hwCluster = `outbound|5000||${helloworldHost}`;
const sleepCluster = `outbound|80||${sleepHost}`;
const sleepNode = {
  id: "sidecar~10.200.1.11~sleep-5d8b7c9f4-abcde.sample~sample.svc.cluster.local",
  metadata: {
    CLUSTER_ID: "cluster1",
    NETWORK: "network1",
    MESH_ID: "mesh1",
    LABELS: { app: "sleep" },
    ISTIO_VERSION: "0.1.0",
  },
};

async function startServer(t: { after: (fn: () => Promise<void> | void) => void }, initial: ServiceView = guideView()) {
  const state = { view: initial };
  const server = new XdsServer({
    view: () => state.view,
    clusterId: "cluster1",
    debounceAfterMs: 1,
    debounceMaxMs: 50,
  });
  const port = await server.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => server.close(100));
  return { server, port, state };
}

function startClient(
  t: { after: (fn: () => Promise<void> | void) => void },
  port: number,
  extra: Partial<XdsClientOptions> = {},
) {
  const client = new XdsClient({ target: `127.0.0.1:${port}`, node: sleepNode, ...extra });
  t.after(() => client.close());
  return client;
}

function edsAddresses(client: XdsClient, name: string): string[] {
  const any = client.resources(TypeUrl.ClusterLoadAssignment).get(name);
  if (any === undefined) return [];
  const cla = anyUnpack(any, ClusterLoadAssignmentSchema);
  return (cla?.endpoints ?? []).flatMap((l) =>
    l.lbEndpoints.map((e) =>
      e.hostIdentifier.case === "endpoint" && e.hostIdentifier.value.address?.address.case === "socketAddress"
        ? e.hostIdentifier.value.address.address.value.address
        : "",
    ),
  );
}

function syncOf(server: XdsServer, type: string) {
  return server.connections()[0]?.types.find((x) => x.type === type);
}

test("a sidecar gets CDS/LDS (wildcard) and EDS/RDS by name, and ACKs them all", async (t) => {
  const { server, port } = await startServer(t);
  const client = startClient(t, port);
  client.subscribe(TypeUrl.Cluster);
  client.subscribe(TypeUrl.Listener);
  client.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster]);
  client.subscribe(TypeUrl.RouteConfiguration, ["5000"]);
  client.start();
  await client.waitFor(TypeUrl.Cluster, (r) => r.has(hwCluster) && r.has("PassthroughCluster"));
  await client.waitFor(TypeUrl.Listener, (r) => r.has("virtualOutbound") && r.has("virtualInbound"));
  await client.waitFor(TypeUrl.RouteConfiguration, (r) => r.has("5000"));
  await client.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(hwCluster));
  assert.deepEqual(edsAddresses(client, hwCluster), ["10.200.1.10", "10.200.2.10"]);
  // ACKs travel after the update event; wait for the server to see them through its own view.
  await waitUntil(() => ["CDS", "LDS", "EDS", "RDS"].every((ty) => syncOf(server, ty)?.status === "SYNCED"));
  const conn = server.connections()[0];
  assert.equal(conn?.proxyId, sleepNode.id);
  assert.equal(conn?.clusterId, "cluster1");
  assert.equal(conn?.istioVersion, "0.1.0", "the proxy's version, for proxy-status");
  assert.equal(syncOf(server, "CDS")?.subscribed, "*");
  assert.deepEqual(syncOf(server, "EDS")?.subscribed, [hwCluster]);
  assert.equal(server.metrics.snapshot().connectedProxies, 1);
});

test("a changed subscription that carries the last nonce is answered (not taken as an ACK)", async (t) => {
  const { port } = await startServer(t);
  const client = startClient(t, port);
  client.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster]);
  client.start();
  await client.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(hwCluster));
  client.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster, sleepCluster]);
  await client.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(sleepCluster));
  assert.deepEqual(edsAddresses(client, sleepCluster), ["10.200.1.11", "10.200.2.11"]);
});

test("an endpoint change pushes only EDS, only for the changed service; an unchanged full push sends nothing", async (t) => {
  const { server, port, state } = await startServer(t);
  const client = startClient(t, port);
  client.subscribe(TypeUrl.Cluster);
  client.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster, sleepCluster]);
  client.start();
  await client.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(hwCluster) && r.has(sleepCluster));
  await client.waitFor(TypeUrl.Cluster, (r) => r.size > 0);
  await waitUntil(() => syncOf(server, "EDS")?.status === "SYNCED" && syncOf(server, "CDS")?.status === "SYNCED");
  const before = server.metrics.snapshot().pushesByType;

  server.pushRequest({ full: true, reason: "nothing really changed" });
  await server.idle();
  assert.deepEqual(server.metrics.snapshot().pushesByType, before, "a push with identical content was sent");

  const [v1] = helloworldEndpoints;
  state.view = guideView().withEndpoints(helloworldHost, v1 ? [v1] : []);
  const update = client.waitFor(TypeUrl.ClusterLoadAssignment, () => edsAddresses(client, hwCluster).length === 1);
  server.pushRequest({ full: false, edsHostnames: new Set([helloworldHost]) });
  const u = await update;
  assert.deepEqual(u?.changed, [hwCluster], "the EDS push carried more than the changed cluster");
  await server.idle();
  const after = server.metrics.snapshot().pushesByType;
  assert.equal(after.EDS, (before.EDS ?? 0) + 1);
  assert.equal(after.CDS, before.CDS);
  await waitUntil(() => server.metrics.snapshot().convergenceCount >= 1);
});

test("a NACK is recorded with its reason, the client keeps its last good config, a fix is ACKed", async (t) => {
  const { server, port, state } = await startServer(t);
  const client = startClient(t, port, {
    validate: (typeUrl, resources) => {
      if (typeUrl !== TypeUrl.ClusterLoadAssignment) return undefined;
      const any = resources.get(hwCluster);
      const cla = any ? anyUnpack(any, ClusterLoadAssignmentSchema) : undefined;
      const n = cla?.endpoints.reduce((s, l) => s + l.lbEndpoints.length, 0) ?? 0;
      return n > 2 ? `cluster ${hwCluster} has ${n} endpoints; this test proxy accepts at most 2` : undefined;
    },
  });
  client.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster]);
  client.start();
  await client.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(hwCluster));
  const goodVersion = client.version(TypeUrl.ClusterLoadAssignment);

  const [v1, v2] = helloworldEndpoints;
  assert.ok(v1 && v2);
  state.view = guideView().withEndpoints(helloworldHost, [v1, v2, { ...v2, address: "10.200.2.77" }]);
  const nacked = new Promise<string>((resolve) => client.once("nack", (n) => resolve(n.message)));
  server.pushRequest({ full: false, edsHostnames: new Set([helloworldHost]) });
  const message = await nacked;
  assert.match(message, /has 3 endpoints/);
  await waitUntil(() => syncOf(server, "EDS")?.status === "NACKED");
  const eds = syncOf(server, "EDS");
  assert.equal(eds?.nack?.message, message);
  assert.equal(eds?.nack?.version, goodVersion, "a NACK names the version the proxy keeps");
  assert.deepEqual(
    edsAddresses(client, hwCluster),
    ["10.200.1.10", "10.200.2.10"],
    "client dropped its last good config",
  );
  const dump = server.configDump(sleepNode.id) as { types: { EDS: { lastGoodResources?: unknown[] } } };
  assert.equal(dump.types.EDS.lastGoodResources?.length, 1, "config dump lacks the last good resources");
  assert.equal(server.metrics.snapshot().nacksByType.EDS, 1);

  state.view = guideView().withEndpoints(helloworldHost, [v2]);
  server.pushRequest({ full: false, edsHostnames: new Set([helloworldHost]) });
  await client.waitFor(TypeUrl.ClusterLoadAssignment, () => edsAddresses(client, hwCluster).join() === "10.200.2.10");
  await waitUntil(() => syncOf(server, "EDS")?.status === "SYNCED");
});

test("the client reconnects after the server restarts and gets its resources again", async (t) => {
  const first = await startServer(t);
  const client = startClient(t, first.port, { backoffMinMs: 20, backoffMaxMs: 100 });
  client.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster]);
  client.start();
  await client.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(hwCluster));
  const disconnected = new Promise((r) => client.once("disconnected", r));
  await first.server.close(10);
  await disconnected;
  const again = new XdsServer({ view: () => guideView(), clusterId: "cluster1" });
  t.after(() => again.close(100));
  await again.listen({ host: "127.0.0.1", port: first.port });
  await new Promise<void>((r) => client.once("connected", () => r()));
  await waitUntil(() => again.connections().length === 1);
  assert.deepEqual(edsAddresses(client, hwCluster), ["10.200.1.10", "10.200.2.10"]);
});

test("a node without a usable ID is refused with INVALID_ARGUMENT naming it", async (t) => {
  const { port } = await startServer(t);
  const client = startClient(t, port, { node: { id: "not-an-istio-id" } });
  client.subscribe(TypeUrl.Cluster);
  const why = new Promise<string>((r) => client.once("disconnected", r));
  client.start();
  assert.match(await why, /not-an-istio-id/);
});

test("delta xDS: initial versions honoured, removals sent, subscribe and unsubscribe", async (t) => {
  const { server, port, state } = await startServer(t);
  const Ctor = grpc.makeGenericClientConstructor(adsServiceDefinition, "ADS");
  const raw = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => raw.close());
  const call = raw.makeBidiStreamRequest(
    adsServiceDefinition.DeltaAggregatedResources.path,
    adsServiceDefinition.DeltaAggregatedResources.requestSerialize,
    adsServiceDefinition.DeltaAggregatedResources.responseDeserialize,
  ) as grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  t.after(() => call.cancel());
  call.on("error", () => {});
  const queue: DeltaDiscoveryResponse[] = [];
  let wake: (() => void) | undefined;
  call.on("data", (r: DeltaDiscoveryResponse) => {
    queue.push(r);
    wake?.();
  });
  const next = async () => {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    return queue.shift() as DeltaDiscoveryResponse;
  };
  const send = (r: MessageInitShape<typeof DeltaDiscoveryRequestSchema>) =>
    call.write(create(DeltaDiscoveryRequestSchema, r));

  // First CDS request, wildcard, without prior state: every cluster comes.
  send({ node: create(NodeSchema, sleepNode), typeUrl: TypeUrl.Cluster });
  const r1 = await next();
  const byName = new Map(r1.resources.map((r) => [r.name, r.version]));
  assert.ok(byName.has(hwCluster) && byName.has("BlackHoleCluster"));
  send({ typeUrl: TypeUrl.Cluster, responseNonce: r1.nonce });

  // Removing the sleep service: a full push removes its cluster by name and sends nothing else.
  const { StaticServiceView } = await import("../resources/static-view.js");
  state.view = new StaticServiceView(
    guideView()
      .services()
      .filter((s) => s.hostname !== sleepHost)
      .map((service) => ({ service, endpoints: service.hostname === helloworldHost ? helloworldEndpoints : [] })),
  );
  server.pushRequest({ full: true });
  const r2 = await next();
  // The sleep pod's inbound cluster goes with its service.
  assert.deepEqual(r2.removedResources, ["inbound|80||", sleepCluster]);
  assert.deepEqual(
    r2.resources.map((r) => r.name),
    [],
  );
  send({ typeUrl: TypeUrl.Cluster, responseNonce: r2.nonce });

  // EDS: subscribe to one, get it; unsubscribe, nothing more comes for it.
  send({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNamesSubscribe: [hwCluster] });
  const r3 = await next();
  assert.equal(r3.typeUrl, TypeUrl.ClusterLoadAssignment);
  assert.deepEqual(
    r3.resources.map((r) => r.name),
    [hwCluster],
  );
  send({ typeUrl: TypeUrl.ClusterLoadAssignment, responseNonce: r3.nonce });
  await waitUntil(() => syncOf(server, "EDS")?.status === "SYNCED");
  assert.equal(server.connections()[0]?.mode, "delta");

  // A reconnecting client that already holds the current version of a cluster is not sent it again.
  const call2 = raw.makeBidiStreamRequest(
    adsServiceDefinition.DeltaAggregatedResources.path,
    adsServiceDefinition.DeltaAggregatedResources.requestSerialize,
    adsServiceDefinition.DeltaAggregatedResources.responseDeserialize,
  ) as grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  t.after(() => call2.cancel());
  call2.on("error", () => {});
  const got = new Promise<DeltaDiscoveryResponse>((r) => call2.once("data", r));
  const hwVersion = byName.get(hwCluster) ?? "";
  call2.write(
    create(DeltaDiscoveryRequestSchema, {
      node: create(NodeSchema, sleepNode),
      typeUrl: TypeUrl.Cluster,
      initialResourceVersions: { [hwCluster]: hwVersion, "outbound|1||gone.example": "x" },
    }),
  );
  const r4 = await got;
  assert.ok(!r4.resources.some((r) => r.name === hwCluster), "an up-to-date resource was resent");
  assert.deepEqual(r4.removedResources, ["outbound|1||gone.example"]);
});

test("TLS listener (15012 style) with client certificates", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "isthmus-xds-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ossl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  ossl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=test-ca",
  );
  for (const who of ["server", "client"]) {
    writeFileSync(join(dir, `${who}.ext`), `subjectAltName=DNS:${who}\n`);
    ossl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${who}.key`,
      "-out",
      `${who}.csr`,
      "-subj",
      `/CN=${who}`,
    );
    ossl(
      "x509",
      "-req",
      "-in",
      `${who}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${who}.pem`,
      "-days",
      "1",
      "-extfile",
      `${who}.ext`,
    );
  }
  const read = (f: string) => readFileSync(join(dir, f));
  const server = new XdsServer({ view: () => guideView(), clusterId: "cluster1" });
  t.after(() => server.close(100));
  const port = await server.listen({
    host: "127.0.0.1",
    port: 0,
    tls: { key: read("server.key"), cert: read("server.pem"), ca: read("ca.pem"), requireClientCert: true },
  });
  const client = startClient(t, port, {
    credentials: grpc.credentials.createSsl(read("ca.pem"), read("client.key"), read("client.pem")),
    channelOptions: { "grpc.ssl_target_name_override": "server" },
  });
  client.subscribe(TypeUrl.Cluster);
  client.start();
  await client.waitFor(TypeUrl.Cluster, (r) => r.has(hwCluster));
});

/** Waits for a condition the server reaches through network I/O (an ACK), polling briefly. */
async function waitUntil(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("proxies of the same shape get one shared response; a re-request on the same stream gets a nonce of its own", async (t) => {
  const { port } = await startServer(t);
  const Ctor = grpc.makeGenericClientConstructor(adsServiceDefinition, "ADS");
  const raw = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => raw.close());
  const open = () => {
    const call = raw.makeBidiStreamRequest(
      adsServiceDefinition.StreamAggregatedResources.path,
      adsServiceDefinition.StreamAggregatedResources.requestSerialize,
      adsServiceDefinition.StreamAggregatedResources.responseDeserialize,
    ) as grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
    t.after(() => call.cancel());
    call.on("error", () => {});
    const queue: DiscoveryResponse[] = [];
    let wake: (() => void) | undefined;
    call.on("data", (r: DiscoveryResponse) => {
      queue.push(r);
      wake?.();
    });
    const next = async () => {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift() as DiscoveryResponse;
    };
    const send = (r: MessageInitShape<typeof DiscoveryRequestSchema>) => call.write(create(DiscoveryRequestSchema, r));
    return { next, send };
  };
  // Two sleep replicas: same namespace, cluster and IP-derived inbound set, different pods.
  const a = open();
  const b = open();
  a.send({ node: create(NodeSchema, sleepNode), typeUrl: TypeUrl.Cluster });
  b.send({
    node: create(NodeSchema, { ...sleepNode, id: sleepNode.id.replace("abcde", "fghij") }),
    typeUrl: TypeUrl.Cluster,
  });
  const [ra, rb] = [await a.next(), await b.next()];
  assert.equal(ra.nonce, rb.nonce, "the same response should serve both proxies");
  assert.equal(ra.versionInfo, rb.versionInfo);
  assert.deepEqual(
    ra.resources.map((r) => r.value),
    rb.resources.map((r) => r.value),
  );
  // The same request again without a nonce must be answered, and not with a nonce this stream already had.
  a.send({ typeUrl: TypeUrl.Cluster });
  const again = await a.next();
  assert.notEqual(again.nonce, ra.nonce);
  assert.equal(again.versionInfo, ra.versionInfo);
});

test("with one send slot, twenty clients all get their full state (slots are released as writes finish)", async (t) => {
  const state = { view: guideView() };
  const server = new XdsServer({
    view: () => state.view,
    clusterId: "cluster1",
    debounceAfterMs: 1,
    concurrentSends: 1,
  });
  const port = await server.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => server.close(100));
  const clients = Array.from({ length: 20 }, (_, i) =>
    startClient(t, port, { node: { ...sleepNode, id: sleepNode.id.replace("abcde", `c${i}`) } }),
  );
  for (const c of clients) {
    c.subscribe(TypeUrl.Cluster);
    c.subscribe(TypeUrl.ClusterLoadAssignment, [hwCluster]);
    c.start();
  }
  await Promise.all(clients.map((c) => c.waitFor(TypeUrl.ClusterLoadAssignment, (r) => r.has(hwCluster))));
  // A push after the initial burst goes through the same single slot.
  const [v1] = helloworldEndpoints;
  state.view = guideView().withEndpoints(helloworldHost, v1 ? [v1] : []);
  server.pushRequest({ full: false, edsHostnames: new Set([helloworldHost]) });
  await Promise.all(
    clients.map((c) => c.waitFor(TypeUrl.ClusterLoadAssignment, () => edsAddresses(c, hwCluster).length === 1)),
  );
});
