import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, request } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type ClusterPki, createClusterPki, ensureServingCert, loadPki, PkiError, savePki } from "./pki.js";

const pkiA = createClusterPki({
  clusterName: "east",
  apiServerIps: ["10.200.0.1", "10.201.0.1"],
  apiServerDnsNames: ["east.local"],
});
const pkiB = createClusterPki({ clusterName: "west", apiServerIps: [], apiServerDnsNames: [] });

test("the serving certificate is issued by the CA and names every way the API server is reached", async () => {
  const pki = await pkiA;
  const ca = new X509Certificate(pki.caCertPem);
  const serving = new X509Certificate(pki.servingCertPem);
  assert.equal(ca.ca, true);
  assert.equal(serving.ca, false);
  assert.ok(serving.checkIssued(ca) && serving.verify(ca.publicKey));
  for (const dns of [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "east.local",
  ]) {
    assert.equal(serving.checkHost(dns), dns, dns);
  }
  for (const ip of ["127.0.0.1", "10.200.0.1", "10.201.0.1"]) assert.equal(serving.checkIP(ip), ip, ip);
  assert.equal(serving.checkIP("10.200.0.2"), undefined);
  assert.match(ca.subject, /east/);
  assert.match(pki.adminToken, /^[A-Za-z0-9_-]{43,}$/);
  assert.notEqual(pki.adminToken, (await pkiB).adminToken);
});

async function handshake(pki: ClusterPki, trust: string, target: { host: string; servername?: string }) {
  const server = createServer({ cert: pki.servingCertPem, key: pki.servingKeyPem }, (_req, res) => res.end("ok"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          ca: trust,
          agent: false,
          ...(target.servername ? { servername: target.servername } : {}),
        },
        (res) => {
          res.setEncoding("utf8");
          let body = "";
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve(body));
        },
      );
      req.on("error", reject);
      req.end();
    });
  } finally {
    server.close();
  }
}

test("a TLS client trusting the CA accepts the API server; one trusting another cluster's CA does not", async () => {
  const a = await pkiA;
  const b = await pkiB;
  assert.equal(await handshake(a, a.caCertPem, { host: "127.0.0.1" }), "ok");
  assert.equal(await handshake(a, a.caCertPem, { host: "127.0.0.1", servername: "kubernetes.default.svc" }), "ok");
  await assert.rejects(handshake(a, b.caCertPem, { host: "127.0.0.1" }), /self-signed|unable to verify|certificate/i);
});

test("savePki/loadPki round-trip with owner-only files; a mixed-up folder is refused with the reason", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "isthmus-pki-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = await pkiA;
  await savePki(join(dir, "pki"), a);
  const loaded = await loadPki(join(dir, "pki"));
  assert.deepEqual(loaded, a);
  for (const f of ["ca.key", "apiserver.key", "sa.key", "admin.token"]) {
    assert.equal((await stat(join(dir, "pki", f))).mode & 0o777, 0o600, f);
  }
  assert.equal((await stat(join(dir, "pki"))).mode & 0o777, 0o700);

  await writeFile(join(dir, "pki", "apiserver.key"), (await pkiB).servingKeyPem);
  await assert.rejects(loadPki(join(dir, "pki")), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.match(err.message, /apiserver\.key does not match apiserver\.crt/);
    return true;
  });
  await assert.rejects(
    loadPki(join(dir, "missing")),
    (err: unknown) => err instanceof PkiError && /ca\.crt/.test(err.message),
  );
  assert.ok((await readFile(join(dir, "pki", "sa.pub"), "utf8")).includes("PUBLIC KEY"));
});

test("ensureServingCert keeps a certificate that fits and reissues one from the same CA when the address changed", async () => {
  const a = await pkiA;
  const same = await ensureServingCert(a, { apiServerIps: ["10.200.0.1"], apiServerDnsNames: ["east.local"] });
  assert.equal(same.reissued, false);
  assert.equal(same.pki, a);

  const moved = await ensureServingCert(a, { apiServerIps: ["10.200.16.1"], apiServerDnsNames: [] });
  assert.equal(moved.reissued, true);
  assert.equal(moved.pki.caCertPem, a.caCertPem);
  assert.equal(moved.pki.adminToken, a.adminToken);
  const cert = new X509Certificate(moved.pki.servingCertPem);
  assert.equal(cert.checkIP("10.200.16.1"), "10.200.16.1");
  assert.equal(cert.checkHost("kubernetes.default.svc"), "kubernetes.default.svc");
  const ca = new X509Certificate(a.caCertPem);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  assert.equal(await handshake(moved.pki, a.caCertPem, { host: "127.0.0.1", servername: "kubernetes" }), "ok");
});
