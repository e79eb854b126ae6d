/**
 * Issue 4's scenario against two in-process API servers (real HTTPS Kubernetes API, no node:
 * the test writes Services and EndpointSlices pointing at gRPC echo servers on 127.0.0.x).
 * A proxyless gRPC client (@grpc/grpc-js-xds) asks cluster1's control plane and gets answers
 * from both clusters; removing the remote secret drops cluster2 within 1 s; adding it back
 * restores it; an unreachable remote keeps its endpoints and shows in /debug/clusterz; a broken
 * kubeconfig is reported and changes nothing else; a NACK shows in /debug/syncz.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { KubeConfig } from "@kubernetes/client-node";
import { waitFor } from "../src/base/index.js";
import { Resources } from "../src/devcluster/api/types.js";
import { type TestApiServer, startTestApiServer } from "../src/devcluster/apiserver/http/testing.js";
import { ControlPlane, defaultXdsBackend } from "../src/discovery/index.js";
import {
  type DiscoveryRequest,
  DiscoveryRequestSchema,
  type DiscoveryResponse,
} from "../src/gen/envoy/service/discovery/v3/discovery_pb.js";
import { startGrpcEcho } from "../src/programs/grpc-echo.js";
import { adsServiceDefinition } from "../src/xds/server/ads-service.js";
import { getClusterz, controlPlaneOptions, httpGet, proxylessGrpcClient, echoUntil } from "./support/control-plane.js";

const host = "echo.sample.svc.cluster.local";

async function seedCluster(c: TestApiServer, name: string, echoIp: string, echoPort: number): Promise<void> {
  const client = c.api.client();
  const ns = (n: string, labels: Record<string, string> = {}) =>
    client.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: n, labels } });
  await ns("istio-system", { "topology.istio.io/network": "network1" });
  await ns("sample");
  await client.create(Resources.configmaps, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "istio", namespace: "istio-system" },
    data: { mesh: "trustDomain: cluster.local\ndefaultConfig:\n  meshId: mesh1\n" },
  });
  await client.create(Resources.services, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "echo", namespace: "sample" },
    spec: { ports: [{ name: "grpc", port: 7070, targetPort: echoPort }], selector: { app: "echo" } },
  });
  await client.create(Resources.endpointslices, {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: "echo-x1", namespace: "sample", labels: { "kubernetes.io/service-name": "echo" } },
    addressType: "IPv4",
    endpoints: [
      {
        addresses: [echoIp],
        conditions: { ready: true },
        targetRef: { kind: "Pod", name: `echo-${name}`, namespace: "sample" },
      },
    ],
    ports: [{ name: "grpc", port: echoPort, protocol: "TCP" }],
  });
}

const remoteSecret = (kubeconfig: string, name = "istio-remote-secret-cluster2", key = "cluster2") => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: {
    name,
    namespace: "istio-system",
    labels: { "istio/multiCluster": "true" },
    annotations: { "networking.istio.io/cluster": key },
  },
  data: { [key]: Buffer.from(kubeconfig).toString("base64") },
});

describe("control plane with two clusters (in-process API servers)", () => {
  let c1: TestApiServer;
  let c2: TestApiServer;
  let cp: ControlPlane;
  let client: grpc.Client;
  let c2Kubeconfig: string;
  const closers: (() => Promise<unknown> | unknown)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  const monitoring = (path: string) => httpGet(cp.ports.monitoring, path);
  const clusterz = () => getClusterz(cp.ports.monitoring);
  /** Resolves with the time it took `want` to hold for 12 answers in a row. */
  const untilAnswers = async (want: (answers: Set<string>) => boolean) =>
    (await echoUntil(client, want, { timeoutMs: 20_000 })).ms;

  before(async () => {
    c1 = await startTestApiServer();
    closers.push(() => c1.close());
    c2 = await startTestApiServer();
    closers.push(() => c2.close());
    const e1 = await startGrpcEcho({ name: "echo-cluster1", host: "127.0.0.2", port: 0 });
    closers.push(() => e1.server.forceShutdown());
    const e2 = await startGrpcEcho({ name: "echo-cluster2", host: "127.0.0.3", port: 0 });
    closers.push(() => e2.server.forceShutdown());
    await seedCluster(c1, "cluster1", "127.0.0.2", e1.port);
    await seedCluster(c2, "cluster2", "127.0.0.3", e2.port);
    c2Kubeconfig = await readFile(await c2.writeKubeconfig(), "utf8");

    const kc = new KubeConfig();
    kc.loadFromFile(await c1.writeKubeconfig());
    cp = new ControlPlane(controlPlaneOptions(kc, { env: { podName: "istiod-test" }, xds: defaultXdsBackend }));
    closers.push(() => cp.close(200));
    await cp.start();
    assert.equal((await monitoring("/ready")).status, 503, "not ready before the own cluster syncs");
    await c1.api.client().create(Resources.secrets, remoteSecret(c2Kubeconfig));
    await cp.whenServing();
    await cp.whenReady();

    client = await proxylessGrpcClient({ xdsPort: cp.ports.grpc, nodeIp: "127.0.0.9", target: `xds:///${host}:7070` });
    closers.push(() => client.close());
  });

  it("is ready and lists both clusters synced in /debug/clusterz, as Istio does", async () => {
    assert.equal((await monitoring("/ready")).status, 200);
    await waitFor(
      "cluster2 synced",
      async () => (await clusterz()).find((r) => r.id === "cluster2")?.syncStatus === "synced",
    );
    assert.deepEqual(await clusterz(), [
      { id: "cluster1", secretName: "", syncStatus: "synced" },
      { id: "cluster2", secretName: "istio-system/istio-remote-secret-cluster2", syncStatus: "synced" },
    ]);
    const metrics = (await monitoring("/metrics")).text;
    assert.match(metrics, /istiod_managed_clusters\{cluster_type="remote"\} 1/);
    assert.match(
      metrics,
      /istiod_remote_cluster_sync_status\{cluster="cluster2",cluster_type="remote",status="synced"\} 1/,
    );
  });

  it("serves a proxyless gRPC client endpoints from both clusters", async () => {
    await untilAnswers((a) => a.has("echo-cluster1") && a.has("echo-cluster2"));
    const endpointz = JSON.parse((await monitoring("/debug/endpointz")).text) as Record<
      string,
      Record<string, Record<string, unknown[]>>
    >;
    assert.deepEqual(Object.keys(endpointz[host]?.grpc ?? {}), ["cluster1", "cluster2"]);
    const registryz = JSON.parse((await monitoring("/debug/registryz")).text) as {
      hostname: string;
      clusterVips: Record<string, string>;
    }[];
    assert.deepEqual(Object.keys(registryz.find((s) => s.hostname === host)?.clusterVips ?? {}), [
      "cluster1",
      "cluster2",
    ]);
    const metrics = (await monitoring("/metrics")).text;
    assert.match(metrics, /pilot_xds 1/);
    assert.match(metrics, /pilot_xds_pushes\{type="eds"\} [1-9]/);
  });

  it("drops cluster2's endpoints within 1 s of the remote secret's removal, and restores them when it is back", async () => {
    await untilAnswers((a) => a.has("echo-cluster2"));
    await c1.api.client().delete(Resources.secrets, "istio-system", "istio-remote-secret-cluster2");
    const took = await untilAnswers((a) => a.size === 1 && a.has("echo-cluster1"));
    assert.ok(took < 1000, `cluster2's endpoint left the client after ${Math.round(took)} ms`);
    assert.deepEqual(
      (await clusterz()).map((r) => r.id),
      ["cluster1"],
    );

    await c1.api.client().create(Resources.secrets, remoteSecret(c2Kubeconfig));
    await untilAnswers((a) => a.has("echo-cluster1") && a.has("echo-cluster2"));
  });

  it("replaces a changed kubeconfig only once it works, without dropping cluster2's endpoints", async () => {
    // A token the remote API server accepts but RBAC gives no rights: the replacement cannot sync.
    const noRights = await c2.serviceAccountToken("default", "nobody");
    const weak = c2Kubeconfig.replace(/token: .*/, `token: ${noRights}`);
    await c1.api.client().update(Resources.secrets, {
      ...(await c1.api.client().get(Resources.secrets, "istio-system", "istio-remote-secret-cluster2")),
      data: { cluster2: Buffer.from(weak).toString("base64") },
    });
    const row = await waitFor("the stuck replacement in clusterz", async () =>
      (await clusterz()).find((r) => r.id === "cluster2" && r.error !== undefined),
    );
    assert.match(row.error ?? "", /changed kubeconfig has not taken over: .*403/);
    assert.equal(row.syncStatus, "synced");
    await untilAnswers((a) => a.has("echo-cluster1") && a.has("echo-cluster2"));

    // A working replacement takes over; the endpoints never leave, at no change of the registry.
    let lost = false;
    const off = cp.aggregate.onChange(() => {
      if (!cp.aggregate.view().endpoints(host, "grpc").has("cluster2")) lost = true;
    });
    const renamed = c2Kubeconfig.replaceAll("name: test", "name: cluster2").replaceAll(": test", ": cluster2");
    await c1.api.client().update(Resources.secrets, {
      ...(await c1.api.client().get(Resources.secrets, "istio-system", "istio-remote-secret-cluster2")),
      data: { cluster2: Buffer.from(renamed).toString("base64") },
    });
    await waitFor("the replacement in charge", async () => {
      const r = (await clusterz()).find((x) => x.id === "cluster2");
      return r?.syncStatus === "synced" && r.error === undefined;
    });
    off();
    assert.equal(lost, false, "cluster2's endpoints stayed through the swap");
    await untilAnswers((a) => a.has("echo-cluster1") && a.has("echo-cluster2"));
    c2Kubeconfig = renamed;
  });

  it("reports a broken kubeconfig with the secret's name and changes nothing else", async () => {
    // The token line's indentation depends on how the kubeconfig was written: keep it.
    const broken = c2Kubeconfig.replace(
      /^( *)token: .*$/m,
      "$1exec:\n$1  command: aws\n$1  apiVersion: client.authentication.k8s.io/v1",
    );
    assert.notEqual(broken, c2Kubeconfig, "the kubeconfig has a token line to replace");
    await c1.api.client().create(Resources.secrets, remoteSecret(broken, "istio-remote-secret-cluster3", "cluster3"));
    const row = await waitFor("cluster3 reported", async () => (await clusterz()).find((r) => r.id === "cluster3"));
    assert.equal(row.secretName, "istio-system/istio-remote-secret-cluster3");
    assert.equal(row.syncStatus, "failed");
    assert.match(row.error ?? "", /exec credential plugin/);
    assert.equal((await clusterz()).find((r) => r.id === "cluster2")?.syncStatus, "synced");
    await untilAnswers((a) => a.has("echo-cluster1") && a.has("echo-cluster2"));
  });

  it("keeps an unreachable remote's endpoints and shows the failure in /debug/clusterz", async () => {
    await waitFor(
      "cluster2 synced",
      async () => (await clusterz()).find((r) => r.id === "cluster2")?.syncStatus === "synced",
    );
    await c2.http.stopListening();
    try {
      const row = await waitFor("cluster2's error", async () =>
        (await clusterz()).find((r) => r.id === "cluster2" && r.error),
      );
      assert.match(
        row.error ?? "",
        /cannot reach API server https:\/\/127\.0\.0\.1:\d+|connection to the API server lost/,
      );
      await untilAnswers((a) => a.has("echo-cluster1") && a.has("echo-cluster2"));
      assert.equal((await monitoring("/ready")).status, 200);
    } finally {
      await c2.http.listen();
    }
    await waitFor("cluster2 healthy again", async () => {
      const row = (await clusterz()).find((r) => r.id === "cluster2");
      return row?.syncStatus === "synced" && row.error === undefined;
    });
  });

  it("shows a NACK with its reason in /debug/syncz", async () => {
    const ads = new grpc.Client(`127.0.0.1:${cp.ports.grpc}`, grpc.credentials.createInsecure());
    const stream = ads.makeBidiStreamRequest(
      adsServiceDefinition.StreamAggregatedResources.path,
      adsServiceDefinition.StreamAggregatedResources.requestSerialize,
      adsServiceDefinition.StreamAggregatedResources.responseDeserialize,
    ) as grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
    stream.on("error", () => {});
    const nodeId = "sidecar~127.0.0.10~nacker-0.sample~sample.svc.cluster.local";
    const node = { id: nodeId, metadata: { CLUSTER_ID: "cluster1", NAMESPACE: "sample", GENERATOR: "grpc" } };
    const typeUrl = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    const first = new Promise<DiscoveryResponse>((resolve) => stream.once("data", resolve));
    stream.write(create(DiscoveryRequestSchema, { node, typeUrl, resourceNames: [`outbound|7070||${host}`] }));
    const res = await first;
    stream.write(
      create(DiscoveryRequestSchema, {
        node,
        typeUrl,
        resourceNames: [`outbound|7070||${host}`],
        versionInfo: "",
        responseNonce: res.nonce,
        errorDetail: { code: 3, message: "test client rejects this cluster" },
      }),
    );
    try {
      const entry = await waitFor("the NACK in syncz", async () => {
        const syncz = JSON.parse((await monitoring("/debug/syncz")).text) as {
          proxyId: string;
          types: { type: string; status: string; nack?: { message: string } }[];
        }[];
        return syncz.find((c) => c.proxyId === nodeId)?.types.find((t) => t.status === "NACKED");
      });
      assert.equal(entry.nack?.message, "test client rejects this cluster");
      const dump = JSON.parse((await monitoring(`/debug/config_dump?proxyID=${encodeURIComponent(nodeId)}`)).text) as {
        types: Record<string, { nack?: { message: string } }>;
      };
      assert.equal(dump.types.CDS?.nack?.message, "test client rejects this cluster");
      assert.equal((await monitoring("/debug/config_dump?proxyID=nobody")).status, 404);
      assert.match((await monitoring("/metrics")).text, /pilot_total_xds_rejects\{type="cds"\} 1/);
    } finally {
      stream.cancel();
      ads.close();
    }
  });
});
