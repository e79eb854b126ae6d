/**
 * This folder wired into the real LocalApi the way the composition root wires it: admission
 * and virtual resources go in at construction, the ApiClient-backed parts are made after.
 */
import assert from "node:assert/strict";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import type { VirtualResource } from "../api/plugins.js";
import { isApiError, type KubeObject, Resources } from "../api/types.js";
import { adminUser } from "./authenticator.js";
import { createClusterPki } from "./pki.js";
import { obj, pod, testApi } from "./test-support.js";
import { WebhookAdmission } from "./webhooks.js";
import { wireAuth } from "./wiring.js";

test("webhooks, TokenRequest, TokenReview and access reviews through LocalApi", async (t) => {
  const pki = await createClusterPki({
    clusterName: "wired",
    apiServerIps: [],
    apiServerDnsNames: ["istiod.istio-system.svc"],
  });
  const seen: string[] = [];
  const server = createServer({ cert: pki.servingCertPem, key: pki.servingKeyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const { request } = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        request: { uid: string; userInfo: { username: string }; object: KubeObject };
      };
      seen.push(`${req.url?.split("?")[0]} ${request.userInfo.username}`);
      const deny = request.object.metadata.labels?.forbidden === "yes";
      const response = req.url?.startsWith("/inject")
        ? {
            allowed: true,
            patchType: "JSONPatch",
            patch: Buffer.from(
              JSON.stringify([
                { op: "add", path: "/spec/containers/-", value: { name: "istio-proxy", image: "proxyv2" } },
              ]),
            ).toString("base64"),
          }
        : deny
          ? { allowed: false, status: { code: 403, message: "label forbidden=yes is not allowed" } }
          : { allowed: true };
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: { uid: request.uid, ...response },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;

  const virtualResources = new Map<string, VirtualResource>();
  const admission = new WebhookAdmission({ resolveService: () => ({ host: "127.0.0.1", port }) });
  const { api, client } = await testApi(t, { admission, virtualResources });
  const { tokens, authenticator } = await wireAuth({ client, pki, virtualResources });

  const clientConfig = (path: string) => ({
    service: { namespace: "istio-system", name: "istiod", port: 443, path },
    caBundle: Buffer.from(pki.caCertPem).toString("base64"),
  });
  await client.create(
    Resources.mutatingwebhookconfigurations,
    obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", undefined, "istio-sidecar-injector", {
      webhooks: [
        {
          name: "namespace.sidecar-injector.istio.io",
          clientConfig: clientConfig("/inject"),
          rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] }],
          namespaceSelector: { matchLabels: { "istio-injection": "enabled" } },
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    }),
  );
  await client.create(
    Resources.validatingwebhookconfigurations,
    obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", undefined, "policy", {
      webhooks: [
        {
          name: "policy.example.com",
          clientConfig: clientConfig("/validate"),
          rules: [
            { operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["configmaps"] },
          ],
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
        },
      ],
    }),
  );
  await client.create(
    Resources.namespaces,
    obj("v1", "Namespace", undefined, "sample", {
      metadata: { name: "sample", labels: { "istio-injection": "enabled" } },
    }),
  );
  await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "ro"));

  // Mutation: the stored pod has the injected container; the webhook saw the caller.
  const admin = api.client(adminUser);
  const created = await admin.create(Resources.pods, pod("sample", "sleep", "ro"));
  assert.deepEqual(
    (created.spec as { containers: { name: string }[] }).containers.map((c) => c.name),
    ["main", "istio-proxy"],
  );
  assert.ok(seen.includes("/inject kubernetes-admin"), seen.join());

  // Validation: a denial comes back from the write as kube-apiserver words it.
  await admin.create(Resources.configmaps, obj("v1", "ConfigMap", "sample", "fine"));
  await assert.rejects(
    admin.create(
      Resources.configmaps,
      obj("v1", "ConfigMap", "sample", "bad", {
        metadata: { name: "bad", namespace: "sample", labels: { forbidden: "yes" } },
      }),
    ),
    (err: unknown) =>
      isApiError(err, 403) &&
      err.message === 'admission webhook "policy.example.com" denied the request: label forbidden=yes is not allowed',
  );

  // TokenRequest bound to the pod, then TokenReview of that token for its audience.
  const tr = await admin.create(
    Resources.serviceaccounts,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      metadata: { name: "ro", namespace: "sample" },
      spec: { audiences: ["istio-ca"], boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "sleep" } },
    },
    { subresource: "token" },
  );
  const token = (tr.status as { token: string }).token;
  const review = await admin.create(
    { group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" },
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      metadata: {},
      spec: { token, audiences: ["istio-ca"] },
    },
  );
  assert.deepEqual(
    { ...(review.status as Record<string, unknown>), user: undefined },
    { authenticated: true, audiences: ["istio-ca"], user: undefined },
  );
  assert.equal((review.status as { user: { username: string } }).user.username, "system:serviceaccount:sample:ro");

  // `kubectl auth can-i` as the service account: no RBAC grants, so no; discovery yes.
  const sa = await authenticator.authenticate(
    tokens.issue({
      namespace: "sample",
      serviceAccount: {
        name: "ro",
        uid: (await client.get(Resources.serviceaccounts, "sample", "ro")).metadata.uid ?? "",
      },
    }).token,
  );
  assert.ok(sa);
  const ssar = (spec: Record<string, unknown>) =>
    api
      .client(sa)
      .create(
        { group: "authorization.k8s.io", version: "v1", resource: "selfsubjectaccessreviews" },
        { apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview", metadata: {}, spec },
      );
  assert.deepEqual(
    (await ssar({ resourceAttributes: { namespace: "sample", verb: "create", resource: "pods" } })).status,
    { allowed: false },
  );
  assert.equal(
    ((await ssar({ nonResourceAttributes: { path: "/api", verb: "get" } })).status as { allowed: boolean }).allowed,
    true,
  );
});
