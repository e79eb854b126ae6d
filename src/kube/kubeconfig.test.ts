import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, envFrom } from "../base/index.js";
import { kubeConfigFromRemoteSecret, loadKubeConfig } from "./kubeconfig.js";

const kubeconfig = (user: string, server = "https://10.200.0.1:6443") => `apiVersion: v1
kind: Config
clusters:
- name: cluster2
  cluster:
    server: ${server}
    certificate-authority-data: ${Buffer.from("not really a CA").toString("base64")}
contexts:
- name: cluster2
  context: {cluster: cluster2, user: cluster2}
current-context: cluster2
users:
- name: cluster2
  user:
${user}
`;

const check = (text: string, allow?: Set<string>) =>
  kubeConfigFromRemoteSecret({
    secretName: "istio-system/istio-remote-secret-cluster2",
    key: "cluster2",
    kubeconfig: text,
    ...(allow ? { allow } : {}),
  });

describe("kubeConfigFromRemoteSecret", () => {
  it("accepts a bearer-token kubeconfig as create-remote-secret makes it", () => {
    const r = check(kubeconfig("    token: abc"));
    assert.ok(r.ok);
    assert.equal(r.value.getCurrentCluster()?.server, "https://10.200.0.1:6443");
  });

  it("accepts the oidc auth provider and inline client key and certificate data", () => {
    assert.ok(check(kubeconfig("    auth-provider: {name: oidc, config: {id-token: x}}")).ok);
    assert.ok(check(kubeconfig("    client-key-data: a2V5\n    client-certificate-data: Y2VydA==")).ok);
  });

  const refused: [string, string, RegExp][] = [
    [
      "an exec plugin",
      "    exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}",
      /exec credential plugin.*INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS=exec/,
    ],
    ["the gcp auth provider", "    auth-provider: {name: gcp}", /auth provider "gcp"/],
    ["a client key file", "    client-key: /etc/shadow\n    client-certificate-data: Y2VydA==", /client key file/],
    ["a client certificate file", "    client-certificate: /tmp/c.pem", /client certificate file/],
    ["a token file", "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token", /token file/],
  ];
  for (const [what, user, re] of refused) {
    it(`refuses ${what}, naming the secret and key`, () => {
      const r = check(kubeconfig(user));
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.match(r.reasons[0] ?? "", /^secret istio-system\/istio-remote-secret-cluster2 key "cluster2": /);
      assert.match(r.reasons[0] ?? "", re);
    });
  }

  it("allows a refused option when PILOT_INSECURE_MULTICLUSTER_KUBECONFIG_OPTIONS lists it", () => {
    assert.ok(check(kubeconfig("    exec: {command: aws}"), new Set(["exec"])).ok);
  });

  const broken: [string, string, RegExp][] = [
    ["text that is not YAML", "{{{: [", /not YAML/],
    ["YAML that is not a kubeconfig", "hello: world", /not a kubeconfig/],
    ["no current-context", kubeconfig("    token: a").replace("current-context: cluster2", ""), /current-context/],
    ["an http server without skip-verify", kubeconfig("    token: a", "http://10.200.0.1:8080"), /plain HTTP/],
  ];
  for (const [what, text, re] of broken) {
    it(`reports ${what}`, () => {
      const r = check(text);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reasons.join(), re);
    });
  }
});

describe("loadKubeConfig", () => {
  const file = (name: string, server: string, current = true) => `apiVersion: v1
kind: Config
clusters: [{name: ${name}, cluster: {server: "${server}"}}]
users: [{name: ${name}, user: {token: t}}]
contexts: [{name: ${name}, context: {cluster: ${name}, user: ${name}}}]
${current ? `current-context: ${name}` : ""}
`;

  it("merges every $KUBECONFIG file as kubectl does: first definition and first current-context win", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "isthmus-kc-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, "a"), file("cluster1", "https://10.0.0.1:6443"));
    await writeFile(join(dir, "b"), `${file("cluster2", "https://10.0.0.2:6443")}`);
    await writeFile(join(dir, "c"), file("cluster1", "https://10.9.9.9:6443"));
    const list = [join(dir, "missing"), join(dir, "a"), join(dir, "b"), join(dir, "c")].join(":");
    const kc = loadKubeConfig({ env: envFrom({ KUBECONFIG: list }) });
    assert.equal(kc.getCurrentContext(), "cluster1");
    assert.equal(kc.getCurrentCluster()?.server, "https://10.0.0.1:6443");
    const other = loadKubeConfig({ env: envFrom({ KUBECONFIG: list }), context: "cluster2" });
    assert.equal(other.getCurrentCluster()?.server, "https://10.0.0.2:6443");
  });

  it("names the file and the known contexts when a context is missing", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "isthmus-kc-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, "a"), file("cluster1", "https://10.0.0.1:6443"));
    assert.throws(
      () => loadKubeConfig({ env: envFrom({}), kubeconfigPath: join(dir, "a"), context: "nope" }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /context "nope" is not in kubeconfig .*\/a; known contexts: cluster1/.test(err.message),
    );
    assert.throws(() => loadKubeConfig({ env: envFrom({}), kubeconfigPath: join(dir, "none") }), /does not exist/);
  });
});
