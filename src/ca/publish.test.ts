import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { silentLogger, waitFor } from "../base/index.js";
import { LocalApi } from "../devcluster/apiserver/index.js";
import {
  CaConfigError,
  type CaKubeClient,
  createIntermediateCa,
  createRootCa,
  loadOrCreateCa,
  patchWebhookCaBundle,
  Refs,
  runRootCertPublisher,
  runWebhookCaBundlePatcher,
} from "./index.js";

async function cluster(t: { after: (fn: () => Promise<void> | void) => void }): Promise<CaKubeClient> {
  const api = new LocalApi({ serviceCidr: "10.201.250.0/24", clusterName: "ca-test", log: silentLogger });
  await api.start();
  t.after(() => api.close());
  const client: CaKubeClient = api.client();
  await client.create(Refs.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } });
  return client;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("loadOrCreateCa", () => {
  it("makes a self-signed root once, keeps it in istio-ca-secret, and reuses it", async (t) => {
    const client = await cluster(t);
    const first = await loadOrCreateCa({ client });
    assert.equal(first.source, "generated");
    const secret = await client.get(Refs.secrets, "istio-system", "istio-ca-secret");
    assert.equal(secret.type, "istio.io/ca-root");
    const again = await loadOrCreateCa({ client });
    assert.equal(again.source, "istio-ca-secret");
    assert.equal(again.rootPem, first.rootPem);
    assert.ok(new X509Certificate(first.rootPem).ca);
  });

  it("prefers the plug-in cacerts Secret", async (t) => {
    const client = await cluster(t);
    const root = await createRootCa();
    const files = await createIntermediateCa({ parent: root, cluster: "cluster1" });
    await client.create(Refs.secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "cacerts", namespace: "istio-system" },
      data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, b64(v)])),
    });
    const ca = await loadOrCreateCa({ client });
    assert.equal(ca.source, "cacerts");
    assert.equal(new X509Certificate(ca.rootPem).fingerprint256, new X509Certificate(root.certPem).fingerprint256);
    const serving = await ca.issueServingCert();
    const leaf = new X509Certificate(serving.certPem);
    assert.match(leaf.subjectAltName ?? "", /DNS:istiod.istio-system.svc/);
  });

  it("refuses a cacerts Secret whose key is not the certificate's, naming the Secret", async (t) => {
    const client = await cluster(t);
    const root = await createRootCa();
    const a = await createIntermediateCa({ parent: root, cluster: "cluster1" });
    const b = await createIntermediateCa({ parent: root, cluster: "cluster2" });
    await client.create(Refs.secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "cacerts", namespace: "istio-system" },
      data: Object.fromEntries(Object.entries({ ...a, "ca-key.pem": b["ca-key.pem"] }).map(([k, v]) => [k, b64(v)])),
    });
    await assert.rejects(loadOrCreateCa({ client }), (err: unknown) => {
      assert.ok(err instanceof CaConfigError);
      assert.match(err.message, /Secret istio-system\/cacerts/);
      assert.match(err.message, /ca-key.pem is not the key of ca-cert.pem/);
      return true;
    });
  });
});

describe("runRootCertPublisher", () => {
  it("puts istio-ca-root-cert in every namespace, new ones too, and restores an edited one", async (t) => {
    const client = await cluster(t);
    const root = (await createRootCa()).certPem;
    const ac = new AbortController();
    let synced = false;
    const running = runRootCertPublisher({ client, rootPem: root, signal: ac.signal, onSynced: () => (synced = true) });
    t.after(async () => {
      ac.abort();
      await running;
    });
    const rootOf = async (ns: string) => {
      try {
        const cm = await client.get(Refs.configmaps, ns, "istio-ca-root-cert");
        return (cm.data as Record<string, string>)["root-cert.pem"];
      } catch {
        return undefined;
      }
    };
    await waitFor("initial sync", () => synced);
    for (const ns of ["default", "kube-system", "istio-system"]) assert.equal(await rootOf(ns), root);

    await client.create(Refs.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
    await waitFor("root in sample", async () => (await rootOf("sample")) === root);

    const cm = await client.get(Refs.configmaps, "sample", "istio-ca-root-cert");
    await client.update(Refs.configmaps, { ...cm, data: { "root-cert.pem": "tampered" } });
    await waitFor("root restored", async () => (await rootOf("sample")) === root);
  });
});

describe("webhook caBundle", () => {
  it("patches every webhook's caBundle, and again after a re-install drops it", async (t) => {
    const client = await cluster(t);
    const ca = (await createRootCa()).certPem;
    assert.equal(await patchWebhookCaBundle({ client, caPem: ca }), "not-found");
    const ref = Refs.mutatingwebhookconfigurations;
    const config = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "MutatingWebhookConfiguration",
      metadata: { name: "istio-sidecar-injector" },
      webhooks: [
        {
          name: "namespace.sidecar-injector.istio.io",
          admissionReviewVersions: ["v1"],
          sideEffects: "None",
          clientConfig: { service: { name: "istiod", namespace: "istio-system", path: "/inject", port: 443 } },
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
        },
      ],
    };
    await client.create(ref, config);
    const ac = new AbortController();
    const running = runWebhookCaBundlePatcher({ client, caPem: ca, signal: ac.signal });
    t.after(async () => {
      ac.abort();
      await running;
    });
    const bundle = async () => {
      const w = await client.get(ref, undefined, "istio-sidecar-injector");
      return (w.webhooks as { clientConfig: { caBundle?: string } }[])[0]?.clientConfig.caBundle;
    };
    await waitFor("caBundle set", async () => (await bundle()) === b64(ca));
    const current = await client.get(ref, undefined, "istio-sidecar-injector");
    await client.update(ref, {
      ...config,
      metadata: { ...config.metadata, resourceVersion: current.metadata.resourceVersion },
    });
    await waitFor("caBundle set again", async () => (await bundle()) === b64(ca));
    assert.equal(await patchWebhookCaBundle({ client, caPem: ca }), "unchanged");
  });
});
