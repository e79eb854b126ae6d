import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import YAML from "yaml";
import { kubeconfigPath, mergeIntoKubeconfig, removeFromKubeconfig } from "./kubeconfig.js";

const access = (name: string) => ({ name, server: `https://10.200.0.1:6443`, caPem: "CA", token: `t-${name}` });

describe("kubeconfig", () => {
  it("chooses the explicit file, else the first of $KUBECONFIG, else ~/.kube/config", () => {
    assert.equal(kubeconfigPath("/x/cfg", { KUBECONFIG: "/a:/b" }), "/x/cfg");
    assert.equal(kubeconfigPath(undefined, { KUBECONFIG: ":/a:/b" }), "/a");
    assert.equal(kubeconfigPath(undefined, { HOME: "/home/u" }), "/home/u/.kube/config");
  });

  it("adds two clusters side by side, keeps foreign entries, and removes one cleanly", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isthmus-kc-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "config");
    writeFileSync(
      path,
      YAML.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "prod", cluster: { server: "https://prod" } }],
        users: [{ name: "prod", user: { token: "p" } }],
        contexts: [{ name: "prod", context: { cluster: "prod", user: "prod" } }],
        "current-context": "prod",
        preferences: { colors: true },
      }),
    );
    mergeIntoKubeconfig(path, access("cluster1"));
    mergeIntoKubeconfig(path, access("cluster2"));
    mergeIntoKubeconfig(path, { ...access("cluster1"), token: "new" });
    let cfg = YAML.parse(readFileSync(path, "utf8"));
    assert.deepEqual(
      cfg.contexts.map((c: { name: string }) => c.name),
      ["prod", "cluster2", "cluster1"],
    );
    assert.equal(cfg.users.find((u: { name: string }) => u.name === "cluster1").user.token, "new");
    assert.equal(cfg["current-context"], "cluster1");
    assert.deepEqual(cfg.preferences, { colors: true });
    assert.equal(Buffer.from(cfg.clusters[1].cluster["certificate-authority-data"], "base64").toString(), "CA");

    removeFromKubeconfig(path, "cluster1");
    cfg = YAML.parse(readFileSync(path, "utf8"));
    assert.deepEqual(
      cfg.clusters.map((c: { name: string }) => c.name),
      ["prod", "cluster2"],
    );
    assert.equal(cfg["current-context"], "");
  });

  it("refuses to overwrite a file that is not a kubeconfig", (t) => {
    const dir = mkdtempSync(join(tmpdir(), "isthmus-kc-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "config");
    writeFileSync(path, "- just\n- a list\n");
    assert.throws(() => mergeIntoKubeconfig(path, access("c")), /is not a kubeconfig/);
    assert.equal(readFileSync(path, "utf8"), "- just\n- a list\n");
  });
});
