import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { type TestContext, test } from "node:test";
import { Resources } from "../api/types.js";
import { obj, pod as podObj, testApi } from "./test-support.js";
import { ServiceAccountTokens } from "./tokens.js";

const rsaPem = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const otherRsaPem = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const ecPem = generateKeyPairSync("ec", { namedCurve: "P-256" })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();

async function setup(t: TestContext, signingKeyPem = rsaPem) {
  const { client } = await testApi(t, { namespaces: ["sample"] });
  const sa = await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "sleep"));
  const pod = await client.create(Resources.pods, podObj("sample", "sleep-1", "sleep"));
  let now = Date.parse("2026-01-01T00:00:00Z");
  const clock = {
    advance: (seconds: number) => {
      now += seconds * 1000;
    },
  };
  const tokens = new ServiceAccountTokens({ signingKeyPem, client, now: () => now });
  const saRef = { name: "sleep", uid: sa.metadata.uid ?? "" };
  return { client, tokens, sa, pod, saRef, clock };
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
}

for (const [alg, pem] of [
  ["RS256", rsaPem],
  ["ES256", ecPem],
] as const) {
  test(`${alg}: a bound token carries Kubernetes' claims and verifies to the service account's user`, async (t) => {
    const { tokens, pod, saRef } = await setup(t, pem);
    const issued = tokens.issue({
      namespace: "sample",
      serviceAccount: saRef,
      audiences: ["istio-ca"],
      expirationSeconds: 3600,
      boundObject: { kind: "Pod", name: "sleep-1", uid: pod.metadata.uid ?? "" },
    });
    const header = JSON.parse(Buffer.from(issued.token.split(".")[0] ?? "", "base64url").toString("utf8"));
    assert.equal(header.alg, alg);
    assert.ok(header.kid);
    const claims = claimsOf(issued.token);
    assert.equal(claims.iss, "https://kubernetes.default.svc.cluster.local");
    assert.equal(claims.sub, "system:serviceaccount:sample:sleep");
    assert.deepEqual(claims.aud, ["istio-ca"]);
    assert.equal(claims.exp, (claims.iat as number) + 3600);
    assert.equal(claims.nbf, claims.iat);
    assert.deepEqual(claims["kubernetes.io"], {
      namespace: "sample",
      serviceaccount: saRef,
      pod: { name: "sleep-1", uid: pod.metadata.uid },
    });
    assert.equal(issued.expirationTimestamp, "2026-01-01T01:00:00Z");

    const v = await tokens.verify(issued.token, ["istio-ca"]);
    assert.ok(v.ok, JSON.stringify(v));
    assert.equal(v.user.username, "system:serviceaccount:sample:sleep");
    assert.equal(v.user.uid, saRef.uid);
    assert.deepEqual(v.user.groups, [
      "system:serviceaccounts",
      "system:serviceaccounts:sample",
      "system:authenticated",
    ]);
    assert.deepEqual(v.user.extra?.["authentication.kubernetes.io/pod-name"], ["sleep-1"]);
    assert.deepEqual(v.audiences, ["istio-ca"]);
  });
}

test("expired tokens, other audiences, another cluster's key and tampered tokens are refused", async (t) => {
  const { tokens, saRef, clock, client } = await setup(t);
  const issued = tokens.issue({ namespace: "sample", serviceAccount: saRef, expirationSeconds: 600 });

  const apiAudience = await tokens.verify(issued.token);
  assert.ok(apiAudience.ok, "no audience requested means the API server's own");
  assert.deepEqual(apiAudience.audiences, ["https://kubernetes.default.svc.cluster.local"]);

  const wrongAud = await tokens.verify(issued.token, ["istio-ca"]);
  assert.deepEqual(wrongAud, {
    ok: false,
    recognized: true,
    reason: `token audiences ["https://kubernetes.default.svc.cluster.local"] is invalid for the target audiences ["istio-ca"]`,
  });

  const other = new ServiceAccountTokens({ signingKeyPem: otherRsaPem, client });
  const foreign = other.issue({ namespace: "sample", serviceAccount: saRef });
  const v = await tokens.verify(foreign.token);
  assert.equal(v.ok, false);
  assert.equal(!v.ok && v.recognized, false);
  assert.match(!v.ok ? v.reason : "", /signature is not from this cluster's signing key/);

  const [h, p, s] = issued.token.split(".");
  const claims = claimsOf(issued.token);
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "system:serviceaccount:kube-system:admin" })).toString("base64url")}.${s}`;
  assert.equal((await tokens.verify(forged)).ok, false);
  const none = `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${p}.`;
  assert.match(JSON.stringify(await tokens.verify(none)), /unexpected signing algorithm/);
  assert.deepEqual(await tokens.verify("not-a-token"), { ok: false, recognized: false, reason: "not a JWT" });

  clock.advance(600 + 30);
  assert.ok((await tokens.verify(issued.token)).ok, "within the 60 s leeway");
  clock.advance(60);
  assert.deepEqual(await tokens.verify(issued.token), {
    ok: false,
    recognized: true,
    reason: "service account token has expired",
  });
});

test("a token dies with its service account, a recreated service account, and its pod", async (t) => {
  const { tokens, saRef, client, pod } = await setup(t);
  const bound = tokens.issue({
    namespace: "sample",
    serviceAccount: saRef,
    boundObject: { kind: "Pod", name: "sleep-1", uid: pod.metadata.uid ?? "" },
  });
  const plain = tokens.issue({ namespace: "sample", serviceAccount: saRef });
  assert.ok((await tokens.verify(bound.token)).ok);

  await client.delete(Resources.pods, "sample", "sleep-1");
  assert.match(JSON.stringify(await tokens.verify(bound.token)), /pod \\"sample\/sleep-1\\" no longer exists/);
  assert.ok((await tokens.verify(plain.token)).ok, "an unbound token does not care about pods");

  await client.delete(Resources.serviceaccounts, "sample", "sleep");
  assert.deepEqual(await tokens.verify(plain.token), {
    ok: false,
    recognized: true,
    reason: `service account "sample/sleep" no longer exists`,
  });
  await client.create(Resources.serviceaccounts, obj("v1", "ServiceAccount", "sample", "sleep"));
  assert.match(JSON.stringify(await tokens.verify(plain.token)), /has been recreated/);
});

test("legacy Secret tokens never expire but need their Secret to hold exactly them", async (t) => {
  const { tokens, saRef, client, clock } = await setup(t);
  const token = tokens.issueLegacy({ namespace: "sample", serviceAccount: saRef, secretName: "sleep-token" });
  assert.equal(claimsOf(token).exp, undefined);
  assert.equal(claimsOf(token).iss, "kubernetes/serviceaccount");
  const secret = await client.create(
    Resources.secrets,
    obj("v1", "Secret", "sample", "sleep-token", {
      type: "kubernetes.io/service-account-token",
      data: { token: Buffer.from(token).toString("base64") },
    }),
  );
  clock.advance(10 * 365 * 86400);
  const v = await tokens.verify(token);
  assert.ok(v.ok, JSON.stringify(v));
  assert.equal(v.user.username, "system:serviceaccount:sample:sleep");
  assert.equal((await tokens.verify(token, ["istio-ca"])).ok, false, "legacy tokens are for the API server only");

  await client.update(Resources.secrets, { ...secret, data: { token: Buffer.from("other").toString("base64") } });
  assert.match(JSON.stringify(await tokens.verify(token)), /does not match/);
  await client.delete(Resources.secrets, "sample", "sleep-token");
  assert.match(JSON.stringify(await tokens.verify(token)), /no longer exists/);
});
