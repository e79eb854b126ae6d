import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { silentLogger } from "../base/index.js";
import { CertificateAuthority } from "../ca/index.js";
import { LocalApi } from "../devcluster/apiserver/index.js";
import type { ObjectApi } from "./apply.js";
import { main as experimental } from "./experimental.js";
import { main as kubeInject } from "./kube-inject.js";
import { fetchClusterz, remoteClusterRows } from "./remote-clusters.js";
import { controlPlaneVersions } from "./version.js";

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "isthmus-cli-test-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe("x ca", () => {
  it("create-root then create-intermediate write Istio's four files, usable as a plug-in CA", async (t) => {
    const dir = await tempDir(t);
    assert.equal(await experimental(["ca", "create-root", "--out-dir", dir]), 0);
    assert.equal((await stat(join(dir, "root-key.pem"))).mode & 0o777, 0o600);
    for (const cluster of ["cluster1", "cluster2"]) {
      const out = join(dir, cluster);
      assert.equal(
        await experimental(["ca", "create-intermediate", "--cluster", cluster, "--root-dir", dir, "--out-dir", out]),
        0,
      );
      const files = {
        "ca-cert.pem": await readFile(join(out, "ca-cert.pem"), "utf8"),
        "ca-key.pem": await readFile(join(out, "ca-key.pem"), "utf8"),
        "root-cert.pem": await readFile(join(out, "root-cert.pem"), "utf8"),
        "cert-chain.pem": await readFile(join(out, "cert-chain.pem"), "utf8"),
      };
      assert.equal(files["root-cert.pem"], await readFile(join(dir, "root-cert.pem"), "utf8"));
      assert.match(new X509Certificate(files["ca-cert.pem"]).subject, new RegExp(`L=${cluster}`));
      const ca = CertificateAuthority.fromFiles(files, "cacerts");
      assert.ok(ca.ok, ca.ok ? "" : ca.reasons.join("; "));
    }
    // Existing keys are never overwritten by accident.
    assert.equal(await experimental(["ca", "create-root", "--out-dir", dir]), 1);
    assert.equal(
      await experimental([
        "ca",
        "create-intermediate",
        "--root-dir",
        join(dir, "nowhere"),
        "--cluster",
        "c3",
        "--out-dir",
        join(dir, "c3"),
      ]),
      1,
    );
  });
});

describe("kube-inject", () => {
  it("-f FILE --offline injects with the given values", async (t) => {
    const dir = await tempDir(t);
    const out = join(dir, "out.yaml");
    const sleep = fileURLToPath(new URL("../inject/testdata/sleep.yaml", import.meta.url));
    const code = await kubeInject([
      "-f",
      sleep,
      "-o",
      out,
      "--offline",
      "--cluster-id",
      "cluster2",
      "--network",
      "network1",
      "--mesh-id",
      "mesh1",
    ]);
    assert.equal(code, 0);
    const docs = YAML.parseAllDocuments(await readFile(out, "utf8")).map(
      (d) =>
        d.toJS() as {
          kind: string;
          spec?: { template?: { spec: { containers: { name: string; env?: { name: string; value?: string }[] }[] } } };
        },
    );
    const deploy = docs.find((d) => d.kind === "Deployment");
    const proxy = deploy?.spec?.template?.spec.containers.find((c) => c.name === "istio-proxy");
    assert.equal(proxy?.env?.find((e) => e.name === "ISTIO_META_CLUSTER_ID")?.value, "cluster2");
  });
});

function localApi(t: { after: (fn: () => Promise<void>) => void }): Promise<ObjectApi> {
  const api = new LocalApi({ serviceCidr: "10.201.252.0/24", clusterName: "cli-test", log: silentLogger });
  t.after(() => api.close());
  return api.start().then(() => api.client());
}

async function istiodPod(api: ObjectApi, name: string, ip: string, image = "docker.io/isthmus/pilot:0.1.0") {
  const podsRef = { group: "", version: "v1", resource: "pods" };
  try {
    await api.create(
      { group: "", version: "v1", resource: "namespaces" },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } },
    );
  } catch {}
  const pod = await api.create(podsRef, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "istio-system", labels: { app: "istiod" } },
    spec: { containers: [{ name: "discovery", image }] },
  });
  await (api as unknown as { update: (r: unknown, o: unknown, opts: unknown) => Promise<unknown> }).update(
    podsRef,
    { ...pod, status: { phase: "Running", podIP: ip } },
    { subresource: "status" },
  );
}

describe("remote-clusters", () => {
  it("reads /debug/clusterz of each running istiod and prints Istio's columns", async (t) => {
    const api = await localApi(t);
    await istiodPod(api, "istiod-7b74b769db-kb4kj", "127.0.0.1");
    const clusterz = [
      { id: "cluster1", secretName: "", syncStatus: "synced" },
      { id: "cluster2", secretName: "istio-system/istio-remote-secret-cluster2", syncStatus: "synced" },
    ];
    const server = createServer((req, res) => {
      if (req.url === "/debug/clusterz")
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(clusterz));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { rows, problems } = await remoteClusterRows(api, fetchClusterz, address);
    assert.deepEqual(problems, []);
    assert.deepEqual(rows, [
      ["cluster1", "", "synced", "istiod-7b74b769db-kb4kj"],
      ["cluster2", "istio-system/istio-remote-secret-cluster2", "synced", "istiod-7b74b769db-kb4kj"],
    ]);
  });

  it("says how to port-forward when istiod cannot be reached, and when none runs", async (t) => {
    const api = await localApi(t);
    const none = await remoteClusterRows(api, fetchClusterz);
    assert.match(none.problems[0] ?? "", /no running istiod pod in istio-system/);
    await istiodPod(api, "istiod-abc", "10.0.0.1");
    const unreachable = await remoteClusterRows(api, async () => {
      throw new Error("connect ETIMEDOUT");
    });
    assert.match(
      unreachable.problems[0] ?? "",
      /cannot reach istiod pod istiod-abc at 10.0.0.1:15014: connect ETIMEDOUT; .*kubectl port-forward -n istio-system istiod-abc 15014.*--istiod-address 127.0.0.1:15014/,
    );
  });
});

describe("version", () => {
  it("reads the control plane's version from the istiod pods' image tags", async (t) => {
    const api = await localApi(t);
    assert.deepEqual(await controlPlaneVersions(api), []);
    await istiodPod(api, "istiod-1", "10.0.0.1", "registry.local/isthmus/pilot:0.2.0");
    assert.deepEqual(await controlPlaneVersions(api), ["0.2.0"]);
  });
});
