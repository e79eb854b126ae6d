/**
 * The mesh's own sidecar injector (src/inject) behind this folder's webhook admission and the
 * real LocalApi, with Istio's two injector webhooks (namespace- and object-selected): pods are
 * stored injected exactly where Istio would inject them.
 */
import assert from "node:assert/strict";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { createInjectionHandler, defaultInjectValues } from "../../inject/index.js";
import { type KubeObject, Resources } from "../api/types.js";
import { createClusterPki } from "./pki.js";
import { obj, testApi } from "./test-support.js";
import { WebhookAdmission } from "./webhooks.js";

test("Istio's injector webhooks, served by src/inject, inject pods stored through LocalApi", async (t) => {
  const pki = await createClusterPki({
    clusterName: "inject",
    apiServerIps: [],
    apiServerDnsNames: ["istiod.istio-system.svc"],
  });
  const server = createServer(
    { cert: pki.servingCertPem, key: pki.servingKeyPem },
    createInjectionHandler({ values: defaultInjectValues("docker.io/istio", "1.24.0") }),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;

  const dialled: string[] = [];
  const admission = new WebhookAdmission({
    resolveService: (ns, name, p) => {
      dialled.push(`${ns}/${name}:${p}`);
      return { host: "127.0.0.1", port };
    },
  });
  const { client } = await testApi(t, { admission });
  const hook = (name: string, namespaceSelector: unknown, objectSelector: unknown) => ({
    name,
    admissionReviewVersions: ["v1"],
    clientConfig: {
      service: { name: "istiod", namespace: "istio-system", path: "/inject", port: 443 },
      caBundle: Buffer.from(pki.caCertPem).toString("base64"),
    },
    failurePolicy: "Fail",
    matchPolicy: "Equivalent",
    reinvocationPolicy: "Never",
    rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "*" }],
    sideEffects: "None",
    timeoutSeconds: 10,
    namespaceSelector,
    objectSelector,
  });
  await client.create(
    Resources.mutatingwebhookconfigurations,
    obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", undefined, "istio-sidecar-injector", {
      webhooks: [
        hook(
          "namespace.sidecar-injector.istio.io",
          { matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }] },
          { matchExpressions: [{ key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] }] },
        ),
        hook(
          "object.sidecar-injector.istio.io",
          {
            matchExpressions: [
              { key: "istio-injection", operator: "DoesNotExist" },
              { key: "istio.io/rev", operator: "DoesNotExist" },
            ],
          },
          {
            matchExpressions: [
              { key: "sidecar.istio.io/inject", operator: "In", values: ["true"] },
              { key: "istio.io/rev", operator: "DoesNotExist" },
            ],
          },
        ),
      ],
    }),
  );
  await client.create(
    Resources.namespaces,
    obj("v1", "Namespace", undefined, "sample", {
      metadata: { name: "sample", labels: { "istio-injection": "enabled" } },
    }),
  );
  await client.create(Resources.namespaces, obj("v1", "Namespace", undefined, "plain"));

  const sleep = (ns: string, name: string, labels: Record<string, string> = {}): KubeObject =>
    obj("v1", "Pod", ns, name, {
      metadata: { name, namespace: ns, labels: { app: "sleep", ...labels } },
      spec: { containers: [{ name: "sleep", image: "curlimages/curl", command: ["sleep", "infinity"] }] },
    });
  const containers = (p: KubeObject) => {
    const spec = p.spec as { containers: { name: string }[]; initContainers?: { name: string }[] };
    return {
      init: (spec.initContainers ?? []).map((c) => c.name),
      main: spec.containers.map((c) => c.name),
    };
  };

  const injected = await client.create(Resources.pods, sleep("sample", "injected"));
  assert.deepEqual(containers(injected), { init: ["istio-init"], main: ["sleep", "istio-proxy"] });
  assert.ok(injected.metadata.annotations?.["sidecar.istio.io/status"]);
  assert.deepEqual(dialled, ["istio-system/istiod:443"]);

  const optedOut = await client.create(
    Resources.pods,
    sleep("sample", "opted-out", { "sidecar.istio.io/inject": "false" }),
  );
  assert.deepEqual(containers(optedOut), { init: [], main: ["sleep"] });

  const plain = await client.create(Resources.pods, sleep("plain", "plain"));
  assert.deepEqual(containers(plain), { init: [], main: ["sleep"] });

  const optedIn = await client.create(
    Resources.pods,
    sleep("plain", "opted-in", { "sidecar.istio.io/inject": "true" }),
  );
  assert.deepEqual(containers(optedIn), { init: ["istio-init"], main: ["sleep", "istio-proxy"] });
  assert.equal(dialled.length, 2, "only the two pods Istio injects reach the webhook");
});
