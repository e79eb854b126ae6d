/**
 * The CA against two real local API servers (HTTPS, their own token keys, TokenReview as
 * kube-apiserver answers it): each proxy's token is reviewed in the cluster it names.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { envFrom } from "../base/index.js";
import { startTestApiServer, type TestApiServer } from "../devcluster/apiserver/http/testing.js";
import { loadKubeConfig } from "../kube/index.js";
import {
  CertificateAuthority,
  createCertificate,
  createCsr,
  createIntermediateCa,
  createRootCa,
  RestKubeApi,
} from "./index.js";

async function istioCaToken(
  s: TestApiServer,
  namespace: string,
  name: string,
  expirationSeconds = 3600,
): Promise<string> {
  await s.serviceAccountToken(namespace, name); // creates the ServiceAccount
  const sa = await s.api.client().get({ group: "", version: "v1", resource: "serviceaccounts" }, namespace, name);
  return s.tokens.issue({
    namespace,
    serviceAccount: { name, uid: sa.metadata.uid ?? "" },
    audiences: ["istio-ca"],
    expirationSeconds,
  }).token;
}

describe("certificate requests reviewed by real API servers", () => {
  it("signs for the reviewed identity in the named cluster, refuses a token shown to the wrong cluster", async (t) => {
    const [s1, s2] = await Promise.all([startTestApiServer(), startTestApiServer()]);
    t.after(() => Promise.all([s1.close(), s2.close()]));
    const client = async (s: TestApiServer) =>
      new RestKubeApi(loadKubeConfig({ kubeconfigPath: await s.writeKubeconfig(), env: envFrom({}) }));
    const clients = new Map([
      ["cluster1", await client(s1)],
      ["cluster2", await client(s2)],
    ]);
    const root = await createRootCa();
    const ca = CertificateAuthority.fromFiles(
      await createIntermediateCa({ parent: root, cluster: "cluster1" }),
      "cacerts",
    );
    assert.ok(ca.ok);
    const opts = {
      ca: ca.value,
      trustDomain: "cluster.local",
      localClusterId: "cluster1",
      clusterClients: (id: string) => clients.get(id),
      remoteClusterIds: () => ["cluster2"],
    };
    for (const s of [s1, s2]) {
      await s.api
        .client()
        .create(
          { group: "", version: "v1", resource: "namespaces" },
          { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } },
        );
    }
    const sleepId = "spiffe://cluster.local/ns/sample/sa/sleep";
    const token2 = await istioCaToken(s2, "default", "sleep");
    const { csrPem } = await createCsr("spiffe://cluster.local/ns/default/sa/sleep");

    const ok = await createCertificate(
      { csr: csrPem, validityDuration: 0 },
      { authorization: `Bearer ${token2}`, clusterId: "cluster2" },
      opts,
    );
    assert.ok(ok.ok, ok.ok ? "" : ok.reason);
    assert.equal(
      new X509Certificate(ok.certChain[0] ?? "").subjectAltName,
      "URI:spiffe://cluster.local/ns/default/sa/sleep",
    );

    const wrongCluster = await createCertificate(
      { csr: csrPem, validityDuration: 0 },
      { authorization: `Bearer ${token2}`, clusterId: "cluster1" },
      opts,
    );
    assert.match(wrongCluster.ok ? "" : wrongCluster.reason, /cluster "cluster1" did not accept the token/);

    const otherSa = await createCertificate(
      { csr: (await createCsr(sleepId)).csrPem, validityDuration: 0 },
      { authorization: `Bearer ${await istioCaToken(s1, "sample", "default")}`, clusterId: "cluster1" },
      opts,
    );
    assert.match(
      otherSa.ok ? "" : otherSa.reason,
      /asks for identity spiffe:\/\/cluster.local\/ns\/sample\/sa\/sleep, but the caller's token is for spiffe:\/\/cluster.local\/ns\/sample\/sa\/default/,
    );

    // A token for the API server's own audience is not a CA token.
    const apiToken = await s1.serviceAccountToken("sample", "sleep");
    const wrongAudience = await createCertificate(
      { csr: (await createCsr(sleepId)).csrPem, validityDuration: 0 },
      { authorization: `Bearer ${apiToken}`, clusterId: "cluster1" },
      opts,
    );
    assert.equal(wrongAudience.ok, false);
  });
});
