import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { test } from "node:test";
import { Resources } from "../api/types.js";
import { TokenAuthenticator } from "./authenticator.js";
import { obj, testApi } from "./test-support.js";
import { ServiceAccountTokens } from "./tokens.js";

const keyPem = (): string =>
  generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();

test("bearer tokens map to users; anything else is unauthenticated", async (t) => {
  const { client } = await testApi(t, { namespaces: ["sample"] });
  const sa = await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "sleep"));
  const adminToken = randomBytes(32).toString("base64url");
  const tokens = new ServiceAccountTokens({ signingKeyPem: keyPem(), client });
  const auth = new TokenAuthenticator({ adminToken, tokens });
  const saToken = tokens.issue({
    namespace: "sample",
    serviceAccount: { name: "sleep", uid: sa.metadata.uid ?? "" },
  }).token;
  const istioToken = tokens.issue({
    namespace: "sample",
    serviceAccount: { name: "sleep", uid: sa.metadata.uid ?? "" },
    audiences: ["istio-ca"],
  }).token;
  const foreign = new ServiceAccountTokens({ signingKeyPem: keyPem(), client }).issue({
    namespace: "sample",
    serviceAccount: { name: "sleep", uid: sa.metadata.uid ?? "" },
  }).token;

  const table: [string, string | undefined, { username: string; groups: string[] } | undefined][] = [
    ["admin token", adminToken, { username: "kubernetes-admin", groups: ["system:masters", "system:authenticated"] }],
    [
      "service-account token",
      saToken,
      {
        username: "system:serviceaccount:sample:sleep",
        groups: ["system:serviceaccounts", "system:serviceaccounts:sample", "system:authenticated"],
      },
    ],
    ["no token", undefined, undefined],
    ["empty token", "", undefined],
    [
      "admin token with a character changed",
      `${adminToken.slice(0, -1)}${adminToken.endsWith("A") ? "B" : "A"}`,
      undefined,
    ],
    ["admin token prefix", adminToken.slice(0, 20), undefined],
    ["another cluster's token", foreign, undefined],
    ["a token for another audience", istioToken, undefined],
    ["garbage", "a.b.c", undefined],
  ];
  for (const [name, token, want] of table) {
    const got = await auth.authenticate(token);
    assert.deepEqual(got && { username: got.username, groups: got.groups }, want, name);
  }
});

test("TokenReview semantics: audiences, and the admin token only for the API server's audience", async (t) => {
  const { client } = await testApi(t, { namespaces: ["sample"] });
  const sa = await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "sleep"));
  const adminToken = randomBytes(32).toString("base64url");
  const tokens = new ServiceAccountTokens({ signingKeyPem: keyPem(), client });
  const auth = new TokenAuthenticator({ adminToken, tokens });
  const istioToken = tokens.issue({
    namespace: "sample",
    serviceAccount: { name: "sleep", uid: sa.metadata.uid ?? "" },
    audiences: ["istio-ca"],
  }).token;

  const ok = await auth.review(istioToken, ["istio-ca", "other"]);
  assert.ok(ok.authenticated);
  assert.deepEqual(ok.audiences, ["istio-ca"]);
  assert.deepEqual(await auth.review(istioToken, []), {
    authenticated: false,
    error:
      '[invalid bearer token, token audiences ["istio-ca"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]]',
  });
  assert.ok((await auth.review(adminToken)).authenticated);
  assert.equal((await auth.review(adminToken, ["istio-ca"])).authenticated, false);
  assert.deepEqual(await auth.review("nope"), {
    authenticated: false,
    error: "[invalid bearer token, token lookup failed]",
  });
  assert.throws(() => new TokenAuthenticator({ adminToken: "short", tokens }), /at least 32/);
});
