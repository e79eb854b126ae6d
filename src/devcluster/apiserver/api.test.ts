import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it, type TestContext } from "node:test";
import { silentLogger } from "../../base/index.js";
import type { Admission, AdmissionAttributes, VirtualResource } from "../api/plugins.js";
import { virtualResourceKey } from "../api/plugins.js";
import { ApiError, type KubeObject, type ResourceRef, Resources, type StatusBody } from "../api/types.js";
import { LocalApi, type LocalApiOptions, recordEvent } from "./index.js";

const samples = join(import.meta.dirname, "../../../../shared/reference/kube-api-samples");
const sample = (name: string): StatusBody | undefined => {
  try {
    return JSON.parse(readFileSync(join(samples, name), "utf8")) as StatusBody;
  } catch {
    return undefined;
  }
};

async function newApi(t: TestContext, opts: Partial<LocalApiOptions> = {}): Promise<LocalApi> {
  const api = new LocalApi({ serviceCidr: "10.201.3.0/24", clusterName: "t", log: silentLogger, ...opts });
  await api.start();
  t.after(() => api.close());
  return api;
}

async function rejection(p: Promise<unknown>): Promise<StatusBody> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err.status;
    throw err;
  }
  assert.fail("expected the call to reject with an ApiError");
}

const ns = (name: string): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
const cm = (name: string, namespace = "sample", data: Record<string, string> = { a: "1" }): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace },
  data,
});
const deployment = (name: string, namespace = "sample"): KubeObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, namespace },
  spec: {
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "img:1" }] } },
  },
});
const service = (name: string, namespace = "sample", extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace },
  spec: { ports: [{ name: "http", port: 5000 }], selector: { app: name }, ...extra },
});

async function withNamespace(t: TestContext, opts: Partial<LocalApiOptions> = {}) {
  const api = await newApi(t, opts);
  const c = api.client();
  await c.create(Resources.namespaces, ns("sample"));
  return { api, c };
}

describe("errors as Kubernetes sends them", () => {
  it("NotFound matches the captured Status", async (t) => {
    const { c } = await withNamespace(t);
    const got = await rejection(c.get(Resources.services, "sample", "nope"));
    const want = sample("status-notfound.json");
    if (want) assert.deepEqual(got, want);
    assert.equal(got.code, 404);
    assert.equal(got.reason, "NotFound");
    assert.equal(
      JSON.stringify(Object.keys(got)),
      JSON.stringify(["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]),
    );
  });

  it("AlreadyExists matches the captured Status", async (t) => {
    const api = await newApi(t);
    const c = api.client();
    await c.create(Resources.namespaces, ns("samples"));
    const got = await rejection(c.create(Resources.namespaces, ns("samples")));
    assert.deepEqual(got, sample("status-alreadyexists.json") ?? got);
    assert.equal(got.code, 409);
    assert.equal(got.reason, "AlreadyExists");
  });

  it("Invalid names carry the field cause, as captured", async (t) => {
    const api = await newApi(t);
    const c = api.client();
    await c.create(Resources.namespaces, ns("samples"));
    const got = await rejection(c.create(Resources.configmaps, cm("Bad_Name", "samples")));
    assert.deepEqual(got, sample("status-invalid.json") ?? got);
    assert.equal(got.code, 422);
    assert.equal(got.details?.causes?.[0]?.field, "metadata.name");
  });

  it("a missing namespace is NotFound for the namespace", async (t) => {
    const api = await newApi(t);
    const got = await rejection(api.client().create(Resources.configmaps, cm("x", "nonexistent")));
    assert.deepEqual(got, sample("status-namespace-notfound.json") ?? got);
    assert.equal(got.details?.kind, "namespaces");
  });

  it("Conflict on a stale resourceVersion matches the captured Status", async (t) => {
    const api = await newApi(t);
    const c = api.client();
    await c.create(Resources.namespaces, ns("samples"));
    const svc = await c.create(Resources.services, service("helloworld", "samples"));
    await c.update(Resources.services, { ...svc, metadata: { ...svc.metadata, labels: { a: "b" } } });
    const got = await rejection(
      c.update(Resources.services, { ...svc, metadata: { ...svc.metadata, labels: { a: "c" } } }),
    );
    assert.deepEqual(got, sample("status-conflict.json") ?? got);
    assert.equal(got.code, 409);
  });

  it("strict field validation refuses unknown fields with BadRequest, as captured", async (t) => {
    const api = await newApi(t);
    const c = api.client();
    await c.create(Resources.namespaces, ns("samples"));
    const body = { ...cm("x", "samples"), spec: { a: 1 } };
    const got = await rejection(c.create(Resources.configmaps, body, { fieldValidation: "Strict" }));
    assert.deepEqual(got, sample("status-strict-unknown-field.json") ?? got);
    const nested = await rejection(
      c.create(
        Resources.deployments,
        { ...deployment("d", "samples"), spec: { ...(deployment("d").spec as object), foo: 1 } },
        { fieldValidation: "Strict" },
      ),
    );
    assert.match(nested.message, /unknown field "spec\.foo"/);
    const warnings: string[] = [];
    const stored = await c.create(Resources.configmaps, body, {
      fieldValidation: "Warn",
      onWarning: (w) => warnings.push(w),
    });
    assert.deepEqual(warnings, ['unknown field "spec"']);
    assert.equal(stored.metadata.name, "x");
  });

  it("Forbidden for creates in a terminating namespace", async (t) => {
    const { c } = await withNamespace(t);
    await c.delete(Resources.namespaces, undefined, "sample");
    const got = await rejection(c.create(Resources.configmaps, cm("late")));
    assert.equal(got.code, 403);
    assert.equal(got.reason, "Forbidden");
    assert.equal(
      got.message,
      'configmaps "late" is forbidden: unable to create new content in namespace sample because it is being terminated',
    );
  });

  it("MethodNotAllowed for a verb the resource lacks, 404 for a resource not served", async (t) => {
    const api = await newApi(t);
    const c = api.client();
    const got = await rejection(c.deleteCollection(Resources.namespaces));
    assert.equal(got.code, 405);
    assert.equal(got.reason, "MethodNotAllowed");
    const tr = await rejection(
      c.get({ group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" }, undefined, "x"),
    );
    assert.equal(tr.code, 405);
    const missing = await rejection(c.list({ group: "example.com", version: "v1", resource: "widgets" }));
    assert.equal(missing.code, 404);
  });

  it("BadRequest for selectors that cannot be parsed or fields that cannot be selected", async (t) => {
    const { c } = await withNamespace(t);
    const bad = await rejection(c.list(Resources.pods, { labelSelector: "a in (" }));
    assert.equal(bad.code, 400);
    const field = await rejection(c.list(Resources.configmaps, { fieldSelector: "data.a=1" }));
    assert.equal(field.code, 400);
    assert.equal(field.message, "field label not supported: data.a");
    const kind = await rejection(c.create(Resources.configmaps, { ...cm("x"), kind: "Secret" }));
    assert.equal(kind.code, 400);
  });

  it("Invalid with causes for required fields of built-in kinds", async (t) => {
    const { c } = await withNamespace(t);
    const pod = await rejection(
      c.create(Resources.pods, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p", namespace: "sample" },
        spec: { containers: [{ name: "c" }] },
      }),
    );
    assert.equal(pod.code, 422);
    assert.deepEqual(
      pod.details?.causes?.map((x) => x.field),
      ["spec.containers[0].image"],
    );
    const d = deployment("d");
    (d.spec as { selector: unknown }).selector = { matchLabels: { app: "other" } };
    const dep = await rejection(c.create(Resources.deployments, d));
    assert.deepEqual(
      dep.details?.causes?.map((x) => x.field),
      ["spec.template.metadata.labels"],
    );
    assert.equal(dep.details?.kind, "Deployment");
    assert.equal(dep.details?.group, "apps");
    assert.match(dep.message, /^Deployment\.apps "d" is invalid: /);
    const svc = await rejection(c.create(Resources.services, { ...service("s"), spec: { selector: { app: "s" } } }));
    assert.deepEqual(
      svc.details?.causes?.map((x) => x.field),
      ["spec.ports"],
    );
    const svcName = await rejection(c.create(Resources.services, service("1abc")));
    assert.match(svcName.message, /DNS-1035 label/);
    const nsName = await rejection(c.create(Resources.namespaces, ns("a.b")));
    assert.match(nsName.message, /RFC 1123 label/);
  });

  it("immutable fields are refused on update", async (t) => {
    const { c } = await withNamespace(t);
    const d = await c.create(Resources.deployments, deployment("d"));
    const spec = d.spec as { selector: unknown; template: { metadata: { labels: Record<string, string> } } };
    spec.selector = { matchLabels: { app: "d", x: "y" } };
    spec.template.metadata.labels.x = "y";
    const got = await rejection(c.update(Resources.deployments, d));
    assert.deepEqual(
      got.details?.causes?.map((x) => x.field),
      ["spec.selector"],
    );
    const s = await c.create(Resources.services, service("s"));
    (s.spec as { clusterIP: string }).clusterIP = "10.201.3.77";
    const ip = await rejection(c.update(Resources.services, s));
    assert.deepEqual(
      ip.details?.causes?.map((x) => x.field),
      ["spec.clusterIPs[0]"],
    );
  });
});

describe("metadata", () => {
  it("sets uid, creationTimestamp, resourceVersion from one counter, and generateName", async (t) => {
    const { api, c } = await withNamespace(t);
    const before = Number(api.resourceVersion);
    const a = await c.create(Resources.configmaps, {
      ...cm(""),
      metadata: { generateName: "gen-", namespace: "sample" },
    });
    assert.match(a.metadata.name ?? "", /^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.match(a.metadata.uid ?? "", /^[0-9a-f-]{36}$/);
    assert.match(a.metadata.creationTimestamp ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const b = await c.create(Resources.secrets, {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s", namespace: "sample" },
    });
    assert.equal(Number(a.metadata.resourceVersion), before + 1);
    assert.equal(Number(b.metadata.resourceVersion), before + 2);
    assert.equal(b.type, "Opaque");
    assert.equal(a.metadata.generation, undefined);
  });

  it("bumps generation only when the spec changes, and ignores status on the main resource", async (t) => {
    const { c } = await withNamespace(t);
    const d = await c.create(Resources.deployments, deployment("d"));
    assert.equal(d.metadata.generation, 1);
    const labelled = await c.patch(Resources.deployments, "sample", "d", "application/merge-patch+json", {
      metadata: { labels: { x: "1" } },
    });
    assert.equal(labelled.metadata.generation, 1);
    const scaled = await c.patch(Resources.deployments, "sample", "d", "application/merge-patch+json", {
      spec: { replicas: 3 },
      status: { replicas: 9 },
    });
    assert.equal(scaled.metadata.generation, 2);
    assert.equal(scaled.status, undefined);
    const st = await c.update(
      Resources.deployments,
      { ...scaled, spec: { replicas: 7 }, status: { replicas: 3, observedGeneration: 2 } },
      { subresource: "status" },
    );
    assert.deepEqual(st.status, { replicas: 3, observedGeneration: 2 });
    assert.equal((st.spec as { replicas: number }).replicas, 3);
    assert.equal(st.metadata.generation, 2);
  });

  it("an update that changes nothing writes nothing", async (t) => {
    const { c } = await withNamespace(t);
    const a = await c.create(Resources.configmaps, cm("x"));
    const b = await c.update(Resources.configmaps, a);
    assert.equal(b.metadata.resourceVersion, a.metadata.resourceVersion);
  });

  it("finalizers hold a deleted object until the last one is removed", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.configmaps, {
      ...cm("f"),
      metadata: { name: "f", namespace: "sample", finalizers: ["example.com/a", "example.com/b"] },
    });
    const marked = await c.delete(Resources.configmaps, "sample", "f");
    assert.ok(marked.metadata.deletionTimestamp);
    assert.equal(marked.metadata.deletionGracePeriodSeconds, 0);
    const again = await c.get(Resources.configmaps, "sample", "f");
    assert.ok(again.metadata.deletionTimestamp);
    const added = await rejection(
      c.patch(Resources.configmaps, "sample", "f", "application/merge-patch+json", {
        metadata: { finalizers: ["example.com/a", "example.com/b", "example.com/c"] },
      }),
    );
    assert.equal(added.code, 422);
    await c.patch(Resources.configmaps, "sample", "f", "application/json-patch+json", [
      { op: "remove", path: "/metadata/finalizers/0" },
    ]);
    assert.ok((await c.get(Resources.configmaps, "sample", "f")).metadata.deletionTimestamp);
    await c.patch(Resources.configmaps, "sample", "f", "application/merge-patch+json", {
      metadata: { finalizers: null },
    });
    assert.equal((await rejection(c.get(Resources.configmaps, "sample", "f"))).code, 404);
  });

  it("delete preconditions: a wrong uid or resourceVersion is a Conflict", async (t) => {
    const { c } = await withNamespace(t);
    const a = await c.create(Resources.configmaps, cm("x"));
    const got = await rejection(c.delete(Resources.configmaps, "sample", "x", { preconditions: { uid: "nope" } }));
    assert.equal(got.code, 409);
    const rv = await rejection(
      c.delete(Resources.configmaps, "sample", "x", { preconditions: { resourceVersion: "1" } }),
    );
    assert.equal(rv.code, 409);
    await c.delete(Resources.configmaps, "sample", "x", { preconditions: { uid: a.metadata.uid ?? "" } });
  });

  it("dryRun validates and defaults but stores nothing", async (t) => {
    const { api, c } = await withNamespace(t);
    const rv = api.resourceVersion;
    const out = await c.create(Resources.services, service("dry"), { dryRun: true });
    assert.equal((out.spec as { type: string }).type, "ClusterIP");
    assert.equal(api.resourceVersion, rv);
    assert.equal((await rejection(c.get(Resources.services, "sample", "dry"))).code, 404);
  });

  it("merges a Secret's stringData into data (base64) and never stores stringData, as kube-apiserver", async (t) => {
    const { c } = await withNamespace(t);
    const secret: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "remote", namespace: "sample" },
      data: { kept: Buffer.from("k").toString("base64") },
      stringData: { cluster1: "apiVersion: v1\nkind: Config\n" },
    };
    const created = await c.create(Resources.secrets, secret);
    assert.equal(created.stringData, undefined);
    assert.deepEqual(created.data, {
      kept: Buffer.from("k").toString("base64"),
      cluster1: Buffer.from("apiVersion: v1\nkind: Config\n").toString("base64"),
    });
    const patched = await c.patch(Resources.secrets, "sample", "remote", "application/merge-patch+json", {
      stringData: { cluster1: "changed" },
    });
    assert.equal(
      Buffer.from(String((patched.data as Record<string, string>).cluster1), "base64").toString(),
      "changed",
    );
    assert.equal(patched.stringData, undefined);
  });
});

describe("namespaces", () => {
  it("defaults, and delete goes to Terminating until the finalize subresource clears spec.finalizers", async (t) => {
    const { c } = await withNamespace(t);
    const n = await c.get(Resources.namespaces, undefined, "sample");
    assert.deepEqual(n.spec, { finalizers: ["kubernetes"] });
    assert.deepEqual(n.status, { phase: "Active" });
    assert.equal(n.metadata.labels?.["kubernetes.io/metadata.name"], "sample");
    await c.create(Resources.configmaps, cm("x"));
    const del = await c.delete(Resources.namespaces, undefined, "sample");
    assert.equal((del.status as { phase: string }).phase, "Terminating");
    assert.ok(del.metadata.deletionTimestamp);
    // An update of the main resource cannot drop the finalizer; only `finalize` can.
    const upd = await c.update(Resources.namespaces, { ...del, spec: { finalizers: [] } });
    assert.deepEqual(upd.spec, { finalizers: ["kubernetes"] });
    await c.delete(Resources.configmaps, "sample", "x");
    await c.update(Resources.namespaces, { ...upd, spec: { finalizers: [] } }, { subresource: "finalize" });
    assert.equal((await rejection(c.get(Resources.namespaces, undefined, "sample"))).code, 404);
  });

  it("the system namespaces exist after start", async (t) => {
    const api = await newApi(t);
    const names = (await api.client().list(Resources.namespaces)).items.map((n) => n.metadata.name);
    assert.deepEqual(names, ["default", "kube-node-lease", "kube-public", "kube-system"]);
  });
});

describe("patches through the API", () => {
  it("strategic merge of containers, env and ports keeps what the patch does not name", async (t) => {
    const { c } = await withNamespace(t);
    const d = deployment("d");
    const podSpec = (d.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec;
    podSpec.containers = [
      {
        name: "a",
        image: "a:1",
        env: [
          { name: "X", value: "1" },
          { name: "Y", value: "2" },
        ],
        ports: [{ containerPort: 80 }],
      },
      { name: "b", image: "b:1" },
    ];
    await c.create(Resources.deployments, d);
    const out = await c.patch(Resources.deployments, "sample", "d", "application/strategic-merge-patch+json", {
      spec: {
        template: {
          spec: {
            containers: [{ name: "a", image: "a:2", env: [{ name: "Y", value: "3" }], ports: [{ containerPort: 81 }] }],
          },
        },
      },
    });
    const cs = (
      out.spec as {
        template: { spec: { containers: { name: string; image: string; env?: unknown; ports?: unknown }[] } };
      }
    ).template.spec.containers;
    assert.deepEqual(
      cs.map((x) => `${x.name}=${x.image}`),
      ["a=a:2", "b=b:1"],
    );
    assert.deepEqual(cs[0]?.env, [
      { name: "X", value: "1" },
      { name: "Y", value: "3" },
    ]);
    assert.deepEqual(cs[0]?.ports, [
      { containerPort: 80, protocol: "TCP" },
      { containerPort: 81, protocol: "TCP" },
    ]);
  });

  it("a JSON patch whose test fails is Invalid; a malformed one is BadRequest", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.configmaps, cm("x"));
    const failed = await rejection(
      c.patch(Resources.configmaps, "sample", "x", "application/json-patch+json", [
        { op: "test", path: "/data/a", value: "2" },
      ]),
    );
    assert.equal(failed.code, 422);
    const bad = await rejection(
      c.patch(Resources.configmaps, "sample", "x", "application/json-patch+json", { op: "add" }),
    );
    assert.equal(bad.code, 400);
  });

  it("a patch naming a stale resourceVersion is a Conflict", async (t) => {
    const { c } = await withNamespace(t);
    const a = await c.create(Resources.configmaps, cm("x"));
    await c.patch(Resources.configmaps, "sample", "x", "application/merge-patch+json", { data: { a: "2" } });
    const got = await rejection(
      c.patch(Resources.configmaps, "sample", "x", "application/merge-patch+json", {
        metadata: { resourceVersion: a.metadata.resourceVersion },
        data: { a: "3" },
      }),
    );
    assert.equal(got.code, 409);
  });

  it("scale subresource reads and writes replicas as autoscaling/v1 Scale", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.deployments, deployment("d"));
    const s = await c.getSubresource(Resources.deployments, "sample", "d", "scale");
    assert.equal(s.kind, "Scale");
    assert.equal(s.apiVersion, "autoscaling/v1");
    assert.deepEqual(s.spec, { replicas: 1 });
    assert.deepEqual(s.status, { replicas: 0, selector: "app=d" });
    const patched = await c.patch(
      Resources.deployments,
      "sample",
      "d",
      "application/merge-patch+json",
      { spec: { replicas: 4 } },
      { subresource: "scale" },
    );
    assert.equal(patched.kind, "Scale");
    assert.deepEqual(patched.spec, { replicas: 4 });
    assert.equal(((await c.get(Resources.deployments, "sample", "d")).spec as { replicas: number }).replicas, 4);
    const stale = await rejection(
      c.update(Resources.deployments, { ...s, spec: { replicas: 2 } }, { subresource: "scale" }),
    );
    assert.equal(stale.code, 409);
    const put = await c.update(Resources.deployments, { ...patched, spec: { replicas: 2 } }, { subresource: "scale" });
    assert.deepEqual(put.spec, { replicas: 2 });
    const negative = await rejection(
      c.update(Resources.deployments, { ...put, spec: { replicas: -1 } }, { subresource: "scale" }),
    );
    assert.equal(negative.code, 422);
  });
});

describe("defaults", () => {
  it("fills a Service like kube-apiserver does for the helloworld sample", async (t) => {
    const { c } = await withNamespace(t);
    const svc = await c.create(Resources.services, service("helloworld"));
    const spec = svc.spec as Record<string, unknown>;
    assert.deepEqual(
      spec.ports,
      [{ name: "http", protocol: "TCP", port: 5000, targetPort: 5000 }].map((p) => ({
        name: p.name,
        port: p.port,
        protocol: p.protocol,
        targetPort: p.targetPort,
      })),
    );
    assert.equal(spec.type, "ClusterIP");
    assert.equal(spec.sessionAffinity, "None");
    assert.deepEqual(spec.ipFamilies, ["IPv4"]);
    assert.equal(spec.ipFamilyPolicy, "SingleStack");
    assert.equal(spec.internalTrafficPolicy, "Cluster");
    assert.deepEqual(svc.status, { loadBalancer: {} });
    assert.deepEqual(Object.keys(svc).slice(0, 3), ["kind", "apiVersion", "metadata"]);
    assert.deepEqual(Object.keys(svc.metadata), ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"]);
  });

  it("fills a Deployment and its pod template", async (t) => {
    const { c } = await withNamespace(t);
    const d = await c.create(Resources.deployments, deployment("d"));
    const spec = d.spec as Record<string, unknown>;
    assert.equal(spec.replicas, 1);
    assert.deepEqual(spec.strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" },
    });
    assert.equal(spec.revisionHistoryLimit, 10);
    assert.equal(spec.progressDeadlineSeconds, 600);
    const pod = (spec.template as { spec: Record<string, unknown> }).spec;
    assert.equal(pod.restartPolicy, "Always");
    assert.equal(pod.serviceAccountName, undefined);
  });

  it("pods get the service-account token volume unless automount is off", async (t) => {
    const { c } = await withNamespace(t);
    const pod = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "sample" },
      spec: {
        containers: [
          { name: "c", image: "img" },
          { name: "d", image: "img:1.2" },
        ],
        ...extra,
      },
    });
    const p = await c.create(Resources.pods, pod("p"));
    const spec = p.spec as {
      volumes: { name: string; projected: { sources: unknown[] } }[];
      containers: Record<string, unknown>[];
    };
    assert.equal(spec.volumes.length, 1);
    assert.match(spec.volumes[0]?.name ?? "", /^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.deepEqual(spec.volumes[0]?.projected.sources[0], {
      serviceAccountToken: { expirationSeconds: 3607, path: "token" },
    });
    for (const ctr of spec.containers) {
      assert.deepEqual(ctr.volumeMounts, [
        { name: spec.volumes[0]?.name, readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" },
      ]);
    }
    assert.equal(spec.containers[0]?.imagePullPolicy, "Always");
    assert.equal(spec.containers[1]?.imagePullPolicy, "IfNotPresent");
    assert.equal((p.status as { phase: string }).phase, "Pending");
    const off = await c.create(Resources.pods, pod("q", { automountServiceAccountToken: false }));
    assert.equal((off.spec as { volumes?: unknown }).volumes, undefined);
    assert.equal((off.spec as { serviceAccountName: string }).serviceAccountName, "default");
  });
});

describe("ClusterIP allocation", () => {
  it("allocates from the range, skips .1 and .10, honours explicit IPs, refuses taken ones, frees on delete", async (t) => {
    const api = await newApi(t, { serviceCidr: "10.201.3.0/28" });
    const c = api.client();
    await c.create(Resources.namespaces, ns("sample"));
    const ips: string[] = [];
    for (let i = 0; i < 12; i++) {
      const s = await c.create(Resources.services, service(`s${i}`));
      ips.push((s.spec as { clusterIP: string }).clusterIP);
    }
    assert.equal(new Set(ips).size, 12);
    for (const ip of ips) {
      assert.match(ip, /^10\.201\.3\.(\d+)$/);
      assert.ok(!["10.201.3.0", "10.201.3.1", "10.201.3.10", "10.201.3.15"].includes(ip), ip);
    }
    const full = await rejection(c.create(Resources.services, service("full")));
    assert.equal(full.code, 500);
    const dns = await c.create(Resources.services, service("kube-dns", "sample", { clusterIP: "10.201.3.10" }));
    assert.equal((dns.spec as { clusterIP: string }).clusterIP, "10.201.3.10");
    const taken = await rejection(c.create(Resources.services, service("dup", "sample", { clusterIP: "10.201.3.10" })));
    assert.equal(taken.code, 422);
    const outside = await rejection(c.create(Resources.services, service("out", "sample", { clusterIP: "10.9.9.9" })));
    assert.equal(outside.code, 422);
    await c.delete(Resources.services, "sample", "s3");
    const again = await c.create(Resources.services, service("again"));
    assert.equal((again.spec as { clusterIP: string }).clusterIP, ips[3]);
    const headless = await c.create(Resources.services, service("hl", "sample", { clusterIP: "None" }));
    assert.deepEqual((headless.spec as { clusterIPs: string[] }).clusterIPs, ["None"]);
  });
});

describe("custom resources", () => {
  const crd: KubeObject = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "widgets.example.com" },
    spec: {
      group: "example.com",
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", shortNames: ["wd"] },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          subresources: { status: {} },
        },
      ],
    },
  };
  const widgets: ResourceRef = { group: "example.com", version: "v1", resource: "widgets" };

  it("are served while their CRD exists, with CRUD, merge patches and status; SMP is 415", async (t) => {
    const { api, c } = await withNamespace(t);
    let changes = 0;
    api.resources.onChange(() => changes++);
    const created = await c.create(Resources.customresourcedefinitions, crd);
    const conds = (created.status as { conditions: { type: string; status: string }[] }).conditions;
    assert.ok(conds.some((x) => x.type === "Established" && x.status === "True"));
    assert.ok(changes > 0);
    const info = api.resources.lookup(widgets);
    assert.deepEqual(info?.shortNames, ["wd"]);
    assert.deepEqual(info?.subresources, ["status"]);
    const w = await c.create(widgets, {
      apiVersion: "example.com/v1",
      kind: "Widget",
      metadata: { name: "w1", namespace: "sample" },
      spec: { size: 1 },
      status: { x: 1 },
    });
    assert.equal(w.metadata.generation, 1);
    assert.equal(w.status, undefined);
    const p = await c.patch(widgets, "sample", "w1", "application/merge-patch+json", { spec: { size: 2 } });
    assert.equal(p.metadata.generation, 2);
    const smp = await rejection(
      c.patch(widgets, "sample", "w1", "application/strategic-merge-patch+json", { spec: { size: 3 } }),
    );
    assert.equal(smp.code, 415);
    assert.equal((await c.list(widgets, { namespace: "sample" })).items.length, 1);
    await c.delete(Resources.customresourcedefinitions, undefined, "widgets.example.com");
    assert.equal(api.resources.lookup(widgets), undefined);
    assert.equal((await rejection(c.list(widgets))).code, 404);
    await c.create(Resources.customresourcedefinitions, crd);
    assert.equal((await c.list(widgets)).items.length, 0, "custom resources go with their CRD");
  });
});

describe("custom resources with a structural schema", () => {
  const crd: KubeObject = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "gadgets.example.com" },
    spec: {
      group: "example.com",
      scope: "Cluster",
      names: { plural: "gadgets", kind: "Gadget" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          additionalPrinterColumns: [{ name: "Size", type: "integer", jsonPath: ".spec.size" }],
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  required: ["color"],
                  properties: {
                    size: { type: "integer", default: 1 },
                    color: { type: "string", enum: ["red", "blue"] },
                    extra: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
                    port: { "x-kubernetes-int-or-string": true },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
  const gadgets: ResourceRef = { group: "example.com", version: "v1", resource: "gadgets" };
  const gadget = (spec: Record<string, unknown>): KubeObject => ({
    apiVersion: "example.com/v1",
    kind: "Gadget",
    metadata: { name: "g" },
    spec,
  });

  it("defaults, prunes, refuses unknown fields when strict, and checks types, enums and required fields", async (t) => {
    const { api, c } = await withNamespace(t);
    await c.create(Resources.customresourcedefinitions, crd);
    assert.deepEqual(api.resources.lookup(gadgets)?.printerColumns, [
      { name: "Size", type: "integer", jsonPath: ".spec.size" },
    ]);
    const strict = await rejection(
      c.create(gadgets, gadget({ color: "red", bogus: 1 }), { fieldValidation: "Strict" }),
    );
    assert.equal(strict.code, 400);
    assert.match(strict.message, /strict decoding error: unknown field "spec\.bogus"/);
    const g = await c.create(
      gadgets,
      gadget({ color: "red", bogus: 1, extra: { free: { form: true } }, port: "http" }),
    );
    assert.deepEqual(g.spec, { color: "red", extra: { free: { form: true } }, port: "http", size: 1 });
    const bad = await rejection(
      c.patch(gadgets, undefined, "g", "application/merge-patch+json", {
        spec: { size: "big", color: "green", port: 1.5 },
      }),
    );
    assert.equal(bad.code, 422);
    assert.deepEqual(bad.details?.causes?.map((x) => x.field).sort(), ["spec.color", "spec.port", "spec.size"]);
    const missing = await rejection(c.create(gadgets, { ...gadget({}), metadata: { name: "h" } }));
    assert.deepEqual(
      missing.details?.causes?.map((x) => x.field),
      ["spec.color"],
    );
  });
});

describe("admission and virtual resources", () => {
  it("mutate runs before validation, validate after, for create, update and delete", async (t) => {
    const seen: string[] = [];
    const admission: Admission = {
      async mutate(a: AdmissionAttributes) {
        seen.push(`mutate ${a.operation} ${a.ref.resource}`);
        if (a.operation === "CREATE" && a.ref.resource === "configmaps" && a.object) {
          return { ...a.object, metadata: { ...a.object.metadata, labels: { injected: "yes" } } };
        }
        return undefined;
      },
      async validate(a: AdmissionAttributes) {
        seen.push(`validate ${a.operation} ${a.ref.resource}`);
        if (a.object?.metadata.name === "refused") {
          throw new ApiError({
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Failure",
            message: "admission webhook denied the request",
            reason: "Forbidden",
            code: 403,
          });
        }
      },
    };
    const { c } = await withNamespace(t, { admission });
    const x = await c.create(Resources.configmaps, cm("x"));
    assert.equal(x.metadata.labels?.injected, "yes");
    const refused = await rejection(c.create(Resources.configmaps, cm("refused")));
    assert.equal(refused.code, 403);
    assert.equal((await rejection(c.get(Resources.configmaps, "sample", "refused"))).code, 404);
    seen.length = 0;
    await c.patch(Resources.configmaps, "sample", "x", "application/merge-patch+json", { data: { b: "2" } });
    await c.delete(Resources.configmaps, "sample", "x");
    assert.deepEqual(seen, ["mutate UPDATE configmaps", "validate UPDATE configmaps", "validate DELETE configmaps"]);
  });

  it("routes creates of virtual resources and serviceaccounts/token to their handlers", async (t) => {
    const calls: string[] = [];
    const vr = (label: string): VirtualResource => ({
      async create(body, ctx) {
        calls.push(`${label} ${ctx.user.username} ${ctx.namespace}/${ctx.name}`);
        return { ...body, status: { ok: true } };
      },
    });
    const tokenReviews: ResourceRef = { group: "authentication.k8s.io", version: "v1", resource: "tokenreviews" };
    const virtualResources = new Map([
      [virtualResourceKey(tokenReviews), vr("review")],
      [virtualResourceKey(Resources.serviceaccounts, "token"), vr("token")],
    ]);
    const { api } = await withNamespace(t, { virtualResources });
    const c = api.client({ username: "alice", groups: [] });
    const out = await c.create(tokenReviews, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      metadata: {},
      spec: { token: "t" },
    });
    assert.deepEqual(out.status, { ok: true });
    await c.create(
      Resources.serviceaccounts,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        metadata: { name: "sa", namespace: "sample" },
        spec: {},
      },
      { subresource: "token" },
    );
    assert.deepEqual(calls, ["review alice /", "token alice sample/sa"]);
    const sar = await rejection(
      c.create(
        { group: "authorization.k8s.io", version: "v1", resource: "subjectaccessreviews" },
        { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", metadata: {} },
      ),
    );
    assert.equal(sar.code, 405);
  });
});

describe("pods", () => {
  it("binding sets nodeName; a bound pod is deleted gracefully, then for good with grace 0", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "sample" },
      spec: { containers: [{ name: "c", image: "i:1" }] },
    });
    await c.create(
      Resources.pods,
      {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: "p", namespace: "sample" },
        target: { kind: "Node", name: "n1" },
      } as KubeObject,
      { subresource: "binding" },
    );
    const bound = await c.get(Resources.pods, "sample", "p");
    assert.equal((bound.spec as { nodeName: string }).nodeName, "n1");
    const status = await c.patch(
      Resources.pods,
      "sample",
      "p",
      "application/merge-patch+json",
      { status: { phase: "Running" } },
      { subresource: "status" },
    );
    assert.equal((status.status as { phase: string }).phase, "Running");
    const marked = await c.delete(Resources.pods, "sample", "p");
    assert.equal(marked.metadata.deletionGracePeriodSeconds, 30);
    assert.ok(marked.metadata.deletionTimestamp);
    await c.delete(Resources.pods, "sample", "p", { gracePeriodSeconds: 0 });
    assert.equal((await rejection(c.get(Resources.pods, "sample", "p"))).code, 404);
  });
});

describe("more semantics", () => {
  it("NodePort and LoadBalancer Services get node ports, kept on update, freed on delete", async (t) => {
    const { c } = await withNamespace(t);
    const lb = await c.create(
      Resources.services,
      service("lb", "sample", {
        type: "LoadBalancer",
        ports: [
          { name: "a", port: 80 },
          { name: "b", port: 81, nodePort: 31000 },
        ],
      }),
    );
    const ports = (lb.spec as { ports: { nodePort: number }[] }).ports;
    assert.ok((ports[0]?.nodePort ?? 0) >= 30000 && (ports[0]?.nodePort ?? 0) <= 32767);
    assert.equal(ports[1]?.nodePort, 31000);
    assert.equal((lb.spec as { externalTrafficPolicy: string }).externalTrafficPolicy, "Cluster");
    const taken = await rejection(
      c.create(
        Resources.services,
        service("np", "sample", { type: "NodePort", ports: [{ port: 80, nodePort: 31000 }] }),
      ),
    );
    assert.deepEqual(
      taken.details?.causes?.map((x) => x.field),
      ["spec.ports[0].nodePort"],
    );
    const replaced = await c.update(Resources.services, {
      ...lb,
      spec: {
        ...(lb.spec as object),
        ports: [
          { name: "a", port: 80 },
          { name: "b", port: 81 },
        ],
      },
    });
    assert.deepEqual(
      (replaced.spec as { ports: { nodePort: number }[] }).ports.map((p) => p.nodePort),
      ports.map((p) => p.nodePort),
    );
    await c.delete(Resources.services, "sample", "lb");
    await c.create(
      Resources.services,
      service("np", "sample", { type: "NodePort", ports: [{ port: 80, nodePort: 31000 }] }),
    );
  });

  it("Foreground and Orphan deletion leave the object to the garbage collector through a finalizer", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.configmaps, cm("fg"));
    const fg = await c.delete(Resources.configmaps, "sample", "fg", { propagationPolicy: "Foreground" });
    assert.deepEqual(fg.metadata.finalizers, ["foregroundDeletion"]);
    assert.ok(fg.metadata.deletionTimestamp);
    await c.create(Resources.configmaps, cm("or"));
    const or = await c.delete(Resources.configmaps, "sample", "or", { propagationPolicy: "Orphan" });
    assert.deepEqual(or.metadata.finalizers, ["orphan"]);
    await c.patch(Resources.configmaps, "sample", "or", "application/merge-patch+json", {
      metadata: { finalizers: [] },
    });
    assert.equal((await rejection(c.get(Resources.configmaps, "sample", "or"))).code, 404);
  });

  it("status writes to a pod in graceful deletion do not delete it; node status survives main-resource updates", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.pods, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "sample" },
      spec: { nodeName: "n1", containers: [{ name: "c", image: "i:1" }] },
    });
    await c.delete(Resources.pods, "sample", "p");
    await c.patch(
      Resources.pods,
      "sample",
      "p",
      "application/merge-patch+json",
      { status: { phase: "Running" } },
      { subresource: "status" },
    );
    assert.ok((await c.get(Resources.pods, "sample", "p")).metadata.deletionTimestamp);
    const node = await c.create(Resources.nodes, {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1" },
      status: { addresses: [{ type: "InternalIP", address: "10.200.0.2" }] },
    });
    assert.ok(node.status);
    const upd = await c.update(Resources.nodes, {
      ...node,
      metadata: { ...node.metadata, labels: { a: "b" } },
      status: {},
    });
    assert.deepEqual(upd.status, node.status);
  });

  it("listJson gives the stored JSON texts", async (t) => {
    const { c } = await withNamespace(t);
    await c.create(Resources.configmaps, cm("x"));
    const raw = await c.listJson(Resources.configmaps, { namespace: "sample" });
    const parsed = await c.list(Resources.configmaps, { namespace: "sample" });
    assert.deepEqual(
      raw.items.map((s) => JSON.parse(s) as unknown),
      parsed.items,
    );
    assert.equal(raw.resourceVersion, parsed.resourceVersion);
  });

  it("drops unknown fields of built-in kinds unless strict validation refuses them", async (t) => {
    const { c } = await withNamespace(t);
    const out = await c.create(Resources.configmaps, {
      ...cm("x"),
      spec: { a: 1 },
      metadata: { name: "x", namespace: "sample", bogus: 1 } as KubeObject["metadata"],
    });
    assert.equal((out as Record<string, unknown>).spec, undefined);
    assert.equal((out.metadata as Record<string, unknown>).bogus, undefined);
    const patched = await c.patch(Resources.configmaps, "sample", "x", "application/merge-patch+json", {
      extra: true,
      data: { b: "2" },
    });
    assert.equal((patched as Record<string, unknown>).extra, undefined);
    assert.deepEqual(patched.data, { a: "1", b: "2" });
    const strict = await rejection(
      c.patch(
        Resources.configmaps,
        "sample",
        "x",
        "application/merge-patch+json",
        { extra: true },
        { fieldValidation: "Strict" },
      ),
    );
    assert.equal(strict.code, 400);
  });

  it("recordEvent creates an Event that field selectors on involvedObject find", async (t) => {
    const { c } = await withNamespace(t);
    const svc = await c.create(Resources.services, service("hw"));
    const ev = await recordEvent(c, svc, { type: "Normal", reason: "Tested", message: "hello", component: "test" });
    assert.match(ev.metadata.name ?? "", /^hw\.[0-9a-f]+$/);
    const found = await c.list(Resources.events, {
      namespace: "sample",
      fieldSelector: `involvedObject.name=hw,involvedObject.namespace=sample,involvedObject.kind=Service,involvedObject.uid=${svc.metadata.uid}`,
    });
    assert.deepEqual(
      found.items.map((e) => e.reason),
      ["Tested"],
    );
  });

  it("concurrent patches of one object, interleaved by async admission, lose no update", async (t) => {
    const admission: Admission = {
      mutate: async () => {
        await new Promise((r) => setImmediate(r));
        return undefined;
      },
      validate: async () => {
        await new Promise((r) => setImmediate(r));
      },
    };
    const { c } = await withNamespace(t, { admission });
    await c.create(Resources.configmaps, cm("x", "sample", {}));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        c.patch(Resources.configmaps, "sample", "x", "application/merge-patch+json", { data: { [`k${i}`]: "v" } }),
      ),
    );
    const got = await c.get(Resources.configmaps, "sample", "x");
    assert.equal(Object.keys(got.data as object).length, 20);
    // A PUT pinned to a resourceVersion that changed while admission ran is a Conflict, not a silent overwrite.
    const [a, b] = await Promise.allSettled([
      c.update(Resources.configmaps, { ...got, data: { a: "1" } }),
      c.update(Resources.configmaps, { ...got, data: { b: "1" } }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), ["fulfilled", "rejected"]);
  });

  it("ensureKubernetesService creates, then refreshes, the kubernetes Service, Endpoints and EndpointSlice", async (t) => {
    const api = await newApi(t);
    const c = api.client();
    await api.ensureKubernetesService({ ip: "10.200.0.1", port: 6443 });
    await api.ensureKubernetesService({ ip: "10.200.0.1", port: 7443 });
    const svc = await c.get(Resources.services, "default", "kubernetes");
    assert.equal((svc.spec as { clusterIP: string }).clusterIP, "10.201.3.1");
    assert.deepEqual((svc.spec as { ports: unknown[] }).ports, [
      { name: "https", port: 443, protocol: "TCP", targetPort: 7443 },
    ]);
    const eps = await c.get(Resources.endpoints, "default", "kubernetes");
    assert.deepEqual(eps.subsets, [
      { addresses: [{ ip: "10.200.0.1" }], ports: [{ name: "https", port: 7443, protocol: "TCP" }] },
    ]);
    const slice = await c.get(Resources.endpointslices, "default", "kubernetes");
    assert.deepEqual(slice.ports, [{ name: "https", port: 7443, protocol: "TCP" }]);
    assert.equal(api.serviceIp(10), "10.201.3.10");
  });
});
