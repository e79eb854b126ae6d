import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign, verify, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import { connect, createServer, type TLSSocket } from "node:tls";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  authenticateCaller,
  type CaFiles,
  type CaKubeClient,
  CertificateAuthority,
  createCertificate,
  createCertificateServiceHandlers,
  createCsr,
  createIntermediateCa,
  createRootCa,
  DEFAULT_WORKLOAD_CERT_TTL_MS,
  istioCertificateServiceDefinition,
  type KubeObjectLike,
  type TokenClusters,
} from "./index.js";

/**
 * A Kubernetes cluster's token issuer and its TokenReview, with real ES256 signatures: a token
 * passes only the review of the cluster whose key signed it, before it expires, for its audience.
 */
class TokenIssuer {
  readonly #key: KeyObject;
  readonly #pub: KeyObject;
  constructor(readonly clusterId: string) {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    this.#key = pair.privateKey;
    this.#pub = pair.publicKey;
  }
  issue(o: { namespace: string; serviceAccount: string; audience?: string; expiresInSeconds?: number }): string {
    const now = Math.floor(Date.now() / 1000);
    const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    const body = `${enc({ alg: "ES256", typ: "JWT" })}.${enc({
      iss: `https://${this.clusterId}.example`,
      aud: [o.audience ?? "istio-ca"],
      sub: `system:serviceaccount:${o.namespace}:${o.serviceAccount}`,
      exp: now + (o.expiresInSeconds ?? 3600),
      iat: now,
    })}`;
    const sig = sign("sha256", Buffer.from(body), { key: this.#key, dsaEncoding: "ieee-p1363" });
    return `${body}.${sig.toString("base64url")}`;
  }
  reviews = 0;
  /** The TokenReview a Kubernetes API server would answer. */
  client(): Pick<CaKubeClient, "create"> {
    return {
      create: async (_ref, obj: KubeObjectLike) => {
        this.reviews++;
        const spec = obj.spec as { token: string; audiences: string[] };
        const [h, p, s] = spec.token.split(".");
        const deny = (error: string) => ({ ...obj, status: { authenticated: false, error } });
        if (!h || !p || !s) return deny("not a JWT");
        const ok = verify(
          "sha256",
          Buffer.from(`${h}.${p}`),
          { key: this.#pub, dsaEncoding: "ieee-p1363" },
          Buffer.from(s, "base64url"),
        );
        if (!ok) return deny("invalid bearer token, square/go-jose: error in cryptographic primitive");
        const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as {
          aud: string[];
          sub: string;
          exp: number;
        };
        if (claims.exp * 1000 < Date.now()) return deny("token has expired");
        const aud = spec.audiences.filter((a) => claims.aud.includes(a));
        if (aud.length === 0) return deny("token audiences are invalid");
        return { ...obj, status: { authenticated: true, audiences: aud, user: { username: claims.sub, groups: [] } } };
      },
    };
  }
}

async function sharedRootClusters(): Promise<{ root: { certPem: string; keyPem: string }; c1: CaFiles; c2: CaFiles }> {
  const root = await createRootCa();
  return {
    root,
    c1: await createIntermediateCa({ parent: root, cluster: "cluster1" }),
    c2: await createIntermediateCa({ parent: root, cluster: "cluster2" }),
  };
}

function mustCa(files: CaFiles): CertificateAuthority {
  const r = CertificateAuthority.fromFiles(files, "cacerts");
  assert.ok(r.ok, r.ok ? "" : r.reasons.join("; "));
  return r.value;
}

describe("plug-in CA files", () => {
  it("an intermediate is made as Istio's Makefile makes it", async () => {
    const { root, c1 } = await sharedRootClusters();
    const cert = new X509Certificate(c1["ca-cert.pem"]);
    assert.match(cert.subject, /L=cluster1/);
    assert.match(cert.subject, /CN=Intermediate CA/);
    assert.equal(cert.ca, true);
    assert.equal(cert.subjectAltName, "DNS:istiod.istio-system.svc");
    assert.ok(cert.verify(new X509Certificate(root.certPem).publicKey));
    assert.equal(c1["root-cert.pem"], root.certPem.endsWith("\n") ? root.certPem : `${root.certPem}\n`);
    assert.equal(c1["cert-chain.pem"], `${c1["ca-cert.pem"]}${c1["root-cert.pem"]}`);
  });

  it("files that do not fit together are refused with every reason", async () => {
    const { c1, c2 } = await sharedRootClusters();
    const r = CertificateAuthority.fromFiles(
      { ...c1, "ca-key.pem": c2["ca-key.pem"], "cert-chain.pem": c2["cert-chain.pem"] },
      "cacerts",
    );
    assert.equal(r.ok, false);
    const reasons = r.ok ? [] : r.reasons;
    assert.ok(reasons.some((x) => /ca-key.pem is not the key of ca-cert.pem/.test(x)));
    assert.ok(reasons.some((x) => /does not start with ca-cert.pem/.test(x)));
  });

  it("leaf certificates from each cluster's intermediate chain to the shared root, and complete an mTLS handshake", async (t) => {
    const { root, c1, c2 } = await sharedRootClusters();
    const ca1 = mustCa(c1);
    const ca2 = mustCa(c2);
    const sleepId = "spiffe://cluster.local/ns/sample/sa/sleep";
    const helloId = "spiffe://cluster.local/ns/sample/sa/default";
    const a = await createCsr(sleepId);
    const b = await createCsr(helloId);
    const chainA = await ca1.signWorkloadCsr({ csrPem: a.csrPem, spiffeId: sleepId });
    const chainB = await ca2.signWorkloadCsr({ csrPem: b.csrPem, spiffeId: helloId });
    assert.ok(chainA.ok && chainB.ok);
    const rootCert = new X509Certificate(root.certPem);
    for (const chain of [chainA.value, chainB.value]) {
      const certs = chain.map((p) => new X509Certificate(p));
      for (let i = 0; i + 1 < certs.length; i++)
        assert.ok(certs[i]?.verify(certs[i + 1]?.publicKey ?? rootCert.publicKey));
      assert.equal(certs.at(-1)?.fingerprint256, rootCert.fingerprint256);
      const leaf = certs[0];
      assert.ok(leaf);
      const ttl = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
      // 24 h plus the one-minute back-dating for clock skew; X.509 times have one-second precision.
      assert.ok(Math.abs(ttl - DEFAULT_WORKLOAD_CERT_TTL_MS - 60_000) < 2000, `ttl ${ttl}`);
      assert.equal(leaf.ca, false);
    }
    assert.equal(new X509Certificate(chainA.value[0] ?? "").subjectAltName, `URI:${sleepId}`);

    // cluster2's helloworld serves, cluster1's sleep connects; each trusts only the root.
    const server = createServer({
      key: b.keyPem,
      cert: chainB.value.slice(0, -1).join(""),
      ca: root.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    const serverSaw = new Promise<string | undefined>((resolve) => {
      server.on("secureConnection", (s: TLSSocket) => {
        resolve(s.getPeerCertificate().subjectaltname);
        s.end("hello");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => server.close());
    const client = connect({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      key: a.keyPem,
      cert: chainA.value.slice(0, -1).join(""),
      ca: root.certPem,
      checkServerIdentity: (_host, cert) =>
        cert.subjectaltname === `URI:${helloId}` ? undefined : new Error(`unexpected server ${cert.subjectaltname}`),
    });
    t.after(() => client.destroy());
    const clientSaw = await new Promise<string | undefined>((resolve, reject) => {
      client.on("secureConnect", () => resolve(client.getPeerCertificate().subjectaltname));
      client.on("error", reject);
    });
    assert.equal(clientSaw, `URI:${helloId}`);
    assert.equal(await serverSaw, `URI:${sleepId}`);
  });

  it("a certificate from another root is refused in the handshake", async (t) => {
    const { root, c1 } = await sharedRootClusters();
    const otherRoot = await createRootCa();
    const other = mustCa(await createIntermediateCa({ parent: otherRoot, cluster: "elsewhere" }));
    const ca1 = mustCa(c1);
    const a = await createCsr("spiffe://cluster.local/ns/sample/sa/sleep");
    const b = await createCsr("spiffe://cluster.local/ns/sample/sa/default");
    const chainA = await other.signWorkloadCsr({
      csrPem: a.csrPem,
      spiffeId: "spiffe://cluster.local/ns/sample/sa/sleep",
    });
    const chainB = await ca1.signWorkloadCsr({
      csrPem: b.csrPem,
      spiffeId: "spiffe://cluster.local/ns/sample/sa/default",
    });
    assert.ok(chainA.ok && chainB.ok);
    const server = createServer({
      key: b.keyPem,
      cert: chainB.value.join(""),
      ca: root.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => server.close());
    const client = connect({
      host: "127.0.0.1",
      port: (server.address() as AddressInfo).port,
      key: a.keyPem,
      cert: chainA.value.join(""),
      ca: otherRoot.certPem,
      checkServerIdentity: () => undefined,
    });
    t.after(() => client.destroy());
    const err = await new Promise<Error>((resolve) => client.on("error", resolve));
    assert.match(err.message, /self-signed|unable to verify|certificate/i);
  });
});

describe("certificate requests", async () => {
  const { c1 } = await sharedRootClusters();
  const ca = mustCa(c1);
  const cluster1 = new TokenIssuer("cluster1");
  const cluster2 = new TokenIssuer("cluster2");
  const clusters: TokenClusters = {
    localClusterId: "cluster1",
    clusterClients: (id) => (id === "cluster1" ? cluster1.client() : id === "cluster2" ? cluster2.client() : undefined),
    remoteClusterIds: () => ["cluster2"],
  };
  const opts = { ...clusters, ca, trustDomain: "cluster.local" };
  const sleepId = "spiffe://cluster.local/ns/sample/sa/sleep";

  it("signs a CSR for the identity of the reviewed token", async () => {
    const { csrPem } = await createCsr(sleepId);
    const token = cluster2.issue({ namespace: "sample", serviceAccount: "sleep" });
    const r = await createCertificate(
      { csr: csrPem, validityDuration: 0 },
      { authorization: `Bearer ${token}`, clusterId: "cluster2" },
      opts,
    );
    assert.ok(r.ok, r.ok ? "" : r.reason);
    assert.equal(new X509Certificate(r.certChain[0] ?? "").subjectAltName, `URI:${sleepId}`);
    assert.equal(r.certChain.length, 3);
  });

  it("an empty ClusterID means the control plane's own cluster", async () => {
    const token = cluster1.issue({ namespace: "sample", serviceAccount: "sleep" });
    const who = await authenticateCaller({
      ...clusters,
      authorization: `Bearer ${token}`,
      claimedClusterId: "",
      trustDomain: "cluster.local",
    });
    assert.ok(who.ok);
    assert.equal(who.value.clusterId, "cluster1");
    assert.equal(who.value.spiffeId, sleepId);
  });

  const refusals: [string, () => Promise<{ csr: string; authorization?: string; clusterId?: string }>, RegExp][] = [
    [
      "a token from another service account (the CSR asks for sleep, the token is default's)",
      async () => ({
        csr: (await createCsr(sleepId)).csrPem,
        authorization: `Bearer ${cluster1.issue({ namespace: "sample", serviceAccount: "default" })}`,
        clusterId: "cluster1",
      }),
      /the CSR asks for identity spiffe:\/\/cluster.local\/ns\/sample\/sa\/sleep, but the caller's token is for spiffe:\/\/cluster.local\/ns\/sample\/sa\/default/,
    ],
    [
      "a token from cluster2's issuer checked against cluster1",
      async () => ({
        csr: (await createCsr(sleepId)).csrPem,
        authorization: `Bearer ${cluster2.issue({ namespace: "sample", serviceAccount: "sleep" })}`,
        clusterId: "cluster1",
      }),
      /cluster "cluster1" did not accept the token/,
    ],
    [
      "an expired token",
      async () => ({
        csr: (await createCsr(sleepId)).csrPem,
        authorization: `Bearer ${cluster1.issue({ namespace: "sample", serviceAccount: "sleep", expiresInSeconds: -10 })}`,
        clusterId: "cluster1",
      }),
      /the token expired at/,
    ],
    [
      "a token for another audience",
      async () => ({
        csr: (await createCsr(sleepId)).csrPem,
        authorization: `Bearer ${cluster1.issue({ namespace: "sample", serviceAccount: "sleep", audience: "https://kubernetes.default.svc" })}`,
        clusterId: "cluster1",
      }),
      /did not accept the token: token audiences are invalid/,
    ],
    [
      "a cluster the control plane does not know",
      async () => ({
        csr: (await createCsr(sleepId)).csrPem,
        authorization: `Bearer ${cluster1.issue({ namespace: "sample", serviceAccount: "sleep" })}`,
        clusterId: "cluster9",
      }),
      /^client claims to be in cluster "cluster9", but we only know about local cluster "cluster1" and remote clusters \[cluster2\]$/,
    ],
    ["no token", async () => ({ csr: (await createCsr(sleepId)).csrPem, clusterId: "cluster1" }), /no bearer token/],
    [
      "a CSR that is not a CSR",
      async () => ({
        csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        authorization: `Bearer ${cluster1.issue({ namespace: "sample", serviceAccount: "sleep" })}`,
        clusterId: "cluster1",
      }),
      /not a PEM PKCS#10/,
    ],
  ];
  for (const [name, make, reason] of refusals) {
    it(`refuses ${name}`, async () => {
      const req = await make();
      const r = await createCertificate({ csr: req.csr, validityDuration: 0 }, req, opts);
      assert.equal(r.ok, false);
      assert.match(r.ok ? "" : r.reason, reason);
    });
  }

  it("refuses a validity longer than 90 days", async () => {
    const token = cluster1.issue({ namespace: "sample", serviceAccount: "sleep" });
    const r = await createCertificate(
      { csr: (await createCsr(sleepId)).csrPem, validityDuration: 100 * 86400 },
      { authorization: `Bearer ${token}`, clusterId: "cluster1" },
      opts,
    );
    assert.match(r.ok ? "" : r.reason, /longer than the maximum/);
  });

  it("serves istio.v1.auth.IstioCertificateService over gRPC, wire-compatible with the .proto", async (t) => {
    const server = new grpc.Server();
    server.addService(istioCertificateServiceDefinition, createCertificateServiceHandlers(opts));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    t.after(() => server.forceShutdown());
    const protoPath = fileURLToPath(new URL("../../proto/istio/v1/auth/ca.proto", import.meta.url));
    const includeDir = fileURLToPath(new URL("../../node_modules/@grpc/grpc-js-xds/deps/googleapis", import.meta.url));
    const def = protoLoader.loadSync(protoPath, {
      includeDirs: [
        includeDir,
        fileURLToPath(new URL("../../node_modules/@grpc/grpc-js-xds/deps/protoc-gen-validate", import.meta.url)),
      ],
      longs: Number,
      keepCase: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.istio.v1.auth.IstioCertificateService(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    );
    t.after(() => client.close());
    const call = (req: unknown, md: grpc.Metadata) =>
      new Promise<{ err: grpc.ServiceError | null; res?: { cert_chain: string[] } }>((resolve) => {
        (
          client as unknown as Record<
            string,
            (
              r: unknown,
              m: grpc.Metadata,
              cb: (e: grpc.ServiceError | null, r?: { cert_chain: string[] }) => void,
            ) => void
          >
        ).CreateCertificate?.(req, md, (err, res) => resolve({ err, res }));
      });
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${cluster2.issue({ namespace: "sample", serviceAccount: "sleep" })}`);
    md.set("ClusterID", "cluster2");
    const { csrPem } = await createCsr(sleepId);
    const ok = await call({ csr: csrPem, validity_duration: 3600, metadata: { fields: {} } }, md);
    assert.equal(ok.err, null);
    const leaf = new X509Certificate(ok.res?.cert_chain[0] ?? "");
    assert.equal(leaf.subjectAltName, `URI:${sleepId}`);
    const ttl = Date.parse(leaf.validTo) - Date.parse(leaf.validFrom);
    assert.ok(Math.abs(ttl - 3600_000 - 60_000) < 2000, `ttl ${ttl}`);

    const bad = new grpc.Metadata();
    bad.set("authorization", `Bearer ${cluster2.issue({ namespace: "sample", serviceAccount: "sleep" })}`);
    bad.set("ClusterID", "cluster1");
    const refused = await call({ csr: csrPem }, bad);
    assert.equal(refused.err?.code, grpc.status.UNAUTHENTICATED);
    assert.match(refused.err?.details ?? "", /cluster "cluster1" did not accept the token/);
  });
});

describe("keys", () => {
  it("PEM keys written are PKCS#8 and load in node:crypto", async () => {
    const root = await createRootCa();
    assert.equal(createPrivateKey(root.keyPem).asymmetricKeyType, "ec");
  });
});
