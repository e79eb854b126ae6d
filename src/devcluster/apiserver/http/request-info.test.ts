import assert from "node:assert/strict";
import { test } from "node:test";
import { fieldSelectorExact, parseRequestInfo } from "./request-info.js";

const q = (s = "") => new URLSearchParams(s);

test("resource requests map methods and paths to Kubernetes' verbs and attributes", () => {
  const cases: [string, string, string, Partial<ReturnType<typeof parseRequestInfo>>][] = [
    ["GET", "/api/v1/namespaces/sample/pods", "", { verb: "list", namespace: "sample", resource: "pods", name: "" }],
    ["GET", "/api/v1/namespaces/sample/pods/p1", "", { verb: "get", name: "p1", namedInPath: true }],
    ["GET", "/api/v1/namespaces/sample/pods", "watch=true", { verb: "watch" }],
    ["GET", "/api/v1/watch/namespaces/sample/pods", "", { verb: "watch", namespace: "sample", resource: "pods" }],
    [
      "GET",
      "/api/v1/pods",
      "watch=1&fieldSelector=metadata.name%3Dp1",
      { verb: "watch", name: "p1", namedInPath: false },
    ],
    ["POST", "/api/v1/namespaces/sample/pods", "", { verb: "create" }],
    ["PUT", "/api/v1/namespaces/sample/pods/p1/status", "", { verb: "update", subresource: "status" }],
    [
      "PATCH",
      "/apis/apps/v1/namespaces/s/deployments/d/scale",
      "",
      { verb: "patch", apiGroup: "apps", subresource: "scale" },
    ],
    ["DELETE", "/api/v1/namespaces/sample/configmaps", "", { verb: "deletecollection" }],
    [
      "DELETE",
      "/api/v1/namespaces/sample",
      "",
      { verb: "delete", resource: "namespaces", name: "sample", namespace: "sample" },
    ],
    [
      "PUT",
      "/api/v1/namespaces/sample/finalize",
      "",
      { verb: "update", resource: "namespaces", subresource: "finalize" },
    ],
    ["GET", "/api/v1/namespaces", "", { verb: "list", resource: "namespaces", namespace: "" }],
    [
      "POST",
      "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
      "",
      { verb: "create", apiGroup: "authorization.k8s.io" },
    ],
  ];
  for (const [method, path, query, want] of cases) {
    const got = parseRequestInfo(method, path, q(query));
    assert.equal(got.resourceRequest, true, `${method} ${path}`);
    for (const [k, v] of Object.entries(want)) {
      assert.equal(got[k as keyof typeof got], v, `${method} ${path}?${query}: ${k}`);
    }
  }
});

test("discovery, health and unknown paths are non-resource requests with the lower-cased method as verb", () => {
  for (const path of [
    "/api",
    "/api/v1",
    "/apis",
    "/apis/apps",
    "/apis/apps/v1",
    "/healthz",
    "/openapi/v3/api/v1",
    "/version",
  ]) {
    const got = parseRequestInfo("GET", path, q());
    assert.equal(got.resourceRequest, false, path);
    assert.equal(got.verb, "get");
  }
  assert.equal(parseRequestInfo("GET", "/api/v1/namespaces/a/pods/p/log/extra", q()).resourceRequest, false);
});

test("fieldSelectorExact finds = and == terms only", () => {
  assert.equal(fieldSelectorExact("metadata.name=a,status.phase=Running", "metadata.name"), "a");
  assert.equal(fieldSelectorExact("metadata.name==b", "metadata.name"), "b");
  assert.equal(fieldSelectorExact("metadata.name!=c", "metadata.name"), undefined);
});
