// The sidecar's data path end to end on loopback: a client sidecar's outbound listener, mutual
// TLS with SPIFFE checks, a server sidecar's inbound listener, and the app behind it.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { before, describe, it } from "node:test";
import type { InboundPort, ProxyConfig } from "./config/types.js";
import {
  type After,
  createRootCa,
  endpoint as ep,
  get,
  helloId,
  meshConfig,
  sleepId,
  startClientSide,
  startServerSide,
  workload,
  workloadCert,
} from "./fixtures.test.js";
import { InboundServer } from "./inbound/listener.js";
import { ProxyRuntime } from "./runtime.js";
import type { WorkloadCertificate } from "./tls/identity.js";

const clientConfig = (endpoints: ReturnType<typeof ep>[], allowed: string[] = [helloId]): ProxyConfig =>
  meshConfig({ endpoints, allowed });

describe("sidecar data path", () => {
  let sleepCert: WorkloadCertificate;
  let helloCert: WorkloadCertificate;
  before(async () => {
    sleepCert = await workloadCert(sleepId, "cluster1");
    helloCert = await workloadCert(helloId, "cluster2");
  });

  /** An app on loopback and a server sidecar in front of it; returns the sidecar's inbound port. */
  async function serverSide(t: After, mode: InboundPort["mtlsMode"] = "PERMISSIVE", cert = helloCert) {
    const seen: http.IncomingHttpHeaders[] = [];
    const app = http.createServer((req, res) => {
      seen.push(req.headers);
      res.end("Hello version: v2, instance: helloworld-v2-abc\n");
    });
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    const { port, rt } = await startServerSide(t, { appPort, cert, mode });
    return { port, rt, seen };
  }

  const clientSide = (t: After, config: ProxyConfig, cert = sleepCert) => startClientSide(t, { config, cert });

  it("carries a request over mutual TLS and the server side records the verified peer", async (t) => {
    const server = await serverSide(t);
    const client = await clientSide(t, clientConfig([ep(server.port, "cluster2")]));
    const res = await get(client.port, "helloworld.sample:5000");
    assert.equal(res.status, 200);
    assert.equal(res.body, "Hello version: v2, instance: helloworld-v2-abc\n");
    assert.equal(server.seen[0]?.["x-forwarded-client-cert"], `By=${helloId};URI=${sleepId}`);
    assert.equal(server.seen[0]?.["x-isthmus-peer-metadata"], undefined, "peer metadata must not reach the app");
    const labels = {
      reporter: "destination",
      source_principal: sleepId,
      source_workload: "sleep",
      source_workload_namespace: "sample",
      source_cluster: "cluster1",
      destination_workload: "helloworld-v2",
      destination_workload_namespace: "sample",
      destination_cluster: "cluster2",
      destination_principal: helloId,
      response_code: "200",
      connection_security_policy: "mutual_tls",
    };
    assert.equal(server.rt.metrics.requestCount(labels), 1);
    assert.match(
      client.rt.metrics.render(),
      /istio_requests_total\{.*destination_cluster="cluster2".*response_code="200"/,
    );
  });

  it("refuses a server whose SPIFFE identity is not the service's", async (t) => {
    const server = await serverSide(t);
    const client = await clientSide(
      t,
      clientConfig([ep(server.port, "cluster2")], ["spiffe://cluster.local/ns/sample/sa/other"]),
    );
    const res = await get(client.port, "helloworld.sample:5000");
    assert.equal(res.status, 503);
    assert.match(res.body, /upstream connect error/);
    assert.equal(server.seen.length, 0);
  });

  it("refuses a client whose certificate comes from another root", async (t) => {
    const server = await serverSide(t);
    const strangerRoot = createRootCa({ commonName: "Other Root" });
    const stranger = await workloadCert(sleepId, "cluster1", strangerRoot);
    const client = await clientSide(t, clientConfig([ep(server.port, "cluster2")]), stranger);
    const res = await get(client.port, "helloworld.sample:5000");
    assert.equal(res.status, 503);
    assert.equal(server.seen.length, 0);
  });

  it("retries a refused endpoint on another one", async (t) => {
    const server = await serverSide(t);
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    const deadPort = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const client = await clientSide(t, clientConfig([ep(deadPort, "cluster1"), ep(server.port, "cluster2")]));
    for (let i = 0; i < 4; i++) assert.equal((await get(client.port, "helloworld.sample:5000")).status, 200);
    const retries =
      /envoy_cluster_upstream_rq_retry\{cluster_name="outbound\|5000\|\|helloworld.sample.svc.cluster.local"\} (\d+)/.exec(
        client.rt.metrics.render(),
      );
    assert.ok(Number(retries?.[1]) >= 1, "the refused endpoint was retried elsewhere");
  });

  it("answers 404 for a host no route knows", async (t) => {
    const client = await clientSide(t, clientConfig([]));
    assert.equal((await get(client.port, "unknown.example:5000")).status, 404);
  });

  it("never forwards a connection from outside to the sidecar's own ports on the pod's loopback (admin 15000)", async (t) => {
    const admin = http.createServer((_req, res) => res.end("admin"));
    await new Promise<void>((r) => admin.listen(0, "127.0.0.1", r));
    t.after(() => admin.close());
    const rt = new ProxyRuntime(workload("helloworld-v2", "cluster2", "default"));
    const inbound = new InboundServer({ runtime: rt, host: "127.0.0.1", port: 0, fixedPort: 15000 });
    const port = await inbound.start();
    t.after(() => inbound.destroy());
    await assert.rejects(get(port, "x"), /socket hang up|ECONNRESET/);
    assert.match(rt.metrics.render(), /isthmus_inbound_rejected_total\{reason="sidecar_port"\} 1/);
  });

  it("accepts a plaintext client in PERMISSIVE mode and refuses it in STRICT mode", async (t) => {
    const permissive = await serverSide(t);
    const ok = await get(permissive.port, "helloworld.sample:5000");
    assert.equal(ok.status, 200);
    assert.equal(permissive.seen[0]?.["x-forwarded-client-cert"], undefined);
    const strict = await serverSide(t, "STRICT");
    await assert.rejects(get(strict.port, "helloworld.sample:5000"), /socket hang up|ECONNRESET/);
    assert.equal(strict.seen.length, 0);
  });
});
