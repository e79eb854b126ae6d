// The sidecar's data path end to end on loopback: a client sidecar's outbound listener, mutual
// TLS with SPIFFE checks, a server sidecar's inbound listener, and the app behind it.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { before, describe, it } from "node:test";
import { createIntermediateCa, createRootCa, issueKeyedLeaf } from "../ca/pki.js";
import type { Endpoint, InboundPort, ProxyConfig, UpstreamCluster } from "./config/types.js";
import { InboundServer } from "./inbound/listener.js";
import { OutboundServer } from "./outbound/listener.js";
import { ProxyRuntime, type WorkloadInfo } from "./runtime.js";
import type { WorkloadCertificate } from "./tls/identity.js";

const host = "helloworld.sample.svc.cluster.local";
const clusterName = `outbound|5000||${host}`;
const sleepId = "spiffe://cluster.local/ns/sample/sa/sleep";
const helloId = "spiffe://cluster.local/ns/sample/sa/default";

async function workloadCert(spiffeId: string, cluster: string, root = sharedRoot): Promise<WorkloadCertificate> {
  const inter = await createIntermediateCa({ parent: await root, cluster });
  const issuer = { certPem: inter["ca-cert.pem"], keyPem: inter["ca-key.pem"] };
  const leaf = await issueKeyedLeaf({ issuer, subject: { kind: "workload", spiffeId }, ttlMs: 3_600_000 });
  return {
    certChainPem: leaf.certPem + inter["ca-cert.pem"],
    keyPem: leaf.keyPem,
    rootPem: inter["root-cert.pem"],
    spiffeId,
    notAfter: new Date(Date.now() + 3_600_000),
  };
}
const sharedRoot = createRootCa();

const workload = (name: string, clusterId: string, sa: string): WorkloadInfo => ({
  podName: `${name}-abc`,
  namespace: "sample",
  workloadName: name,
  clusterId,
  serviceAccount: sa,
  trustDomain: "cluster.local",
});

function clientConfig(endpoints: Endpoint[], allowed: string[] = [helloId]): ProxyConfig {
  const cluster: UpstreamCluster = {
    name: clusterName,
    type: "EDS",
    edsServiceName: clusterName,
    lbPolicy: "LEAST_REQUEST",
    connectTimeoutMs: 2000,
    tls: { allowedSpiffeIds: allowed, sni: clusterName },
    staticEndpoints: [],
    blackHole: false,
  };
  return {
    outbound: new Map([
      [
        "0.0.0.0:5000",
        { name: "0.0.0.0_5000", address: "0.0.0.0", port: 5000, action: { kind: "http", routeConfigName: "5000" } },
      ],
    ]),
    routes: new Map([
      [
        "5000",
        {
          name: "5000",
          virtualHosts: [
            {
              name: `${host}:5000`,
              domains: ["helloworld.sample:5000", "helloworld.sample", `${host}:5000`],
              routes: [
                {
                  name: "default",
                  prefix: "/",
                  cluster: clusterName,
                  timeoutMs: 0,
                  retry: {
                    numRetries: 2,
                    retryOn: new Set(["connect-failure", "refused-stream", "retriable-status-codes"]),
                    retriableStatusCodes: new Set([503]),
                    avoidPreviousHosts: true,
                  },
                },
              ],
            },
          ],
        },
      ],
    ]),
    clusters: new Map([[clusterName, cluster]]),
    endpoints: new Map([[clusterName, endpoints]]),
    inbound: new Map(),
  };
}

const ep = (port: number, clusterId: string): Endpoint => ({
  address: "127.0.0.1",
  port,
  healthy: true,
  weight: 1,
  tlsMode: "istio",
  clusterId,
  locality: "",
  workload: "helloworld-v2;sample;helloworld;v2;cluster2",
});

function get(port: number, hostHeader: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/hello", headers: { host: hostHeader }, agent: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => {
          body += d.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("sidecar data path", () => {
  let sleepCert: WorkloadCertificate;
  let helloCert: WorkloadCertificate;
  before(async () => {
    sleepCert = await workloadCert(sleepId, "cluster1");
    helloCert = await workloadCert(helloId, "cluster2");
  });

  /** An app on loopback and a server sidecar in front of it; returns the sidecar's inbound port. */
  async function serverSide(
    t: { after(fn: () => unknown): void },
    mode: InboundPort["mtlsMode"] = "PERMISSIVE",
    cert = helloCert,
  ) {
    const seen: http.IncomingHttpHeaders[] = [];
    const app = http.createServer((req, res) => {
      seen.push(req.headers);
      res.end("Hello version: v2, instance: helloworld-v2-abc\n");
    });
    await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
    t.after(() => app.close());
    const appPort = (app.address() as AddressInfo).port;
    const rt = new ProxyRuntime(workload("helloworld-v2", "cluster2", "default"));
    rt.setConfig({
      ...clientConfig([]),
      inbound: new Map([
        [appPort, { port: appPort, kind: "http", targetHost: "127.0.0.1", targetPort: appPort, mtlsMode: mode }],
      ]),
    });
    const inbound = new InboundServer({ runtime: rt, host: "127.0.0.1", port: 0, fixedPort: appPort });
    inbound.setCertificate(cert);
    const port = await inbound.start();
    t.after(() => inbound.destroy());
    return { port, rt, seen };
  }

  async function clientSide(t: { after(fn: () => unknown): void }, config: ProxyConfig, cert = sleepCert) {
    const rt = new ProxyRuntime(workload("sleep", "cluster1", "sleep"));
    rt.connector.setCertificate(cert);
    rt.setConfig(config);
    t.after(() => rt.connector.close());
    const outbound = new OutboundServer({
      runtime: rt,
      host: "127.0.0.1",
      port: 0,
      fixedDestination: { address: "10.201.0.7", port: 5000 },
    });
    const port = await outbound.start();
    t.after(() => outbound.destroy());
    return { port, rt };
  }

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
