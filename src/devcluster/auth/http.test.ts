/**
 * Authentication and RBAC as clients see them: the real HTTPS API front with this folder's
 * authenticator and authorizer, spoken to over TLS with the cluster CA, and by kubectl.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { silentLogger } from "../../base/index.js";
import type { VirtualResource } from "../api/plugins.js";
import { Resources } from "../api/types.js";
import { ApiHttpServer } from "../apiserver/http/index.js";
import { createClusterPki } from "./pki.js";
import { obj, pod, testApi } from "./test-support.js";
import { wireAuth } from "./wiring.js";

const run = promisify(execFile);

test("over HTTPS: 401 without a token, RBAC for a read-only service account, `kubectl auth can-i`", async (t) => {
  const pki = await createClusterPki({ clusterName: "http", apiServerIps: [], apiServerDnsNames: [] });
  const virtualResources = new Map<string, VirtualResource>();
  const { api, client } = await testApi(t, { namespaces: ["sample"], virtualResources });
  const { tokens, authenticator, authorizer } = await wireAuth({ client, pki, virtualResources });
  const sa = await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "ro"));
  await client.create(
    Resources.roles,
    obj("rbac.authorization.k8s.io/v1", "Role", "sample", "pod-reader", {
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
    }),
  );
  await client.create(
    Resources.rolebindings,
    obj("rbac.authorization.k8s.io/v1", "RoleBinding", "sample", "ro-reads-pods", {
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "pod-reader" },
      subjects: [{ kind: "ServiceAccount", name: "ro", namespace: "sample" }],
    }),
  );
  await client.create(Resources.pods, pod("sample", "existing"));
  const roToken = tokens.issue({
    namespace: "sample",
    serviceAccount: { name: "ro", uid: sa.metadata.uid ?? "" },
  }).token;

  const http = new ApiHttpServer({
    api: api.client(),
    registry: api.resources,
    authenticator,
    authorizer,
    tls: { cert: pki.servingCertPem, key: pki.servingKeyPem },
    host: "127.0.0.1",
    port: 0,
    log: silentLogger,
  });
  const { port } = await http.listen();
  t.after(() => http.close());

  const call = (method: string, path: string, token: string | undefined, body?: unknown) =>
    new Promise<{ code: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          method,
          path,
          ca: pki.caCertPem,
          servername: "kubernetes.default.svc",
          agent: false,
          headers: {
            accept: "application/json",
            "content-type": "application/json",
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ code: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") }),
          );
        },
      );
      req.on("error", reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });

  assert.equal((await call("GET", "/api/v1/namespaces/sample/pods", undefined)).code, 401);
  assert.equal((await call("GET", "/api/v1/namespaces/sample/pods", "not-a-token")).code, 401);
  assert.equal((await call("GET", "/api/v1/namespaces/sample/pods", roToken)).code, 200);
  const denied = await call("POST", "/api/v1/namespaces/sample/pods", roToken, pod("sample", "new"));
  assert.equal(denied.code, 403);
  assert.deepEqual(denied.body, {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message:
      'pods is forbidden: User "system:serviceaccount:sample:ro" cannot create resource "pods" in API group "" in the namespace "sample"',
    reason: "Forbidden",
    details: { kind: "pods" },
    code: 403,
  });
  const deleteDenied = await call("DELETE", "/api/v1/namespaces/sample/pods/existing", roToken);
  assert.equal(deleteDenied.code, 403);
  assert.equal(
    deleteDenied.body.message,
    'pods "existing" is forbidden: User "system:serviceaccount:sample:ro" cannot delete resource "pods" in API group "" in the namespace "sample"',
  );
  assert.equal((await call("POST", "/api/v1/namespaces/sample/pods", pki.adminToken, pod("sample", "new"))).code, 201);

  // kubectl, unmodified, with a kubeconfig carrying the CA and the service account's token.
  const dir = await mkdtemp(join(tmpdir(), "isthmus-auth-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, "config");
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "c",
          cluster: {
            server: `https://127.0.0.1:${port}`,
            "certificate-authority-data": Buffer.from(pki.caCertPem).toString("base64"),
          },
        },
      ],
      users: [
        { name: "ro", user: { token: roToken } },
        { name: "admin", user: { token: pki.adminToken } },
      ],
      contexts: [{ name: "c", context: { cluster: "c", user: "ro" } }],
      "current-context": "c",
    }),
    { mode: 0o600 },
  );
  const kubectl = async (...args: string[]) =>
    (await run("kubectl", ["--kubeconfig", kubeconfig, ...args], { timeout: 60_000 })).stdout.trim();
  const canI = async (...args: string[]) => {
    try {
      const { stdout } = await run("kubectl", ["--kubeconfig", kubeconfig, "auth", "can-i", ...args], {
        timeout: 60_000,
      });
      return stdout.trim();
    } catch (err) {
      const e = err as { stdout?: string; code?: number };
      if (e.code === 1 && e.stdout) return e.stdout.trim();
      throw err;
    }
  };
  assert.equal(await canI("list", "pods", "-n", "sample"), "yes");
  assert.equal(await canI("create", "pods", "-n", "sample"), "no");
  assert.equal(await canI("list", "pods", "-n", "default"), "no");

  const list = await kubectl("auth", "can-i", "--list", "-n", "sample");
  assert.match(list, /^pods\s+\[\]\s+\[\]\s+\[get list watch\]$/m, list);
  assert.match(list, /selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/, list);

  // `kubectl auth whoami` (SelfSubjectReview) and `kubectl create token` (TokenRequest).
  const whoami = JSON.parse(await kubectl("auth", "whoami", "-o", "json")) as {
    status: { userInfo: { username: string } };
  };
  assert.equal(whoami.status.userInfo.username, "system:serviceaccount:sample:ro");
  const created = await kubectl(
    "--user",
    "admin",
    "create",
    "token",
    "ro",
    "-n",
    "sample",
    "--audience",
    "istio-ca",
    "--duration",
    "20m",
  );
  const review = await authenticator.review(created, ["istio-ca"]);
  assert.ok(review.authenticated, JSON.stringify(review));
  assert.equal(review.user.username, "system:serviceaccount:sample:ro");
  const exp = JSON.parse(Buffer.from(created.split(".")[1] ?? "", "base64url").toString("utf8")).exp as number;
  assert.ok(Math.abs(exp * 1000 - (Date.now() + 20 * 60_000)) < 60_000, "20 minutes, as asked");
});
