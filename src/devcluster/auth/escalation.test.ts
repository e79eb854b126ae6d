import assert from "node:assert/strict";
import { test } from "node:test";
import type { Admission } from "../api/plugins.js";
import { isApiError, type KubeObject, Resources } from "../api/types.js";
import { internalUser } from "../apiserver/index.js";
import { adminUser } from "./authenticator.js";
import { combineAdmission, RbacEscalationAdmission, ruleCovers, uncoveredRules } from "./escalation.js";
import { bootstrapRbacObjects, liveRbacSource, RbacAuthorizer } from "./rbac.js";
import { createRbacObjects, obj, testApi } from "./test-support.js";
import { serviceAccountUser } from "./tokens.js";

const rbac = "rbac.authorization.k8s.io/v1";
const role = (ns: string, name: string, rules: unknown[]) => obj(rbac, "Role", ns, name, { rules });
const roleBinding = (ns: string, name: string, kind: string, roleName: string, sa: string) =>
  obj(rbac, "RoleBinding", ns, name, {
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name: roleName },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: ns }],
  });

test("rule coverage follows Kubernetes: stars, subresources, resourceNames, URLs", () => {
  const r = (verbs: string[], resources: string[], more: object = {}) => ({
    verbs,
    apiGroups: [""],
    resources,
    ...more,
  });
  assert.ok(ruleCovers(r(["*"], ["*"]), r(["get"], ["pods/log"])));
  assert.ok(ruleCovers(r(["get"], ["*/log"]), r(["get"], ["pods/log"])));
  assert.ok(!ruleCovers(r(["get"], ["pods"]), r(["get"], ["pods/log"])));
  assert.ok(!ruleCovers(r(["get"], ["pods"]), r(["*"], ["pods"])), "a literal * verb needs a * to cover it");
  assert.ok(ruleCovers(r(["get"], ["pods"]), r(["get"], ["pods"], { resourceNames: ["a"] })));
  assert.ok(!ruleCovers(r(["get"], ["pods"], { resourceNames: ["a"] }), r(["get"], ["pods"])));
  assert.ok(
    ruleCovers({ verbs: ["get"], nonResourceURLs: ["/apis/*"] }, { verbs: ["get"], nonResourceURLs: ["/apis/apps"] }),
  );
  assert.deepEqual(uncoveredRules([r(["get", "list"], ["pods"])], [r(["get", "delete"], ["pods"])]), [
    { verbs: ["delete"], apiGroups: [""], resources: ["pods"], resourceNames: [] },
  ]);
});

test("a user may bind or write only the permissions they hold, unless allowed to bind/escalate", async (t) => {
  // LocalApi needs its admission at construction; the authorizer needs LocalApi's client. The
  // namespaces LocalApi creates while starting are not RBAC objects, so nothing is skipped.
  let admission: RbacEscalationAdmission | undefined;
  const escalation: Admission = {
    mutate: async (attrs) => attrs.object,
    validate: async (attrs, c) => admission?.validate(attrs, c),
  };
  const { api, client } = await testApi(t, { namespaces: ["sample"], admission: combineAdmission(escalation) });
  const authorizer = new RbacAuthorizer({ source: liveRbacSource(client) });
  admission = new RbacEscalationAdmission({ authorizer, privilegedUsers: [internalUser.username] });

  const objects: KubeObject[] = [
    ...bootstrapRbacObjects(),
    role("sample", "rbac-writer", [
      { apiGroups: ["rbac.authorization.k8s.io"], resources: ["roles", "rolebindings"], verbs: ["create", "update"] },
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] },
    ]),
    roleBinding("sample", "writer", "Role", "rbac-writer", "writer"),
    role("sample", "pod-reader", [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }]),
    role("sample", "secret-reader", [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }]),
  ];
  await createRbacObjects(client, objects);
  const writer = api.client(serviceAccountUser("sample", "writer", "uid-w"));

  await writer.create(Resources.rolebindings, roleBinding("sample", "ok", "Role", "pod-reader", "other"));
  await writer.create(
    Resources.roles,
    role("sample", "subset", [{ apiGroups: [""], resources: ["pods"], verbs: ["list"] }]),
  );

  await assert.rejects(
    writer.create(Resources.rolebindings, roleBinding("sample", "grab", "ClusterRole", "cluster-admin", "writer")),
    (err: unknown) => {
      assert.ok(isApiError(err, 403));
      assert.match(
        err.message,
        /^rolebindings\.rbac\.authorization\.k8s\.io "grab" is forbidden: user "system:serviceaccount:sample:writer" \(groups=\[.*\]\) is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\["\*"\], Resources:\["\*"\], Verbs:\["\*"\]\}/,
      );
      return true;
    },
  );
  await assert.rejects(
    writer.create(
      Resources.roles,
      role("sample", "more", [{ apiGroups: [""], resources: ["secrets"], verbs: ["get"] }]),
    ),
    /attempting to grant RBAC permissions not currently held:\n\{APIGroups:\[""\], Resources:\["secrets"\], Verbs:\["get"\]\}/,
  );
  await assert.rejects(
    writer.create(Resources.rolebindings, roleBinding("sample", "ghost", "Role", "nope", "writer")),
    /cannot bind to Role "nope": it does not exist/,
  );

  // `bind` on the role allows binding it without holding its permissions.
  await client.create(
    Resources.roles,
    role("sample", "binder", [
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["roles"],
        verbs: ["bind"],
        resourceNames: ["secret-reader"],
      },
    ]),
  );
  await client.create(Resources.rolebindings, roleBinding("sample", "writer-binds", "Role", "binder", "writer"));
  await writer.create(Resources.rolebindings, roleBinding("sample", "bound", "Role", "secret-reader", "other"));

  // system:masters may do anything.
  await api
    .client(adminUser)
    .create(Resources.rolebindings, roleBinding("sample", "admin-grants", "ClusterRole", "cluster-admin", "x"));
});
