// The sidecar's data path end to end on loopback: a client sidecar's outbound listener, mutual
// TLS with SPIFFE checks, a server sidecar's inbound listener, and the app behind it.
import assert from "node:assert/strict";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { before, describe, it } from "node:test";
import { createLogger } from "../base/index.js";
import { startAdminServers } from "./admin/admin.js";
import type { InboundPort, ProxyConfig } from "./config/types.js";
import {
  type After,
  clusterName,
  createRootCa,
  endpoint as ep,
  get,
  helloId,
  istioRetry,
  meshConfig,
  sleepId,
  sleepToHelloOverMtls,
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

/** Resolves once `ok()` holds; fails after 10 s with what it waited for. */
async function waitUntil(ok: () => boolean): Promise<void> {
  const until = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`gave up waiting for ${ok.toString()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

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

  /** A client sidecar whose log lines are collected in `logs`. */
  const clientSide = (t: After, config: ProxyConfig, cert = sleepCert, logs: string[] = []) =>
    startClientSide(t, {
      config,
      cert,
      runtime: new ProxyRuntime(workload("sleep", "cluster1", "sleep"), {
        log: createLogger({ write: (line) => logs.push(line) }),
      }),
    });

  it("carries a request over mutual TLS and the server side records the verified peer", async (t) => {
    const server = await serverSide(t);
    const client = await clientSide(t, clientConfig([ep(server.port, "cluster2")]));
    const res = await get(client.port, "helloworld.sample:5000");
    assert.equal(res.status, 200);
    assert.equal(res.body, "Hello version: v2, instance: helloworld-v2-abc\n");
    assert.equal(server.seen[0]?.["x-forwarded-client-cert"], `By=${helloId};URI=${sleepId}`);
    assert.equal(server.seen[0]?.["x-isthmus-peer-metadata"], undefined, "peer metadata must not reach the app");
    const labels = sleepToHelloOverMtls;
    assert.equal(server.rt.metrics.requestCount(labels), 1);
    assert.match(
      client.rt.metrics.render(),
      /istio_requests_total\{.*destination_cluster="cluster2".*response_code="200"/,
    );
  });

  it("refuses a server whose SPIFFE identity is not the service's", async (t) => {
    const server = await serverSide(t);
    const logs: string[] = [];
    const client = await clientSide(
      t,
      clientConfig([ep(server.port, "cluster2")], ["spiffe://cluster.local/ns/sample/sa/other"]),
      sleepCert,
      logs,
    );
    const res = await get(client.port, "helloworld.sample:5000");
    assert.equal(res.status, 503);
    assert.match(res.body, /upstream connect error/);
    assert.equal(server.seen.length, 0);
    const line = logs.find((l) => l.includes("upstream TLS handshake failed"));
    assert.ok(line, logs.join("\n"));
    assert.ok(line.includes(`endpoint=127.0.0.1:${server.port}`), line);
    assert.ok(line.includes(`cluster="outbound|5000||helloworld.sample.svc.cluster.local"`), line);
    assert.ok(
      line.includes(`reason="peer is ${helloId} but the cluster expects spiffe://cluster.local/ns/sample/sa/other"`),
      line,
    );
  });

  it("names a failed handshake to an endpoint of another root, retries elsewhere, and ejects that host", async (t) => {
    const good = await serverSide(t);
    const foreign = await workloadCert(helloId, "cluster3", createRootCa({ commonName: "Foreign Root" }));
    const bad = await serverSide(t, "PERMISSIVE", foreign);
    const logs: string[] = [];
    const client = await clientSide(
      t,
      clientConfig([ep(bad.port, "cluster3"), ep(good.port, "cluster2")]),
      sleepCert,
      logs,
    );
    const badHost = `127.0.0.1:${bad.port}`;
    const cluster = clientConfig([]).clusters.values().next().value;
    assert.ok(cluster);
    // Every request is answered (the failed host is retried elsewhere) until outlier detection ejects it.
    let requests = 0;
    while (!client.rt.isEjected(cluster, ep(bad.port, "cluster3")) && requests < 40) {
      assert.equal((await get(client.port, "helloworld.sample:5000")).status, 200);
      requests++;
    }
    assert.ok(client.rt.isEjected(cluster, ep(bad.port, "cluster3")), `ejected within ${requests} requests`);
    assert.equal(bad.seen.length, 0);
    const named = logs.filter((l) => l.includes("upstream TLS handshake failed"));
    assert.equal(named.length, 5, "one line per failed handshake (Istio's 5 consecutive errors eject)");
    assert.match(
      named[0] ?? "",
      new RegExp(
        `warn upstream TLS handshake failed endpoint=${badHost} cluster="outbound\\|5000\\|\\|helloworld\\.sample\\.svc\\.cluster\\.local" kubeCluster=cluster3 reason="certificate chain ends at an unknown root \\(`,
      ),
    );
    assert.ok(logs.some((l) => l.includes("endpoint ejected by outlier detection") && l.includes(badHost)));
    assert.match(
      client.rt.metrics.render(),
      /isthmus_upstream_tls_handshake_failures_total\{cluster_name="outbound\|5000\|\|helloworld.sample.svc.cluster.local",reason="unknown_root"\} 5/,
    );

    const admin = await startAdminServers(
      { runtime: client.rt, configDump: () => ({}), isReady: () => ({ ready: true, reason: "" }) },
      { admin: 0, health: 0, prometheus: 0, host: "127.0.0.1" },
    );
    t.after(() => admin.close());
    const text = await (await fetch(`http://127.0.0.1:${admin.ports.admin}/clusters`)).text();
    assert.match(text, new RegExp(`::${badHost}::health_flags::/failed_outlier_check\n`));
    assert.match(text, new RegExp(`::127.0.0.1:${good.port}::health_flags::healthy\n`));
    const json = (await (await fetch(`http://127.0.0.1:${admin.ports.admin}/clusters?format=json`)).json()) as {
      cluster_statuses: { hosts: { address: string; outlierCheck: string; lastFailure?: string }[] }[];
    };
    const host = json.cluster_statuses[0]?.hosts.find((h) => h.address === badHost);
    assert.equal(host?.outlierCheck, "FAILED");
    assert.match(host?.lastFailure ?? "", /^certificate chain ends at an unknown root/);
    // Ejected: the next requests go straight to the good host.
    const before = logs.length;
    for (let i = 0; i < 3; i++) assert.equal((await get(client.port, "helloworld.sample:5000")).status, 200);
    assert.equal(logs.length, before, "no more handshakes with the ejected host");
  });

  it("applies the route timeout to the whole request, retries included, and the per-try timeout to each attempt", async (t) => {
    let arrivals = 0;
    const hang = http.createServer(() => {
      arrivals++;
    });
    await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
    t.after(() => {
      hang.closeAllConnections();
      hang.close();
    });
    const appPort = (hang.address() as AddressInfo).port;
    const slow = await startServerSide(t, { appPort, cert: helloCert });
    const gatewayRetry = { ...istioRetry, retryOn: new Set(["connect-failure", "gateway-error"]) };
    // Route timeout only: one attempt, then 504 (a timeout of the route is never retried).
    const routeOnly = await clientSide(
      t,
      meshConfig({ endpoints: [ep(slow.port, "cluster2")], timeoutMs: 150, retry: gatewayRetry }),
    );
    const res = await get(routeOnly.port, "helloworld.sample:5000");
    assert.deepEqual(res, { status: 504, body: "upstream request timeout" });
    assert.equal(arrivals, 1);
    // Per-try timeout shorter than the route's: the attempt is retried, and the route's deadline ends it all.
    arrivals = 0;
    const perTry = await clientSide(
      t,
      meshConfig({
        endpoints: [ep(slow.port, "cluster2")],
        timeoutMs: 2000,
        retry: { ...gatewayRetry, numRetries: 1, perTryTimeoutMs: 100 },
      }),
    );
    const res2 = await get(perTry.port, "helloworld.sample:5000");
    assert.deepEqual(res2, { status: 504, body: "upstream request timeout" });
    assert.equal(arrivals, 2, "the first try timed out and was retried once");
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

  it("forgets a request whose client left while an attempt waited, so least request still picks that host", async (t) => {
    const server = await serverSide(t);
    // Accepts TCP and never answers the TLS handshake: the attempt waits out the connect timeout.
    const stalled: net.Socket[] = [];
    const tarpit = net.createServer((s) => stalled.push(s));
    await new Promise<void>((r) => tarpit.listen(0, "127.0.0.1", r));
    t.after(() => {
      for (const s of stalled) s.destroy();
      tarpit.close();
    });
    const base = clientConfig([ep((tarpit.address() as AddressInfo).port, "cluster1"), ep(server.port, "cluster2")]);
    const cluster = base.clusters.get(clusterName);
    assert.ok(cluster);
    const fast = { ...cluster, connectTimeoutMs: 300 };
    const client = await clientSide(t, { ...base, clusters: new Map([[clusterName, fast]]) });
    // Least request with ties in turn: the first request goes to the tarpit, and its client gives up.
    const req = http.get({
      host: "127.0.0.1",
      port: client.port,
      path: "/hello",
      headers: { host: "helloworld.sample" },
    });
    req.on("error", () => {});
    await waitUntil(() => stalled.length > 0);
    req.destroy();
    // The connect timeout ends the attempt; a client that left gets no retry (Envoy resets the
    // upstream on a downstream disconnect), and nothing stays counted in flight.
    const good = ep(server.port, "cluster2");
    const trap = ep((tarpit.address() as AddressInfo).port, "cluster1");
    await waitUntil(() => client.rt.balancer(fast).active(trap) === 0);
    assert.equal(client.rt.balancer(fast).active(good), 0);
    assert.equal(server.seen.length, 0);
    assert.equal((await get(client.port)).status, 200);
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
