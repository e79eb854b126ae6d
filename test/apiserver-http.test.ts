/**
 * The local API server at the HTTP level: the Status bodies (401, 403, 404, 405, 409, 410, 413,
 * 415, 422, 400) clients receive, discovery and OpenAPI shapes, Tables, watch framing, and the
 * outage switch (stopListening/listen). Requests go over HTTPS with the cluster CA.
 */
import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import { Resources } from "../src/devcluster/api/types.js";
import { type TestApiServer, startTestApiServer } from "../src/devcluster/apiserver/http/testing.js";

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

let server: TestApiServer;
let readerToken: string;

function call(
  method: string,
  path: string,
  opts: { token?: string | null; body?: string | Buffer; contentType?: string; accept?: string } = {},
): Promise<Reply> {
  const url = new URL(path, server.url);
  const token = opts.token === undefined ? server.adminToken : opts.token;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: server.caPem,
        headers: {
          ...(token !== null ? { Authorization: `Bearer ${token}` } : {}),
          ...(opts.contentType ? { "Content-Type": opts.contentType } : {}),
          ...(opts.accept ? { Accept: opts.accept } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: Record<string, unknown> = {};
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // not JSON (e.g. /healthz)
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

const cm = (name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { a: "1" }, ...extra });

describe("HTTP behaviour of the local API server", () => {
  before(async () => {
    server = await startTestApiServer({ historyWindow: 5, maxBodyBytes: 64 * 1024 });
    const c = server.api.client();
    for (const name of ["web", "ro"]) {
      await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name } });
    }
    await c.create(Resources.roles, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "cm-reader", namespace: "ro" },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }],
    });
    await c.create(Resources.rolebindings, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "reader", namespace: "ro" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "cm-reader" },
      subjects: [{ kind: "ServiceAccount", name: "reader", namespace: "ro" }],
    });
    readerToken = await server.serviceAccountToken("ro", "reader");
  });
  after(async () => {
    await server?.close();
  });

  test("health answers without a token; everything else needs one (401 as Kubernetes)", async () => {
    const h = await call("GET", "/healthz", { token: null });
    assert.equal(h.status, 200);
    assert.equal(h.text, "ok");
    const unauthorized = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "Unauthorized",
      reason: "Unauthorized",
      code: 401,
    };
    for (const token of [null, "not-a-token"]) {
      const r = await call("GET", "/api/v1/namespaces", { token });
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, unauthorized);
    }
  });

  test("a read-only service account may read but is refused a write with Kubernetes' 403 wording", async () => {
    await server.api.client().create(Resources.configmaps, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "seen", namespace: "ro" },
    });
    const ok = await call("GET", "/api/v1/namespaces/ro/configmaps", { token: readerToken });
    assert.equal(ok.status, 200);
    const r = await call("POST", "/api/v1/namespaces/ro/configmaps", {
      token: readerToken,
      body: cm("x"),
      contentType: "application/json",
    });
    assert.equal(r.status, 403);
    assert.deepEqual(r.json, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        'configmaps is forbidden: User "system:serviceaccount:ro:reader" cannot create resource "configmaps" in API group "" in the namespace "ro"',
      reason: "Forbidden",
      details: { kind: "configmaps" },
      code: 403,
    });
    const del = await call("DELETE", "/apis/apps/v1/namespaces/ro/deployments/web", { token: readerToken });
    assert.equal(del.status, 403);
    assert.equal(
      del.json.message,
      'deployments.apps "web" is forbidden: User "system:serviceaccount:ro:reader" cannot delete resource "deployments" in API group "apps" in the namespace "ro"',
    );
    const cluster = await call("GET", "/api/v1/nodes", { token: readerToken });
    assert.equal(cluster.status, 403);
    assert.match(String(cluster.json.message), /cannot list resource "nodes" in API group "" at the cluster scope$/);
  });

  test("404 for a missing object and for a resource the server does not serve", async () => {
    const r = await call("GET", "/api/v1/namespaces/web/services/nope");
    assert.equal(r.status, 404);
    assert.deepEqual(r.json, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: 'services "nope" not found',
      reason: "NotFound",
      details: { name: "nope", kind: "services" },
      code: 404,
    });
    const unknown = await call("GET", "/apis/apps/v1/namespaces/web/widgets");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.reason, "NotFound");
    assert.equal(unknown.json.message, "the server could not find the requested resource");
    const v2 = await call("GET", "/openapi/v2");
    assert.equal(v2.status, 404);
  });

  test("409 AlreadyExists on a second create and Conflict on a stale update", async () => {
    const path = "/api/v1/namespaces/web/configmaps";
    const first = await call("POST", path, { body: cm("dup"), contentType: "application/json" });
    assert.equal(first.status, 201);
    const again = await call("POST", path, { body: cm("dup"), contentType: "application/json" });
    assert.equal(again.status, 409);
    assert.equal(again.json.reason, "AlreadyExists");
    assert.equal(again.json.message, 'configmaps "dup" already exists');
    const meta = first.json.metadata as { resourceVersion: string };
    const upd = await call("PUT", `${path}/dup`, {
      body: cm("dup", { metadata: { name: "dup", resourceVersion: meta.resourceVersion }, data: { a: "2" } }),
      contentType: "application/json",
    });
    assert.equal(upd.status, 200);
    const stale = await call("PUT", `${path}/dup`, {
      body: cm("dup", { metadata: { name: "dup", resourceVersion: meta.resourceVersion }, data: { a: "3" } }),
      contentType: "application/json",
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.reason, "Conflict");
    assert.equal(
      stale.json.message,
      'Operation cannot be fulfilled on configmaps "dup": the object has been modified; please apply your changes to the latest version and try again',
    );
  });

  test("422 Invalid with field causes for a bad name", async () => {
    const r = await call("POST", "/api/v1/namespaces/web/configmaps", {
      body: cm("Bad_Name"),
      contentType: "application/json",
    });
    assert.equal(r.status, 422);
    assert.equal(r.json.reason, "Invalid");
    const details = r.json.details as { name: string; kind: string; causes: { field: string; reason: string }[] };
    assert.equal(details.name, "Bad_Name");
    assert.equal(details.kind, "ConfigMap");
    assert.equal(details.causes[0]?.field, "metadata.name");
    assert.equal(details.causes[0]?.reason, "FieldValueInvalid");
  });

  test("400 BadRequest names the problem: malformed JSON, strict unknown field, namespace mismatch", async () => {
    const bad = await call("POST", "/api/v1/namespaces/web/configmaps", {
      body: '{"kind": "ConfigMap",',
      contentType: "application/json",
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.reason, "BadRequest");
    assert.match(String(bad.json.message), /not valid JSON/);
    const strict = await call("POST", "/api/v1/namespaces/web/configmaps?fieldValidation=Strict", {
      body: cm("strict", { spec: { x: 1 } }),
      contentType: "application/json",
    });
    assert.equal(strict.status, 400);
    assert.match(String(strict.json.message), /unknown field "spec"/);
    const mismatch = await call("POST", "/api/v1/namespaces/web/configmaps", {
      body: cm("m", { metadata: { name: "m", namespace: "other" } }),
      contentType: "application/json",
    });
    assert.equal(mismatch.status, 400);
    assert.match(String(mismatch.json.message), /namespace of the provided object \(other\) does not match .*\(web\)/);
  });

  test("405 for a method the resource does not support", async () => {
    const put = await call("PUT", "/api/v1/namespaces/web/configmaps", {
      body: cm("x"),
      contentType: "application/json",
    });
    assert.equal(put.status, 405);
    assert.equal(put.json.reason, "MethodNotAllowed");
    const list = await call("GET", "/apis/authentication.k8s.io/v1/tokenreviews");
    assert.equal(list.status, 405);
    assert.equal(list.json.reason, "MethodNotAllowed");
  });

  test("413 for a body over the limit, 415 for unknown content types; server-side apply is served", async () => {
    const big = cm("big", { data: { a: "x".repeat(70 * 1024) } });
    const r = await call("POST", "/api/v1/namespaces/web/configmaps", { body: big, contentType: "application/json" });
    assert.equal(r.status, 413);
    assert.equal(r.json.reason, "RequestEntityTooLarge");
    const text = await call("POST", "/api/v1/namespaces/web/configmaps", { body: "hello", contentType: "text/plain" });
    assert.equal(text.status, 415);
    assert.equal(text.json.reason, "UnsupportedMediaType");
    assert.match(String(text.json.message), /text\/plain/);
    const proto = await call("PATCH", "/api/v1/namespaces/web/configmaps/dup", {
      body: "k8s\0",
      contentType: "application/vnd.kubernetes.protobuf",
    });
    assert.equal(proto.status, 415);
    const ssa = await call("PATCH", "/api/v1/namespaces/web/configmaps/ssa?fieldManager=me", {
      body: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: b\n",
      contentType: "application/apply-patch+yaml",
    });
    assert.equal(ssa.status, 200, ssa.text);
    assert.deepEqual(ssa.json.data, { a: "b" });
    const badYaml = await call("PATCH", "/api/v1/namespaces/web/configmaps/ssa?fieldManager=me", {
      body: "data: [unclosed",
      contentType: "application/apply-patch+yaml",
    });
    assert.equal(badYaml.status, 400);
    assert.match(String(badYaml.json.message), /not valid YAML/);
  });

  test("patches: merge, JSON and strategic merge", async () => {
    const path = "/api/v1/namespaces/web/configmaps/dup";
    const merge = await call("PATCH", path, {
      body: '{"data":{"m":"1"}}',
      contentType: "application/merge-patch+json",
    });
    assert.equal(merge.status, 200);
    const jp = await call("PATCH", path, {
      body: '[{"op":"add","path":"/data/j","value":"2"}]',
      contentType: "application/json-patch+json",
    });
    assert.equal(jp.status, 200);
    const smp = await call("PATCH", path, {
      body: '{"data":{"s":"3"}}',
      contentType: "application/strategic-merge-patch+json",
    });
    assert.equal(smp.status, 200);
    assert.deepEqual((smp.json.data as Record<string, string>).s, "3");
    assert.deepEqual((smp.json.data as Record<string, string>).j, "2");
  });

  test("a watch from a compacted resourceVersion gets an ERROR event with 410 Expired", async () => {
    const c = server.api.client();
    for (let i = 0; i < 10; i++) {
      await c.create(Resources.configmaps, {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `g${i}`, namespace: "web" },
      });
    }
    const r = await call("GET", "/api/v1/namespaces/web/configmaps?watch=true&resourceVersion=1");
    assert.equal(r.status, 200);
    const lines = r.text.trim().split("\n");
    assert.equal(lines.length, 1);
    const ev = JSON.parse(lines[0] ?? "") as { type: string; object: { kind: string; code: number; reason: string } };
    assert.equal(ev.type, "ERROR");
    assert.equal(ev.object.kind, "Status");
    assert.equal(ev.object.code, 410);
    assert.equal(ev.object.reason, "Expired");
  });

  test("aggregated discovery, legacy discovery and the OpenAPI v3 index", async () => {
    const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    const agg = await call("GET", "/apis", { accept });
    assert.equal(agg.headers["content-type"], "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    assert.equal(agg.json.kind, "APIGroupDiscoveryList");
    const groups = (agg.json.items as { metadata: { name: string } }[]).map((g) => g.metadata.name);
    assert.ok(groups.includes("apps") && groups.includes("authorization.k8s.io"));
    const legacy = await call("GET", "/apis/apps/v1");
    const names = (legacy.json.resources as { name: string }[]).map((r) => r.name);
    assert.ok(names.includes("deployments") && names.includes("deployments/scale"));
    const core = await call("GET", "/api/v1");
    assert.ok((core.json.resources as { name: string }[]).some((r) => r.name === "pods/exec"));
    const index = await call("GET", "/openapi/v3");
    const paths = index.json.paths as Record<string, { serverRelativeURL: string }>;
    assert.match(paths["apis/apps/v1"]?.serverRelativeURL ?? "", /^\/openapi\/v3\/apis\/apps\/v1\?hash=[0-9A-F]{128}$/);
    const doc = await call("GET", paths["api/v1"]?.serverRelativeURL ?? "");
    assert.equal(doc.status, 200);
    assert.equal(doc.headers["cache-control"], "public, immutable");
  });

  test("Tables: kubectl's service columns, as a real server prints them", async () => {
    const c = server.api.client();
    await c.create(Resources.services, {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "helloworld", namespace: "web", labels: { app: "helloworld" } },
      spec: { ports: [{ name: "http", port: 5000 }], selector: { app: "helloworld" } },
    });
    const r = await call("GET", "/api/v1/namespaces/web/services", {
      accept:
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
    });
    assert.equal(r.json.kind, "Table");
    assert.deepEqual(
      (r.json.columnDefinitions as { name: string }[]).map((d) => d.name),
      ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"],
    );
    const row = (r.json.rows as { cells: unknown[]; object: { kind: string } }[])[0];
    assert.equal(row?.object.kind, "PartialObjectMetadata");
    assert.deepEqual(row?.cells.slice(0, 5), ["helloworld", "ClusterIP", row?.cells[2], "<none>", "5000/TCP"]);
    assert.match(String(row?.cells[2]), /^10\.201\.251\.\d+$/);
    assert.equal(row?.cells[6], "app=helloworld");
  });

  test("watch honours timeoutSeconds and ends the stream cleanly", async () => {
    const r = await call("GET", "/api/v1/namespaces/ro/configmaps?watch=true&resourceVersion=0&timeoutSeconds=1");
    assert.equal(r.status, 200);
    const events = r.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
    assert.deepEqual(
      events.map((e) => [e.type, e.object.metadata.name]),
      [["ADDED", "seen"]],
    );
  });

  test("garbage never crashes the server: every answer is a Status", async () => {
    const cases: [string, string, string | undefined, string | undefined][] = [
      ["GET", "/api/v1/namespaces/%E0%A4%A/pods", undefined, undefined],
      ["GET", "/apis/%2e%2e/v1/x", undefined, undefined],
      ["POST", "/api/v1/namespaces/web/configmaps", "[1,2,3]", "application/json"],
      ["POST", "/api/v1/namespaces/web/configmaps", '"just a string"', "application/json"],
      ["POST", "/api/v1/namespaces/web/configmaps", "", "application/json"],
      ["PATCH", "/api/v1/namespaces/web/configmaps/dup", '{"op":"add"}', "application/json-patch+json"],
      ["PATCH", "/api/v1/namespaces/web/configmaps/dup", "[1]", "application/merge-patch+json"],
      ["GET", "/api/v1/namespaces/web/configmaps?limit=abc", undefined, undefined],
      ["GET", "/api/v1/namespaces/web/configmaps?labelSelector=%3D%3D%3D", undefined, undefined],
      ["POST", "/api/v1/namespaces/web/configmaps", "k8s\0\xff\xff", "application/vnd.kubernetes.protobuf"],
      ["DELETE", "/api/v1/namespaces/web/configmaps/dup?propagationPolicy=Sometimes", undefined, undefined],
      ["GET", "/api/v1/namespaces/web/pods/nope/exec", undefined, undefined],
    ];
    for (const [method, path, body, contentType] of cases) {
      const r = await call(method, path, {
        ...(body !== undefined ? { body } : {}),
        ...(contentType ? { contentType } : {}),
      });
      assert.ok(r.status >= 400 && r.status < 500, `${method} ${path}: ${r.status} ${r.text}`);
      assert.equal(r.json.kind, "Status", `${method} ${path}: ${r.text}`);
      assert.doesNotMatch(r.text, /at .*\.ts:\d+/, "no stack traces");
    }
    assert.equal((await call("GET", "/version")).status, 200);
  });

  test("stopListening drops watches and connections; listen() serves again on the same port", async () => {
    const url = new URL("/api/v1/namespaces/web/configmaps?watch=true", server.url);
    const ended = new Promise<void>((resolve, reject) => {
      const req = request(
        url,
        { ca: server.caPem, headers: { Authorization: `Bearer ${server.adminToken}` } },
        (res) => {
          assert.equal(res.statusCode, 200);
          res.on("data", () => {});
          res.on("close", () => resolve());
          res.on("error", () => resolve());
          // Headers arrive at once (before any event); then the outage.
          void server.http.stopListening();
        },
      );
      req.on("error", reject);
      req.end();
    });
    await ended;
    await assert.rejects(call("GET", "/version"));
    const again = await server.http.listen();
    assert.equal(String(again.port), new URL(server.url).port);
    const v = await call("GET", "/version");
    assert.match(String(v.json.gitVersion), /^v1\.32\./);
  });
});
