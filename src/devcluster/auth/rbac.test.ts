import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import type { RequestAttributes } from "../api/plugins.js";
import { type ApiClient, type KubeObject, Resources, type UserInfo } from "../api/types.js";
import { adminUser } from "./authenticator.js";
import { bootstrapRbacObjects, liveRbacSource, RbacAuthorizer, watchedRbacSource } from "./rbac.js";
import { createRbacObjects, obj, testApi } from "./test-support.js";
import { serviceAccountUser } from "./tokens.js";

const rbac = "rbac.authorization.k8s.io/v1";
const role = (ns: string, name: string, rules: unknown[]) => obj(rbac, "Role", ns, name, { rules });
const clusterRole = (name: string, rules: unknown[], extra: Partial<KubeObject> = {}) =>
  ({ ...obj(rbac, "ClusterRole", undefined, name, { rules }), ...extra }) as KubeObject;
const binding = (
  kind: "RoleBinding" | "ClusterRoleBinding",
  ns: string | undefined,
  name: string,
  roleRef: [string, string],
  subjects: unknown[],
) =>
  obj(rbac, kind, ns, name, {
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleRef[0], name: roleRef[1] },
    subjects,
  });

async function cluster(t: TestContext): Promise<{ authorizer: RbacAuthorizer; client: ApiClient }> {
  const { client } = await testApi(t, { namespaces: ["sample", "other", "tools"] });
  const objects: KubeObject[] = [
    ...bootstrapRbacObjects(),
    role("sample", "reader", [
      { apiGroups: [""], resources: ["pods", "configmaps", "pods/log"], verbs: ["get", "list", "watch"] },
    ]),
    binding("RoleBinding", "sample", "ro-reader", ["Role", "reader"], [{ kind: "ServiceAccount", name: "ro" }]),
    role("sample", "named", [
      { apiGroups: [""], resources: ["configmaps"], resourceNames: ["app-config"], verbs: ["get", "update"] },
    ]),
    binding(
      "RoleBinding",
      "sample",
      "alice-named",
      ["Role", "named"],
      [{ kind: "User", name: "alice", apiGroup: "rbac.authorization.k8s.io" }],
    ),
    clusterRole("pod-reader", [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }]),
    binding(
      "ClusterRoleBinding",
      undefined,
      "team-reads-pods",
      ["ClusterRole", "pod-reader"],
      [{ kind: "Group", name: "team" }],
    ),
    clusterRole("secret-admin", [{ apiGroups: [""], resources: ["secrets"], verbs: ["*"] }]),
    binding("RoleBinding", "other", "bob-secrets", ["ClusterRole", "secret-admin"], [{ kind: "User", name: "bob" }]),
    clusterRole("scaler", [
      { apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["update"] },
      { apiGroups: ["*"], resources: ["*/status"], verbs: ["get"] },
    ]),
    binding(
      "ClusterRoleBinding",
      undefined,
      "ci-scales",
      ["ClusterRole", "scaler"],
      [{ kind: "ServiceAccount", name: "ci", namespace: "tools" }],
    ),
    clusterRole("aggregate", [], {
      aggregationRule: { clusterRoleSelectors: [{ matchLabels: { "example.com/aggregate-to-lease": "true" } }] },
    }),
    {
      ...clusterRole("lease-part", [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get"] }]),
      metadata: { name: "lease-part", labels: { "example.com/aggregate-to-lease": "true" } },
    },
    binding(
      "ClusterRoleBinding",
      undefined,
      "dave-aggregate",
      ["ClusterRole", "aggregate"],
      [{ kind: "User", name: "dave" }],
    ),
    binding("RoleBinding", "sample", "dangling", ["Role", "nope"], [{ kind: "User", name: "carol" }]),
  ];
  await createRbacObjects(client, objects);
  return { authorizer: new RbacAuthorizer({ source: liveRbacSource(client) }), client };
}

const user = (username: string, groups: string[] = ["system:authenticated"]): UserInfo => ({ username, groups });
const ro = serviceAccountUser("sample", "ro", "uid-ro");

function res(
  u: UserInfo,
  verb: string,
  resource: string,
  ns: string,
  more: Partial<RequestAttributes> = {},
): RequestAttributes {
  const [r, sub] = resource.split("/");
  return {
    user: u,
    verb,
    resourceRequest: true,
    path: "",
    apiGroup: "",
    apiVersion: "v1",
    resource: r ?? "",
    subresource: sub ?? "",
    namespace: ns,
    name: "",
    ...more,
  };
}
function nonRes(u: UserInfo, verb: string, path: string): RequestAttributes {
  return { ...res(u, verb, "", ""), resourceRequest: false, path, apiVersion: "" };
}

const cases: [string, RequestAttributes, boolean, string][] = [
  ["admin (system:masters) may do anything", res(adminUser, "delete", "nodes", ""), true, ""],
  [
    "read-only SA may list pods in its namespace",
    res(ro, "list", "pods", "sample"),
    true,
    'RBAC: allowed by RoleBinding "ro-reader/sample" of Role "reader" to ServiceAccount "ro/sample"',
  ],
  ["read-only SA may not create pods", res(ro, "create", "pods", "sample"), false, ""],
  ["read-only SA may not delete a configmap", res(ro, "delete", "configmaps", "sample", { name: "x" }), false, ""],
  ["read-only SA may not list pods elsewhere", res(ro, "list", "pods", "other"), false, ""],
  ["read-only SA may not list pods cluster-wide", res(ro, "list", "pods", ""), false, ""],
  [
    "a subresource is granted only when named",
    res(ro, "get", "pods/log", "sample", { name: "p" }),
    true,
    'RBAC: allowed by RoleBinding "ro-reader/sample" of Role "reader" to ServiceAccount "ro/sample"',
  ],
  ["pods does not grant pods/exec", res(ro, "get", "pods/exec", "sample", { name: "p" }), false, ""],
  [
    "resourceNames allow the named object",
    res(user("alice"), "update", "configmaps", "sample", { name: "app-config" }),
    true,
    'RBAC: allowed by RoleBinding "alice-named/sample" of Role "named" to User "alice"',
  ],
  [
    "resourceNames refuse other names",
    res(user("alice"), "update", "configmaps", "sample", { name: "other" }),
    false,
    "",
  ],
  ["resourceNames refuse list (no name)", res(user("alice"), "list", "configmaps", "sample"), false, ""],
  [
    "a ClusterRoleBinding grants in every namespace",
    res(user("erin", ["team", "system:authenticated"]), "watch", "pods", "kube-system"),
    true,
    'RBAC: allowed by ClusterRoleBinding "team-reads-pods" of ClusterRole "pod-reader" to Group "team"',
  ],
  [
    "a ClusterRoleBinding grants at the cluster scope",
    res(user("erin", ["team"]), "list", "pods", ""),
    true,
    'RBAC: allowed by ClusterRoleBinding "team-reads-pods" of ClusterRole "pod-reader" to Group "team"',
  ],
  [
    "a RoleBinding to a ClusterRole grants in its namespace",
    res(user("bob"), "create", "secrets", "other"),
    true,
    'RBAC: allowed by RoleBinding "bob-secrets/other" of ClusterRole "secret-admin" to User "bob"',
  ],
  ["... and nowhere else", res(user("bob"), "create", "secrets", "sample"), false, ""],
  ["... nor at the cluster scope", res(user("bob"), "list", "secrets", ""), false, ""],
  [
    "deployments/scale",
    res(serviceAccountUser("tools", "ci", "u"), "update", "deployments/scale", "sample", {
      apiGroup: "apps",
      name: "d",
    }),
    true,
    'RBAC: allowed by ClusterRoleBinding "ci-scales" of ClusterRole "scaler" to ServiceAccount "ci/tools"',
  ],
  [
    "deployments/scale does not grant deployments",
    res(serviceAccountUser("tools", "ci", "u"), "update", "deployments", "sample", { apiGroup: "apps" }),
    false,
    "",
  ],
  [
    "*/status matches any status subresource",
    res(serviceAccountUser("tools", "ci", "u"), "get", "pods/status", "x", { name: "p" }),
    true,
    'RBAC: allowed by ClusterRoleBinding "ci-scales" of ClusterRole "scaler" to ServiceAccount "ci/tools"',
  ],
  [
    "*/status does not match the resource itself",
    res(serviceAccountUser("tools", "ci", "u"), "get", "pods", "x", { name: "p" }),
    false,
    "",
  ],
  [
    "a SA subject binds only its own namespace's SA",
    res(serviceAccountUser("other", "ci", "u"), "get", "pods/status", "x", { name: "p" }),
    false,
    "",
  ],
  [
    "aggregated ClusterRoles pick up labelled roles",
    res(user("dave"), "get", "leases", "kube-system", { apiGroup: "coordination.k8s.io", name: "l" }),
    true,
    'RBAC: allowed by ClusterRoleBinding "dave-aggregate" of ClusterRole "aggregate" to User "dave"',
  ],
  [
    "every authenticated user may discover",
    nonRes(ro, "get", "/apis/apps/v1"),
    true,
    'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"',
  ],
  [
    "... and read /version",
    nonRes(ro, "get", "/version"),
    true,
    'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated"',
  ],
  ["... but not post to it", nonRes(ro, "post", "/version"), false, ""],
  ["... nor read /metrics", nonRes(ro, "get", "/metrics"), false, ""],
  [
    "every authenticated user may ask what it can do",
    res(ro, "create", "selfsubjectaccessreviews", "", { apiGroup: "authorization.k8s.io" }),
    true,
    'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
  ],
  [
    "a binding to a missing role is reported when nothing else allows",
    res(user("carol"), "get", "pods", "sample", { name: "p" }),
    false,
    'RBAC: role.rbac.authorization.k8s.io "nope" not found',
  ],
  ["an unknown user gets nothing", res(user("mallory", []), "get", "pods", "sample"), false, ""],
];

test("RBAC decisions and reasons", async (t) => {
  const { authorizer } = await cluster(t);
  for (const [name, attrs, allowed, reason] of cases) {
    assert.deepEqual(await authorizer.authorize(attrs), { allowed, reason }, name);
  }
});

test("a watched RBAC source gives the same decisions and follows changes", async (t) => {
  const { client } = await cluster(t);
  const ac = new AbortController();
  t.after(() => ac.abort());
  const source = watchedRbacSource(client);
  source.start(ac.signal);
  await source.whenSynced();
  const authorizer = new RbacAuthorizer({ source });
  for (const [name, attrs, allowed, reason] of cases) {
    assert.deepEqual(await authorizer.authorize(attrs), { allowed, reason }, name);
  }

  const write = res(ro, "create", "secrets", "sample");
  assert.equal((await authorizer.authorize(write)).allowed, false);
  let changed = source.nextChange();
  await client.create(
    Resources.rolebindings,
    binding(
      "RoleBinding",
      "sample",
      "ro-secrets",
      ["ClusterRole", "secret-admin"],
      [{ kind: "ServiceAccount", name: "ro" }],
    ),
  );
  await changed;
  assert.deepEqual(await authorizer.authorize(write), {
    allowed: true,
    reason:
      'RBAC: allowed by RoleBinding "ro-secrets/sample" of ClusterRole "secret-admin" to ServiceAccount "ro/sample"',
  });
  changed = source.nextChange();
  await client.delete(Resources.clusterroles, undefined, "secret-admin");
  await changed;
  assert.deepEqual(await authorizer.authorize(write), {
    allowed: false,
    reason: 'RBAC: clusterrole.rbac.authorization.k8s.io "secret-admin" not found',
  });
});

test("bootstrap objects: cluster-admin bound to system:masters, roles before their bindings", () => {
  const objects = bootstrapRbacObjects();
  const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  for (const n of ["cluster-admin", "system:discovery", "system:basic-user", "system:public-info-viewer"]) {
    assert.ok(names.indexOf(`ClusterRole/${n}`) < names.indexOf(`ClusterRoleBinding/${n}`), n);
  }
  const crb = objects.find((o) => o.kind === "ClusterRoleBinding" && o.metadata.name === "cluster-admin");
  assert.deepEqual(crb?.subjects, [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:masters" }]);
});
