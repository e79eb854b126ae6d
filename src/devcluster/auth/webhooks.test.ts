import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { after, before, type TestContext, test } from "node:test";
import { createLogger } from "../../base/index.js";
import type { AdmissionAttributes } from "../api/plugins.js";
import { type ApiClient, isApiError, type KubeObject, Resources } from "../api/types.js";
import { adminUser } from "./authenticator.js";
import { type ClusterPki, createClusterPki } from "./pki.js";
import { obj, testApi } from "./test-support.js";
import { endpointServiceResolver, rulesMatch, type Webhook, WebhookAdmission, webhooksOf } from "./webhooks.js";

/** Every AdmissionReview the test server received, by path. */
const received: { path: string; review: Record<string, unknown> }[] = [];
let server: Server;
let port: number;
let pki: ClusterPki;
let otherPki: ClusterPki;
let closedPort: number;
const hanging = new Set<() => void>();

function reply(res: import("node:http").ServerResponse, uid: unknown, response: Record<string, unknown>) {
  res.setHeader("content-type", "application/json");
  res.end(
    JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, ...response } }),
  );
}
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64");

before(async () => {
  [pki, otherPki] = await Promise.all([
    createClusterPki({ clusterName: "hooks", apiServerIps: ["127.0.0.1"], apiServerDnsNames: ["hook.webhooks.svc"] }),
    createClusterPki({
      clusterName: "stranger",
      apiServerIps: ["127.0.0.1"],
      apiServerDnsNames: ["hook.webhooks.svc"],
    }),
  ]);
  server = createServer({ cert: pki.servingCertPem, key: pki.servingKeyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "https://x");
      const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { request: Record<string, unknown> };
      received.push({
        path: url.pathname,
        review: { ...review.request, timeoutParam: url.searchParams.get("timeout") },
      });
      const uid = review.request.uid;
      switch (url.pathname) {
        case "/inject":
          return reply(res, uid, {
            allowed: true,
            patchType: "JSONPatch",
            patch: b64([
              { op: "add", path: "/metadata/annotations", value: {} },
              { op: "add", path: "/metadata/annotations/sidecar.istio.io~1status", value: "injected" },
              { op: "add", path: "/spec/containers/-", value: { name: "istio-proxy", image: "proxyv2" } },
            ]),
          });
        case "/second":
          // Proves ordering: this patch only applies if /inject already ran.
          return reply(res, uid, {
            allowed: true,
            patchType: "JSONPatch",
            patch: b64([
              { op: "test", path: "/spec/containers/1/name", value: "istio-proxy" },
              { op: "add", path: "/metadata/labels/second", value: "yes" },
            ]),
          });
        case "/bad-patch":
          return reply(res, uid, {
            allowed: true,
            patchType: "JSONPatch",
            patch: b64([{ op: "remove", path: "/nope" }]),
          });
        case "/deny":
          return reply(res, uid, { allowed: false, status: { code: 403, message: "pods must not run as root" } });
        case "/deny-bare":
          return reply(res, uid, { allowed: false });
        case "/allow":
          return reply(res, uid, { allowed: true });
        case "/wrong-uid":
          return reply(res, "someone-else", { allowed: true });
        case "/hang":
          hanging.add(() => res.destroy());
          return;
        default:
          res.statusCode = 404;
          res.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
});

after(() => {
  for (const h of hanging) h();
  server?.closeAllConnections();
  server?.close();
});

interface HookSpec {
  name: string;
  path?: string;
  url?: string;
  service?: boolean;
  ca?: string;
  failurePolicy?: string;
  timeoutSeconds?: number;
  namespaceSelector?: unknown;
  objectSelector?: unknown;
  rules?: unknown[];
  sideEffects?: string;
  admissionReviewVersions?: string[];
}

const podRules = [
  { operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "*" },
];

function config(kind: "Mutating" | "Validating", name: string, hooks: HookSpec[]): KubeObject {
  return obj("admissionregistration.k8s.io/v1", `${kind}WebhookConfiguration`, undefined, name, {
    webhooks: hooks.map((h) => ({
      name: h.name,
      clientConfig: {
        ...(h.service
          ? { service: { namespace: "webhooks", name: "hook", port: 443, path: h.path } }
          : { url: h.url ?? `https://127.0.0.1:${port}${h.path}` }),
        caBundle: Buffer.from(h.ca ?? pki.caCertPem).toString("base64"),
      },
      rules: h.rules ?? podRules,
      failurePolicy: h.failurePolicy ?? "Fail",
      sideEffects: h.sideEffects ?? "None",
      admissionReviewVersions: h.admissionReviewVersions ?? ["v1"],
      ...(h.timeoutSeconds ? { timeoutSeconds: h.timeoutSeconds } : {}),
      ...(h.namespaceSelector ? { namespaceSelector: h.namespaceSelector } : {}),
      ...(h.objectSelector ? { objectSelector: h.objectSelector } : {}),
    })),
  });
}

async function cluster(t: TestContext, configs: KubeObject[]) {
  const { client } = await testApi(t);
  await client.create(
    Resources.namespaces,
    obj("v1", "Namespace", undefined, "sample", {
      metadata: { name: "sample", labels: { "istio-injection": "enabled" } },
    }),
  );
  await client.create(Resources.namespaces, obj("v1", "Namespace", undefined, "plain"));
  for (const c of configs) {
    await client.create(
      c.kind === "MutatingWebhookConfiguration"
        ? Resources.mutatingwebhookconfigurations
        : Resources.validatingwebhookconfigurations,
      c,
    );
  }
  return client;
}

function podCreate(namespace: string, labels: Record<string, string> = {}, dryRun = false): AdmissionAttributes {
  return {
    operation: "CREATE",
    ref: Resources.pods,
    kind: { group: "", version: "v1", kind: "Pod" },
    subresource: "",
    namespace,
    name: "sleep-1",
    object: obj("v1", "Pod", namespace, "sleep-1", {
      metadata: { name: "sleep-1", namespace, labels },
      spec: { containers: [{ name: "sleep", image: "curl" }] },
    }),
    user: adminUser,
    dryRun,
  };
}

function pathsCalled(since: number): string[] {
  return received.slice(since).map((r) => r.path);
}

test("a mutating webhook's JSONPatch is applied, and it gets a full AdmissionReview v1 request", async (t) => {
  const client = await cluster(t, [
    config("Mutating", "istio-sidecar-injector", [{ name: "sidecar-injector.istio.io", path: "/inject" }]),
  ]);
  const admission = new WebhookAdmission();
  const since = received.length;
  const out = await admission.mutate(podCreate("sample", { app: "sleep" }), client);
  assert.equal(out?.metadata.annotations?.["sidecar.istio.io/status"], "injected");
  assert.deepEqual(
    ((out?.spec ?? {}) as { containers: { name: string }[] }).containers.map((c) => c.name),
    ["sleep", "istio-proxy"],
  );
  const [call] = received.slice(since);
  assert.ok(call);
  const r = call.review;
  assert.match(String(r.uid), /^[0-9a-f-]{36}$/);
  assert.deepEqual(r.kind, { group: "", version: "v1", kind: "Pod" });
  assert.deepEqual(r.resource, { group: "", version: "v1", resource: "pods" });
  assert.deepEqual(r.requestKind, r.kind);
  assert.equal(r.operation, "CREATE");
  assert.equal(r.namespace, "sample");
  assert.equal(r.name, "sleep-1");
  assert.equal(r.dryRun, false);
  assert.deepEqual(r.userInfo, { username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"] });
  assert.equal((r.object as KubeObject).metadata.name, "sleep-1");
  assert.equal(r.oldObject, null);
  assert.deepEqual(r.options, { kind: "CreateOptions", apiVersion: "meta.k8s.io/v1" });
  assert.equal(r.timeoutParam, "10s");
});

test("mutating webhooks run in configuration-name order, each seeing the previous result", async (t) => {
  const client = await cluster(t, [
    config("Mutating", "b-second", [{ name: "second.example.com", path: "/second" }]),
    config("Mutating", "a-first", [{ name: "first.example.com", path: "/inject" }]),
  ]);
  const out = await new WebhookAdmission().mutate(podCreate("sample"), client);
  assert.equal(out?.metadata.labels?.second, "yes");
});

test("a patch that does not apply fails the request with the webhook named", async (t) => {
  const client = await cluster(t, [
    config("Mutating", "broken", [{ name: "broken.example.com", path: "/bad-patch", failurePolicy: "Ignore" }]),
  ]);
  await assert.rejects(new WebhookAdmission().mutate(podCreate("sample"), client), (err: unknown) => {
    assert.ok(isApiError(err, 500));
    assert.match(
      err.message,
      /admission webhook "broken\.example\.com" returned a patch that does not apply: operation 0/,
    );
    return true;
  });
});

test("a validating webhook's denial surfaces as kube-apiserver reports it", async (t) => {
  const client = await cluster(t, [
    config("Validating", "policy", [
      { name: "allow.example.com", path: "/allow" },
      { name: "no-root.example.com", path: "/deny" },
    ]),
  ]);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), client), (err: unknown) => {
    assert.ok(isApiError(err, 403));
    assert.equal(err.message, 'admission webhook "no-root.example.com" denied the request: pods must not run as root');
    assert.equal(err.status.status, "Failure");
    return true;
  });
  const bare = await cluster(t, [config("Validating", "bare", [{ name: "bare.example.com", path: "/deny-bare" }])]);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), bare), (err: unknown) => {
    assert.ok(isApiError(err, 400));
    assert.equal(err.message, 'admission webhook "bare.example.com" denied the request without explanation');
    return true;
  });
});

test("failurePolicy: Fail turns an unreachable webhook into a 500 naming it; Ignore logs and goes on", async (t) => {
  const url = `https://127.0.0.1:${closedPort}/gone`;
  const fail = await cluster(t, [config("Validating", "down", [{ name: "down.example.com", url }])]);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), fail), (err: unknown) => {
    assert.ok(isApiError(err, 500));
    assert.equal(err.reason, "InternalError");
    assert.match(
      err.message,
      new RegExp(
        `^Internal error occurred: failed calling webhook "down\\.example\\.com": failed to call webhook: Post "https://127\\.0\\.0\\.1:${closedPort}/gone\\?timeout=10s": .*ECONNREFUSED`,
      ),
    );
    return true;
  });

  const lines: string[] = [];
  const ignore = await cluster(t, [
    config("Validating", "down", [{ name: "down.example.com", url, failurePolicy: "Ignore" }]),
  ]);
  await new WebhookAdmission({ log: createLogger({ write: (l) => lines.push(l) }) }).validate(
    podCreate("sample"),
    ignore,
  );
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? "", /warn .*failurePolicy Ignore.* webhook=down\.example\.com/);
});

test("a webhook slower than timeoutSeconds fails the call", async (t) => {
  const client = await cluster(t, [
    config("Validating", "slow", [{ name: "slow.example.com", path: "/hang", timeoutSeconds: 1 }]),
  ]);
  const started = Date.now();
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), client), (err: unknown) => {
    assert.ok(isApiError(err, 500));
    assert.match(err.message, /failed calling webhook "slow\.example\.com": .*timeout=1s": context deadline exceeded/);
    return true;
  });
  // The issue states the deadline (timeoutSeconds); generous bounds around 1 s.
  const took = Date.now() - started;
  assert.ok(took >= 900 && took < 8000, `took ${took} ms`);
});

test("namespaceSelector matches the object's namespace labels; objectSelector the object's labels", async (t) => {
  const client = await cluster(t, [
    config("Mutating", "istio-sidecar-injector", [
      {
        name: "namespace.sidecar-injector.istio.io",
        path: "/allow",
        namespaceSelector: { matchLabels: { "istio-injection": "enabled" } },
        objectSelector: {
          matchExpressions: [{ key: "sidecar.istio.io/inject", operator: "NotIn", values: ["false"] }],
        },
      },
    ]),
  ]);
  const admission = new WebhookAdmission();
  let since = received.length;
  await admission.mutate(podCreate("sample"), client);
  assert.deepEqual(pathsCalled(since), ["/allow"], "labelled namespace");
  since = received.length;
  await admission.mutate(podCreate("plain"), client);
  assert.deepEqual(pathsCalled(since), [], "namespace without the label");
  since = received.length;
  await admission.mutate(podCreate("sample", { "sidecar.istio.io/inject": "false" }), client);
  assert.deepEqual(pathsCalled(since), [], "pod opted out");

  const nsHook = await cluster(t, [
    config("Validating", "ns", [
      {
        name: "ns.example.com",
        path: "/allow",
        rules: [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["namespaces"] }],
        namespaceSelector: { matchLabels: { team: "a" } },
      },
    ]),
  ]);
  const nsCreate = (labels: Record<string, string>): AdmissionAttributes => ({
    ...podCreate("x"),
    ref: Resources.namespaces,
    kind: { group: "", version: "v1", kind: "Namespace" },
    namespace: "x",
    name: "x",
    object: obj("v1", "Namespace", undefined, "x", { metadata: { name: "x", labels } }),
  });
  since = received.length;
  await admission.validate(nsCreate({ team: "a" }), nsHook);
  await admission.validate(nsCreate({ team: "b" }), nsHook);
  assert.deepEqual(pathsCalled(since), ["/allow"], "a new Namespace is matched on its own labels");
});

test("the webhook's certificate must verify against its caBundle", async (t) => {
  const client = await cluster(t, [
    config("Validating", "stranger", [{ name: "stranger.example.com", path: "/allow", ca: otherPki.caCertPem }]),
  ]);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), client), (err: unknown) => {
    assert.ok(isApiError(err, 500));
    assert.match(
      err.message,
      /failed calling webhook "stranger\.example\.com": .*(self-signed certificate|unable to verify the first certificate)/i,
    );
    return true;
  });
  const garbage = await cluster(t, [
    config("Validating", "garbage", [{ name: "garbage.example.com", path: "/allow", ca: "not a certificate" }]),
  ]);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), garbage), (err: unknown) => {
    assert.ok(isApiError(err, 500));
    assert.match(err.message, /failed calling webhook "garbage\.example\.com": /);
    return true;
  });
});

test("a Service reference dials the ClusterIP (or the resolveService hook) and checks the Service's DNS name", async (t) => {
  const hook = config("Mutating", "svc", [{ name: "svc.example.com", service: true, path: "/inject" }]);
  const viaHook = await cluster(t, [hook]);
  const dialled: string[] = [];
  const admission = new WebhookAdmission({
    resolveService: (ns, name, p) => {
      dialled.push(`${ns}/${name}:${p}`);
      return { host: "127.0.0.1", port };
    },
  });
  const out = await admission.mutate(podCreate("sample"), viaHook);
  assert.equal(out?.metadata.annotations?.["sidecar.istio.io/status"], "injected");
  assert.deepEqual(dialled, ["webhooks/hook:443"]);

  // Default resolution: the Service's ClusterIP and port. Nothing routes the allocated ClusterIP
  // in a unit test, so reads of Services see loopback in its place (what the node does for real).
  const withPort = (svcName: string): KubeObject => ({
    ...hook,
    webhooks: (hook.webhooks as Record<string, unknown>[]).map((w) => ({
      ...w,
      clientConfig: {
        ...(w.clientConfig as object),
        service: { namespace: "webhooks", name: svcName, port, path: "/inject" },
      },
    })),
  });
  const real = await cluster(t, [withPort("hook")]);
  await real.create(Resources.namespaces, obj("v1", "Namespace", undefined, "webhooks"));
  const svc = await real.create(
    Resources.services,
    obj("v1", "Service", "webhooks", "hook", { spec: { ports: [{ port, targetPort: 15017 }] } }),
  );
  assert.match(String((svc.spec as { clusterIP: string }).clusterIP), /^10\.201\.250\./);
  const viaService = loopbackClusterIps(real);
  const out2 = await new WebhookAdmission().mutate(podCreate("sample"), viaService);
  assert.equal(out2?.metadata.annotations?.["sidecar.istio.io/status"], "injected");

  // The certificate names hook.webhooks.svc; a Service with another name must not pass with it.
  await real.create(Resources.services, obj("v1", "Service", "webhooks", "impostor", { spec: { ports: [{ port }] } }));
  await real.update(Resources.mutatingwebhookconfigurations, {
    ...withPort("impostor"),
    metadata: (await real.get(Resources.mutatingwebhookconfigurations, undefined, "svc")).metadata,
  });
  await assert.rejects(
    new WebhookAdmission().mutate(podCreate("sample"), viaService),
    /impostor\.webhooks\.svc.*(not in the cert|altnames)/i,
  );

  await real.delete(Resources.services, "webhooks", "impostor");
  await assert.rejects(
    new WebhookAdmission().mutate(podCreate("sample"), viaService),
    /failed calling webhook "svc\.example\.com": failed to call webhook: Post "https:\/\/impostor\.webhooks\.svc:\d+\/inject": service "webhooks\/impostor" not found/,
  );
});

test("endpointServiceResolver dials a ready endpoint of the Service's port", async (t) => {
  const hook = config("Mutating", "svc", [{ name: "svc.example.com", service: true, path: "/inject" }]);
  const client = await cluster(t, [hook]);
  await client.create(Resources.namespaces, obj("v1", "Namespace", undefined, "webhooks"));
  await client.create(
    Resources.services,
    obj("v1", "Service", "webhooks", "hook", {
      spec: { ports: [{ name: "https-webhook", port: 443, targetPort: 15017 }] },
    }),
  );
  const admission = new WebhookAdmission({ resolveService: endpointServiceResolver(client) });
  await assert.rejects(
    admission.mutate(podCreate("sample"), client),
    /service "webhooks\/hook" has no ready endpoints for port 443/,
  );
  await client.create(
    Resources.endpointslices,
    obj("discovery.k8s.io/v1", "EndpointSlice", "webhooks", "hook-abcde", {
      metadata: { name: "hook-abcde", namespace: "webhooks", labels: { "kubernetes.io/service-name": "hook" } },
      addressType: "IPv4",
      ports: [{ name: "https-webhook", port, protocol: "TCP" }],
      endpoints: [
        { addresses: ["127.0.0.1"], conditions: { ready: true } },
        // Not ready: must never be dialled (its port is closed, so dialling it would fail the test).
        { addresses: ["127.0.0.2"], conditions: { ready: false } },
      ],
    }),
  );
  for (let i = 0; i < 3; i++) {
    const out = await admission.mutate(podCreate("sample"), client);
    assert.equal(out?.metadata.annotations?.["sidecar.istio.io/status"], "injected");
  }
});

/** Delegates to `client`, but Services read back with 127.0.0.1 as their ClusterIP. */
function loopbackClusterIps(client: ApiClient): ApiClient {
  return {
    get: async (ref, ns, name) => {
      const o = await client.get(ref, ns, name);
      return ref === Resources.services ? { ...o, spec: { ...(o.spec as object), clusterIP: "127.0.0.1" } } : o;
    },
    list: (ref, opts) => client.list(ref, opts),
    watch: (ref, opts, signal) => client.watch(ref, opts, signal),
    create: (ref, o, opts) => client.create(ref, o, opts),
    update: (ref, o, opts) => client.update(ref, o, opts),
    patch: (ref, ns, name, type, patch, opts) => client.patch(ref, ns, name, type, patch, opts),
    delete: (ref, ns, name, opts) => client.delete(ref, ns, name, opts),
  };
}

test("a bad response, dry run with side effects, and unsupported review versions", async (t) => {
  const wrongUid = await cluster(t, [config("Validating", "liar", [{ name: "liar.example.com", path: "/wrong-uid" }])]);
  await assert.rejects(
    new WebhookAdmission().validate(podCreate("sample"), wrongUid),
    /received invalid webhook response: expected response\.uid=/,
  );

  const sideEffects = await cluster(t, [
    config("Validating", "fx", [{ name: "fx.example.com", path: "/allow", sideEffects: "Some" }]),
  ]);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample", {}, true), sideEffects), (err: unknown) => {
    return isApiError(err, 400) && err.message === 'admission webhook "fx.example.com" does not support dry run';
  });
  await new WebhookAdmission().validate(podCreate("sample", {}, false), sideEffects);

  const v1beta1 = await cluster(t, [
    config("Validating", "old", [{ name: "old.example.com", path: "/allow", admissionReviewVersions: ["v1beta1"] }]),
  ]);
  await assert.rejects(
    new WebhookAdmission().validate(podCreate("sample"), v1beta1),
    /does not accept known AdmissionReview versions/,
  );
});

test("with start(), configurations come from a watched mirror that follows changes", async (t) => {
  const client = await cluster(t, []);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const admission = new WebhookAdmission();
  admission.start(client, ac.signal);
  await admission.whenSynced();
  await admission.validate(podCreate("sample"), client);
  const changed = admission.nextChange();
  await client.create(
    Resources.validatingwebhookconfigurations,
    config("Validating", "late", [{ name: "late.example.com", path: "/deny" }]),
  );
  await changed;
  await assert.rejects(
    admission.validate(podCreate("sample"), client),
    /admission webhook "late\.example\.com" denied/,
  );
});

test("webhook configurations themselves are never sent to webhooks", async (t) => {
  const client = await cluster(t, [
    config("Validating", "everything", [
      {
        name: "deny-all.example.com",
        path: "/deny",
        rules: [{ operations: ["*"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*/*"] }],
      },
    ]),
  ]);
  const attrs: AdmissionAttributes = {
    ...podCreate(""),
    ref: Resources.validatingwebhookconfigurations,
    kind: { group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration" },
    namespace: "",
    name: "everything",
    operation: "DELETE",
    object: undefined,
  };
  await new WebhookAdmission().validate(attrs, client);
  await assert.rejects(new WebhookAdmission().validate(podCreate("sample"), client), /deny-all/);
});

test("rules: operations, groups, versions, resources/subresources and scope", () => {
  const hook = (rule: Record<string, unknown>): Webhook => {
    const [h] = webhooksOf(config("Validating", "r", [{ name: "r", path: "/allow", rules: [rule] }]));
    assert.ok(h);
    return h;
  };
  const attrs = (
    resource: string,
    subresource = "",
    namespace = "ns",
    operation: AdmissionAttributes["operation"] = "CREATE",
  ) => ({
    ...podCreate(namespace),
    operation,
    ref: { group: resource === "deployments" ? "apps" : "", version: "v1", resource },
    subresource,
    namespace,
  });
  const all = { operations: ["*"], apiGroups: ["*"], apiVersions: ["*"] };
  const table: [Record<string, unknown>, AdmissionAttributes, boolean][] = [
    [{ ...all, resources: ["pods"] }, attrs("pods"), true],
    [{ ...all, resources: ["pods"] }, attrs("pods", "status"), false],
    [{ ...all, resources: ["pods/status"] }, attrs("pods", "status"), true],
    [{ ...all, resources: ["pods/*"] }, attrs("pods", "exec"), true],
    [{ ...all, resources: ["*"] }, attrs("pods", "status"), false],
    [{ ...all, resources: ["*/status"] }, attrs("services", "status"), true],
    [{ ...all, resources: ["*/*"] }, attrs("pods", "ephemeralcontainers"), true],
    [{ ...all, operations: ["UPDATE"], resources: ["pods"] }, attrs("pods"), false],
    [{ ...all, apiGroups: ["apps"], resources: ["*"] }, attrs("pods"), false],
    [{ ...all, apiGroups: ["apps"], resources: ["*"] }, attrs("deployments"), true],
    [{ ...all, apiVersions: ["v1beta1"], resources: ["*"] }, attrs("pods"), false],
    [{ ...all, resources: ["*"], scope: "Namespaced" }, attrs("pods"), true],
    [{ ...all, resources: ["*"], scope: "Cluster" }, attrs("pods"), false],
    [{ ...all, resources: ["*"], scope: "Cluster" }, attrs("nodes", "", ""), true],
    [{ ...all, resources: ["*"], scope: "Namespaced" }, attrs("namespaces", "", "x"), false],
    [{ ...all, resources: ["*"], scope: "Cluster" }, attrs("namespaces", "", "x"), true],
  ];
  for (const [rule, a, want] of table) {
    assert.equal(
      rulesMatch(hook(rule), a),
      want,
      `${JSON.stringify(rule)} vs ${a.ref.resource}/${a.subresource} in ${a.namespace}`,
    );
  }
});
