import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { type TestContext, test } from "node:test";
import { type VirtualResource, virtualResourceKey } from "../api/plugins.js";
import { isApiError, type KubeObject, Resources, type UserInfo } from "../api/types.js";
import { adminUser, TokenAuthenticator } from "./authenticator.js";
import { bootstrapRbacObjects, liveRbacSource, RbacAuthorizer } from "./rbac.js";
import { createVirtualResources } from "./reviews.js";
import { obj, pod as podObj, testApi } from "./test-support.js";
import { ServiceAccountTokens, serviceAccountUser } from "./tokens.js";

async function setup(t: TestContext) {
  const { client } = await testApi(t, { namespaces: ["sample"] });
  for (const o of bootstrapRbacObjects()) {
    await client.create(o.kind === "ClusterRole" ? Resources.clusterroles : Resources.clusterrolebindings, o);
  }
  await client.create(
    Resources.roles,
    obj("rbac.authorization.k8s.io/v1", "Role", "sample", "reader", {
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }],
    }),
  );
  await client.create(
    Resources.rolebindings,
    obj("rbac.authorization.k8s.io/v1", "RoleBinding", "sample", "ro-reader", {
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
      subjects: [{ kind: "ServiceAccount", name: "ro" }],
    }),
  );
  const sa = await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "ro"));
  const pod = await client.create(Resources.pods, podObj("sample", "ro-pod", "ro"));
  await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "default"));
  await client.create(Resources.pods, podObj("sample", "default-pod"));
  const tokens = new ServiceAccountTokens({
    signingKeyPem: generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString(),
    client,
  });
  const authenticator = new TokenAuthenticator({ adminToken: randomBytes(32).toString("base64url"), tokens });
  const authorizer = new RbacAuthorizer({ source: liveRbacSource(client) });
  const resources = createVirtualResources({ client, tokens, authenticator, authorizer });
  const ro = serviceAccountUser("sample", "ro", sa.metadata.uid ?? "");
  const get = (group: string, resource: string, sub = ""): VirtualResource => {
    const r = resources.get(virtualResourceKey({ group, version: "v1", resource }, sub));
    assert.ok(r, `${group}/${resource}/${sub} registered`);
    return r;
  };
  return { client, tokens, authenticator, get, ro, sa, pod };
}

const ctx = (user: UserInfo, namespace = "", name = "") => ({ user, namespace, name });
const body = (apiVersion: string, kind: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion,
  kind,
  metadata: {},
  spec,
});

test("SelfSubjectAccessReview answers `kubectl auth can-i` for the caller", async (t) => {
  const { get, ro } = await setup(t);
  const ssar = get("authorization.k8s.io", "selfsubjectaccessreviews");
  const can = (user: UserInfo, spec: Record<string, unknown>) =>
    ssar.create(body("authorization.k8s.io/v1", "SelfSubjectAccessReview", spec), ctx(user));

  const yes = await can(ro, { resourceAttributes: { namespace: "sample", verb: "list", resource: "pods" } });
  assert.deepEqual(yes, {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
    metadata: {},
    spec: { resourceAttributes: { namespace: "sample", verb: "list", resource: "pods" } },
    status: {
      allowed: true,
      reason: 'RBAC: allowed by RoleBinding "ro-reader/sample" of Role "reader" to ServiceAccount "ro/sample"',
    },
  });
  const no = await can(ro, { resourceAttributes: { namespace: "sample", verb: "create", resource: "pods" } });
  assert.deepEqual(no.status, { allowed: false });
  assert.deepEqual((await can(adminUser, { resourceAttributes: { verb: "*", group: "*", resource: "*" } })).status, {
    allowed: true,
  });
  assert.deepEqual(
    ((await can(ro, { nonResourceAttributes: { path: "/version", verb: "get" } })).status as { allowed: boolean })
      .allowed,
    true,
  );
  await assert.rejects(can(ro, {}), (err: unknown) => {
    assert.ok(isApiError(err, 422));
    assert.match(
      err.message,
      /^SelfSubjectAccessReview\.authorization\.k8s\.io "" is invalid: spec\.resourceAttributes: .*exactly one of/,
    );
    return true;
  });
});

test("SubjectAccessReview and LocalSubjectAccessReview ask about someone else", async (t) => {
  const { get, ro } = await setup(t);
  const sar = get("authorization.k8s.io", "subjectaccessreviews");
  const answer = await sar.create(
    body("authorization.k8s.io/v1", "SubjectAccessReview", {
      user: ro.username,
      groups: ro.groups,
      resourceAttributes: { namespace: "sample", verb: "get", resource: "pods", name: "x" },
    }),
    ctx(adminUser),
  );
  assert.equal((answer.status as { allowed: boolean }).allowed, true);
  const denied = await sar.create(
    body("authorization.k8s.io/v1", "SubjectAccessReview", {
      user: ro.username,
      groups: ro.groups,
      resourceAttributes: { namespace: "sample", verb: "delete", resource: "pods", name: "x" },
    }),
    ctx(adminUser),
  );
  assert.deepEqual(denied.status, { allowed: false });
  await assert.rejects(
    sar.create(
      body("authorization.k8s.io/v1", "SubjectAccessReview", { resourceAttributes: { verb: "get" } }),
      ctx(adminUser),
    ),
    /at least one of user or group must be specified/,
  );

  const lsar = get("authorization.k8s.io", "localsubjectaccessreviews");
  const local = await lsar.create(
    body("authorization.k8s.io/v1", "LocalSubjectAccessReview", {
      user: ro.username,
      groups: ro.groups,
      resourceAttributes: { namespace: "sample", verb: "list", resource: "pods" },
    }),
    ctx(adminUser, "sample"),
  );
  assert.equal((local.status as { allowed: boolean }).allowed, true);
  await assert.rejects(
    lsar.create(
      body("authorization.k8s.io/v1", "LocalSubjectAccessReview", {
        user: "x",
        resourceAttributes: { namespace: "other", verb: "list", resource: "pods" },
      }),
      ctx(adminUser, "sample"),
    ),
    (err: unknown) => isApiError(err, 400) && /must match namespace: sample/.test(err.message),
  );
});

test("SelfSubjectRulesReview lists what the caller may do in a namespace", async (t) => {
  const { get, ro } = await setup(t);
  const review = await get("authorization.k8s.io", "selfsubjectrulesreviews").create(
    body("authorization.k8s.io/v1", "SelfSubjectRulesReview", { namespace: "sample" }),
    ctx(ro),
  );
  const status = review.status as { resourceRules: unknown[]; nonResourceRules: unknown[]; incomplete: boolean };
  assert.equal(status.incomplete, false);
  assert.ok(
    status.resourceRules.some(
      (r) => JSON.stringify(r) === JSON.stringify({ verbs: ["get", "list"], apiGroups: [""], resources: ["pods"] }),
    ),
  );
  assert.ok(status.nonResourceRules.length > 0);
});

test("TokenReview returns the user, or the error, in status", async (t) => {
  const { get, tokens, sa } = await setup(t);
  const tr = get("authentication.k8s.io", "tokenreviews");
  const token = tokens.issue({
    namespace: "sample",
    serviceAccount: { name: "ro", uid: sa.metadata.uid ?? "" },
    audiences: ["istio-ca"],
  }).token;
  const good = await tr.create(
    body("authentication.k8s.io/v1", "TokenReview", { token, audiences: ["istio-ca"] }),
    ctx(adminUser),
  );
  assert.equal(good.kind, "TokenReview");
  const status = good.status as { authenticated: boolean; user: UserInfo; audiences: string[] };
  assert.equal(status.authenticated, true);
  assert.equal(status.user.username, "system:serviceaccount:sample:ro");
  assert.equal(status.user.uid, sa.metadata.uid);
  assert.deepEqual(status.audiences, ["istio-ca"]);

  const bad = await tr.create(body("authentication.k8s.io/v1", "TokenReview", { token: "garbage" }), ctx(adminUser));
  assert.deepEqual(bad.status, { user: {}, error: "[invalid bearer token, token lookup failed]" });
  await assert.rejects(tr.create(body("authentication.k8s.io/v1", "TokenReview", {}), ctx(adminUser)), (err: unknown) =>
    isApiError(err, 400),
  );
});

test("TokenRequest issues bound tokens with Kubernetes' defaults and checks", async (t) => {
  const { get, authenticator, pod, client } = await setup(t);
  const tr = get("", "serviceaccounts", "token");
  const request = (spec: Record<string, unknown>, name = "ro") =>
    tr.create(body("authentication.k8s.io/v1", "TokenRequest", spec), ctx(adminUser, "sample", name));

  const plain = await request({});
  const spec = plain.spec as { audiences: string[]; expirationSeconds: number };
  assert.deepEqual(spec.audiences, ["https://kubernetes.default.svc.cluster.local"]);
  assert.equal(spec.expirationSeconds, 3600);
  const status = plain.status as { token: string; expirationTimestamp: string };
  assert.match(status.expirationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const exp = Date.parse(status.expirationTimestamp);
  assert.ok(Math.abs(exp - (Date.now() + 3600_000)) < 5_000);
  assert.equal((await authenticator.authenticate(status.token))?.username, "system:serviceaccount:sample:ro");

  const bound = await request({
    audiences: ["istio-ca"],
    expirationSeconds: 7200,
    boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "ro-pod" },
  });
  assert.deepEqual((bound.spec as { boundObjectRef: unknown }).boundObjectRef, {
    kind: "Pod",
    apiVersion: "v1",
    name: "ro-pod",
    uid: pod.metadata.uid,
  });
  const boundToken = (bound.status as { token: string }).token;
  const review = await authenticator.review(boundToken, ["istio-ca"]);
  assert.ok(review.authenticated);
  assert.deepEqual(review.user.extra?.["authentication.kubernetes.io/pod-name"], ["ro-pod"]);
  await client.delete(Resources.pods, "sample", "ro-pod");
  assert.equal((await authenticator.review(boundToken, ["istio-ca"])).authenticated, false);

  await assert.rejects(request({ expirationSeconds: 10 }), (err: unknown) => {
    assert.ok(isApiError(err, 422));
    assert.equal(
      err.message,
      'TokenRequest.authentication.k8s.io "ro" is invalid: spec.expirationSeconds: Invalid value: 10: may not specify a duration less than 10 minutes',
    );
    return true;
  });
  await assert.rejects(request({}, "missing"), (err: unknown) => isApiError(err, 404));
  await assert.rejects(
    request({ boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "default-pod" } }),
    (err: unknown) => isApiError(err, 400) && /different serviceaccount/.test(err.message),
  );
  await assert.rejects(
    request({ boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "default-pod", uid: "wrong" } }, "default"),
    (err: unknown) => isApiError(err, 409),
  );
});
