// Bad input and hostile peers at the sidecar's entry points (issue 8): oversized, slow and
// malformed requests get Envoy's answers, an upstream reset mid-body is passed on as a reset,
// mutual TLS refuses clients without a mesh certificate or with one from another root, the admin
// port answers only on loopback, and random bytes never take the process down.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { networkInterfaces } from "node:os";
import { before, describe, it } from "node:test";
import tls from "node:tls";
import { startAdminServers } from "./admin/admin.js";
import type { InboundPort, ProxyConfig } from "./config/types.js";
import type { DownstreamLimits } from "./downstream.js";
import {
  type After,
  createRootCa,
  endpoint,
  get as getWithHost,
  meshConfig,
  startApp,
  startClientSide,
  startServerSide,
  workload,
  workloadCert as meshCert,
} from "./fixtures.test.js";
import { InboundServer } from "./inbound/listener.js";
import { ProxyRuntime } from "./runtime.js";
import type { WorkloadCertificate } from "./tls/identity.js";

const serverId = "spiffe://cluster.local/ns/sample/sa/server";
const clientId = "spiffe://cluster.local/ns/sample/sa/client";

const workloadCert = (spiffeId: string, root: ReturnType<typeof createRootCa>) => meshCert(spiffeId, "c1", root);

function clientConfig(port: number): ProxyConfig {
  return meshConfig({ endpoints: [endpoint(port, "c1")], allowed: [serverId], retry: null, domains: ["*"] });
}

/** Sends raw bytes and collects everything the peer answers until it closes. */
function raw(port: number, chunks: (string | Buffer)[], keepOpen = false): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let out = "";
    s.on("data", (d: Buffer) => {
      out += d.toString("latin1");
    });
    s.on("error", () => undefined);
    s.on("close", () => resolve(out));
    s.on("connect", () => {
      for (const c of chunks) s.write(c);
      if (!keepOpen) s.end();
    });
  });
}

const get = (port: number, path = "/") => getWithHost(port, "app.sample:5000", path);

describe("sidecar robustness", () => {
  const root = createRootCa();
  let serverCert: WorkloadCertificate;
  let clientCert: WorkloadCertificate;
  before(async () => {
    serverCert = await workloadCert(serverId, root);
    clientCert = await workloadCert(clientId, root);
  });

  const app = startApp;

  async function inbound(t: After, appPort: number, mode: InboundPort["mtlsMode"], limits: DownstreamLimits = {}) {
    return startServerSide(t, { appPort, cert: serverCert, mode, limits, workload: workload("server", "c1") });
  }

  async function outbound(t: After, upstreamPort: number, limits: DownstreamLimits = {}) {
    const rt = new ProxyRuntime(workload("client", "c1"));
    return (await startClientSide(t, { config: clientConfig(upstreamPort), cert: clientCert, limits, runtime: rt }))
      .port;
  }

  it("answers 431 to oversized headers and 400 to malformed requests, on both listeners", async (t) => {
    const appPort = await app(t, (_req, res) => res.end("ok"));
    const server = await inbound(t, appPort, "PERMISSIVE");
    const client = await outbound(t, server.port);
    for (const port of [client, server.port]) {
      const big = await raw(port, [`GET / HTTP/1.1\r\nhost: app.sample\r\nx-big: ${"a".repeat(70 * 1024)}\r\n\r\n`]);
      assert.match(big, /^HTTP\/1\.1 431 /);
      assert.match(await raw(port, ["GET / HTTP/1.1\r\nhost app.sample\r\n\r\n"]), /^HTTP\/1\.1 400 /);
      assert.match(await raw(port, ["\x00\x01 nonsense\r\n\r\n"]), /^HTTP\/1\.1 400 /);
      assert.equal((await get(port)).status, 200, "a valid request still works");
    }
  });

  it("answers 408 to a client too slow to send its headers", async (t) => {
    const appPort = await app(t, (_req, res) => res.end("ok"));
    const server = await inbound(t, appPort, "PERMISSIVE", { headersTimeoutMs: 300 });
    const client = await outbound(t, server.port, { headersTimeoutMs: 300 });
    for (const port of [client, server.port]) {
      // Half a request head, then silence: the listener must answer and close by itself.
      const answer = await raw(port, ["GET / HTTP/1.1\r\nhost: app.sample\r\n"], true);
      assert.match(answer, /^HTTP\/1\.1 408 /);
    }
  });

  it("closes a client that connects to an HTTP listener and never speaks; lets a server-first app speak on a TCP port", async (t) => {
    const appPort = await app(t, (_req, res) => res.end("ok"));
    const client = await outbound(t, appPort, { headersTimeoutMs: 200 });
    assert.equal(await raw(client, [], true), "", "closed without an answer");
    // A server-first protocol (greeting on connect) on an undeclared, PERMISSIVE port.
    const greeter = net.createServer((s) => s.end("220 ready\r\n"));
    await new Promise<void>((r) => greeter.listen(0, "127.0.0.1", r));
    t.after(() => greeter.close());
    const greeterPort = (greeter.address() as net.AddressInfo).port;
    const rt = new ProxyRuntime(workload("server", "c1"));
    const server = new InboundServer({
      runtime: rt,
      host: "127.0.0.1",
      port: 0,
      fixedPort: greeterPort,
      limits: { headersTimeoutMs: 200 },
    });
    const port = await server.start();
    t.after(() => server.destroy());
    assert.equal(await raw(port, [], true), "220 ready\r\n");
  });

  it("passes an upstream reset mid-body on as a reset, and keeps serving", async (t) => {
    const appPort = await app(t, (req, res) => {
      if (req.url === "/reset") {
        res.writeHead(200, { "content-length": 100_000 });
        res.write("partial");
        setImmediate(() => res.socket?.destroy());
        return;
      }
      res.end("whole");
    });
    const server = await inbound(t, appPort, "STRICT");
    const client = await outbound(t, server.port);
    await assert.rejects(get(client, "/reset"), /aborted|ECONNRESET|socket hang up/);
    const after = await get(client, "/");
    assert.deepEqual(after, { status: 200, body: "whole" });
  });

  it("STRICT refuses a client without a mesh certificate or with one from another root", async (t) => {
    let reached = 0;
    const appPort = await app(t, (_req, res) => {
      reached++;
      res.end("ok");
    });
    const server = await inbound(t, appPort, "STRICT");
    const stranger = await workloadCert(clientId, createRootCa({ commonName: "Other Root" }));
    const attempt = (opts: tls.ConnectionOptions) =>
      new Promise<string>((resolve) => {
        const s = tls.connect({
          host: "127.0.0.1",
          port: server.port,
          ca: serverCert.rootPem,
          checkServerIdentity: () => undefined,
          ALPNProtocols: ["istio"],
          ...opts,
        });
        let out = "";
        s.on("secureConnect", () => s.write("GET / HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n"));
        s.on("data", (d: Buffer) => {
          out += d.toString();
        });
        s.on("error", (e) => {
          out += `error: ${e.message}`;
        });
        s.on("close", () => resolve(out));
      });
    assert.doesNotMatch(await attempt({}), /^HTTP\/1\.1 200/, "no client certificate");
    assert.doesNotMatch(
      await attempt({ cert: stranger.certChainPem, key: stranger.keyPem }),
      /^HTTP\/1\.1 200/,
      "a certificate from another root",
    );
    assert.match(await raw(server.port, ["GET / HTTP/1.1\r\nhost: app\r\n\r\n"]), /^$/, "plaintext");
    assert.equal(reached, 0);
    assert.match(
      await attempt({ cert: clientCert.certChainPem, key: clientCert.keyPem }),
      /^HTTP\/1\.1 200/,
      "a mesh certificate",
    );
    assert.equal(reached, 1);
  });

  it("serves admin on loopback only, health and stats on every address", async (t) => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;
    const rt = new ProxyRuntime(workload("server", "c1"));
    const servers = await startAdminServers(
      { runtime: rt, configDump: () => ({}), isReady: () => ({ ready: true, reason: "" }) },
      { admin: 0, health: 0, prometheus: 0, host: "0.0.0.0" },
    );
    t.after(() => servers.close());
    const status = async (addr: string, port: number, path: string) =>
      (await fetch(`http://${addr}:${port}${path}`)).status;
    assert.equal(await status("127.0.0.1", servers.ports.admin, "/clusters"), 200);
    assert.ok(external !== undefined, "the machine has a non-loopback IPv4 address to test from");
    await assert.rejects(status(external, servers.ports.admin, "/clusters"), /fetch failed/);
    assert.equal(await status(external, servers.ports.health, "/healthz/ready"), 200);
    assert.equal(await status(external, servers.ports.prometheus, "/stats/prometheus"), 200);
  });

  it("drains: a request in flight when the listener closes still completes, new connections are refused", async (t) => {
    let release: () => void = () => undefined;
    let markArrived: () => void = () => undefined;
    const arrived = new Promise<void>((r) => {
      markArrived = r;
    });
    const appPort = await app(t, (_req, res) => {
      release = () => res.end("late");
      markArrived();
    });
    const server = await inbound(t, appPort, "PERMISSIVE");
    const { port, listener } = await startClientSide(t, { config: clientConfig(server.port), cert: clientCert });
    const inFlight = get(port);
    await arrived;
    const closed = listener.close();
    await assert.rejects(get(port), /ECONNREFUSED/);
    release();
    assert.deepEqual(await inFlight, { status: 200, body: "late" });
    await closed;
  });

  it("stays up under random bytes on 15001 and 15006, and serves valid requests after", async (t) => {
    const appPort = await app(t, (_req, res) => res.end("ok"));
    const server = await inbound(t, appPort, "PERMISSIVE", { headersTimeoutMs: 500 });
    const client = await outbound(t, server.port, { headersTimeoutMs: 500 });
    const prefixes = [
      Buffer.alloc(0),
      Buffer.from([0x16, 0x03, 0x01]),
      Buffer.from("GET / HTTP/1.1\r\n"),
      Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ];
    const runs: Promise<string>[] = [];
    for (let i = 0; i < 120; i++) {
      const port = i % 2 === 0 ? client : server.port;
      const prefix = prefixes[i % prefixes.length] ?? Buffer.alloc(0);
      runs.push(raw(port, [Buffer.concat([prefix, randomBytes(1 + Math.floor(Math.random() * 2048))])]));
    }
    await Promise.all(runs);
    assert.equal((await get(client)).status, 200);
    assert.equal((await get(server.port)).status, 200);
  });
});
