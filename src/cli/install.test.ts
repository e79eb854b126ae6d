import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startTestApiServer, type TestApiServer } from "../devcluster/apiserver/http/testing.js";
import { loadKubeConfig } from "../kube/index.js";
import { envFrom } from "../base/index.js";
import { RestKubeApi, httpStatusOf } from "../ca/index.js";
import { install, main, manifestsYaml, verifyInstall, diagnoseIstiod, uninstall } from "./install.js";
import { renderManifests } from "./manifests.js";
import { type InstallValues, parseIstioOperator } from "./operator.js";

const TESTDATA = fileURLToPath(new URL("./testdata/", import.meta.url));
const read = (name: string) => readFileSync(`${TESTDATA}${name}`, "utf8");

function assertGolden(name: string, actual: string): void {
  const path = `${TESTDATA}${name}`;
  // UPDATE_GOLDEN=1 rewrites the file; review the diff like any code change.
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, actual);
  assert.ok(existsSync(path), `${name} is missing; run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, readFileSync(path, "utf8"), `${name} differs; rerun with UPDATE_GOLDEN=1 if intended`);
}

function values(file: string, sets: string[] = []): InstallValues {
  const r = parseIstioOperator(read(file), { file, sets, defaultTag: "0.1.0" });
  assert.ok(r.ok, r.ok ? "" : r.reasons.join("\n"));
  return r.value;
}

describe("manifests rendered from the guide's IstioOperator files (golden)", () => {
  for (const file of ["cluster1.yaml", "cluster2.yaml"]) {
    it(file, () => assertGolden(`${file}.manifests`, manifestsYaml(renderManifests(values(file)))));
  }

  it("carries the guide's values where istiod and the injector read them", () => {
    const objs = renderManifests(values("cluster2.yaml")).flatMap((c) => c.objects);
    const deploy = objs.find((o) => o.kind === "Deployment") as unknown as {
      spec: { template: { spec: { containers: { image: string; env: { name: string; value?: string }[] }[] } } };
    };
    const container = deploy.spec.template.spec.containers[0];
    assert.equal(container?.image, "docker.io/isthmus/pilot:0.1.0");
    assert.equal(container?.env.find((e) => e.name === "CLUSTER_ID")?.value, "cluster2");
    const injector = objs.find((o) => o.metadata.name === "istio-sidecar-injector" && o.kind === "ConfigMap");
    assert.ok(injector);
    const injected = JSON.parse((injector.data as { values: string }).values) as Record<string, string>;
    assert.deepEqual([injected.clusterId, injected.network, injected.meshId], ["cluster2", "network1", "mesh1"]);
  });

  it("--set overrides the file, typed by the field", () => {
    const v = values("cluster1.yaml", [
      "values.global.network=network2",
      "meshConfig.trustDomain=example.org",
      "hub=registry.local/me",
    ]);
    assert.equal(v.network, "network2");
    assert.equal(v.trustDomain, "example.org");
    assert.equal(v.hub, "registry.local/me");
    // A number given to a string field by --set stays the string the user typed.
    assert.equal(values("cluster1.yaml", ["values.global.network=5"]).network, "5");
  });

  it("defaults: cluster ID Kubernetes, no network, trust domain cluster.local", () => {
    const r = parseIstioOperator("", { file: "(none)", defaultTag: "0.1.0" });
    assert.ok(r.ok);
    assert.deepEqual(
      [r.value.clusterId, r.value.network, r.value.trustDomain, r.value.meshId],
      ["Kubernetes", "", "cluster.local", ""],
    );
  });
});

describe("bad IstioOperator files: every problem, with its path and the fix", () => {
  const cases: [string, RegExp[]][] = [
    ["bad-typo.yaml", [/^spec\.values\.global\.meshId: unknown field; did you mean "meshID"\?/]],
    [
      "bad-network-number.yaml",
      [/^spec\.values\.global\.network: expected a string .*got the number 5; quote it: network: "5"$/],
    ],
    ["bad-not-yaml.txt", [/^bad-not-yaml\.txt: not valid YAML: .*; fix the syntax/]],
    [
      "bad-many.yaml",
      [
        /^spec\.profile: expected one of default, minimal, got the string "demo"$/,
        /^spec\.tag: expected a string .*got the number 1\.24; quote it: tag: "1\.24"$/,
        /^spec\.meshConfig\.trustDomian: unknown field; did you mean "trustDomain"\?/,
        /^spec\.values\.global\.network: expected a string/,
      ],
    ],
  ];
  for (const [file, expected] of cases) {
    it(file, () => {
      const r = parseIstioOperator(read(file), { file, defaultTag: "0.1.0" });
      assert.equal(r.ok, false);
      const reasons = r.ok ? [] : r.reasons;
      assert.equal(reasons.length, expected.length, reasons.join("\n"));
      expected.forEach((re, i) => {
        assert.match(reasons[i] ?? "", re);
      });
    });
  }
});

async function server(t: {
  after: (fn: () => Promise<void>) => void;
}): Promise<{ s: TestApiServer; kubeconfig: string; api: RestKubeApi }> {
  const s = await startTestApiServer();
  t.after(() => s.close());
  const kubeconfig = await s.writeKubeconfig();
  const api = new RestKubeApi(loadKubeConfig({ kubeconfigPath: kubeconfig, env: envFrom({}) }));
  return { s, kubeconfig, api };
}

const nsRef = { group: "", version: "v1", resource: "namespaces" };

describe("install against a local API server (HTTPS, kubeconfig, RBAC)", () => {
  it("a bad file exits non-zero and applies nothing", async (t) => {
    const { kubeconfig, api } = await server(t);
    for (const file of ["bad-typo.yaml", "bad-network-number.yaml", "bad-not-yaml.txt"]) {
      const code = await main([
        "-f",
        `${TESTDATA}${file}`,
        "--kubeconfig",
        kubeconfig,
        "-y",
        "--readiness-timeout",
        "1s",
      ]);
      assert.equal(code, 1, file);
    }
    await assert.rejects(api.get(nsRef, undefined, "istio-system"), (err) => httpStatusOf(err) === 404);
  });

  it("applies everything, changes nothing on a re-run, and only what differs after a change", async (t) => {
    const { api } = await server(t);
    const lines: string[] = [];
    const first = await install({
      api,
      values: values("cluster1.yaml"),
      print: (l) => lines.push(l),
      readinessTimeoutMs: 0,
    });
    assert.ok(first.ok);
    assert.deepEqual(lines, ["✔ Istio core installed ⛵️", "✔ Istiod installed 🧠", "✔ Installation complete"]);
    assert.ok([...first.outcomes.values()].every((o) => o === "created"));
    assert.equal(first.outcomes.size, renderManifests(values("cluster1.yaml")).flatMap((c) => c.objects).length);

    const again = await install({ api, values: values("cluster1.yaml"), print: () => {}, readinessTimeoutMs: 0 });
    const changed = [...again.outcomes].filter(([, o]) => o !== "unchanged");
    assert.deepEqual(changed, []);

    const other = await install({
      api,
      values: values("cluster1.yaml", ["values.global.network=network2"]),
      print: () => {},
      readinessTimeoutMs: 0,
    });
    const changedNow = [...other.outcomes].filter(([, o]) => o !== "unchanged").map(([k]) => k);
    assert.deepEqual(changedNow, ["ConfigMap/istio-system/istio-sidecar-injector"]);

    const verified = await verifyInstall(api, values("cluster1.yaml", ["values.global.network=network2"]));
    assert.deepEqual(verified.problems, ["no istiod pod is Ready in istio-system"]);

    const removed: string[] = [];
    await uninstall(api, values("cluster1.yaml"), true, (l) => removed.push(l));
    assert.ok(removed.includes("✔ Removed Deployment/istio-system/istiod."));
    const after = await verifyInstall(api, values("cluster1.yaml"));
    assert.ok(after.problems.some((p) => /Deployment: istiod.istio-system is missing/.test(p)));
  });

  it("keeps a caBundle the control plane patched in", async (t) => {
    const { api } = await server(t);
    await install({ api, values: values("cluster1.yaml"), print: () => {}, readinessTimeoutMs: 0 });
    const ref = { group: "admissionregistration.k8s.io", version: "v1", resource: "mutatingwebhookconfigurations" };
    const w = await api.get(ref, undefined, "istio-sidecar-injector");
    const hooks = w.webhooks as { clientConfig: Record<string, unknown> }[];
    for (const h of hooks) h.clientConfig.caBundle = Buffer.from("ca").toString("base64");
    await api.update(ref, w);
    const r = await install({
      api,
      values: values("cluster1.yaml", ["values.global.meshID=mesh2"]),
      print: () => {},
      readinessTimeoutMs: 0,
    });
    assert.equal(r.outcomes.get("MutatingWebhookConfiguration/istio-sidecar-injector"), "unchanged");
    const after = await api.get(ref, undefined, "istio-sidecar-injector");
    assert.equal(
      (after.webhooks as { clientConfig: { caBundle?: string } }[])[0]?.clientConfig.caBundle,
      Buffer.from("ca").toString("base64"),
    );
  });

  it("when istiod is not Ready in time, says why: the pod's state and events", async (t) => {
    const { s, api } = await server(t);
    const lines: string[] = [];
    // No controllers run here, so we play the ReplicaSet controller and the kubelet: a crashing istiod pod.
    const podsRef = { group: "", version: "v1", resource: "pods" };
    await api.create(nsRef, { apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } });
    const pod = await api.create(podsRef, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "istiod-5d8f7b9c4-abcde", namespace: "istio-system", labels: { app: "istiod" } },
      spec: { containers: [{ name: "discovery", image: "docker.io/isthmus/pilot:0.1.0" }] },
    });
    const client = s.api.client();
    await client.update(
      podsRef,
      {
        ...pod,
        status: {
          phase: "Running",
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "ContainersNotReady",
              message: "containers with unready status: [discovery]",
            },
          ],
          containerStatuses: [
            {
              name: "discovery",
              ready: false,
              restartCount: 4,
              state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s restarting failed container" } },
            },
          ],
        },
      },
      { subresource: "status" },
    );
    const r = await install({
      api,
      values: values("cluster1.yaml"),
      print: (l) => lines.push(l),
      readinessTimeoutMs: 1200,
      logs: async () => "error: CLUSTER_ID is not set\n",
    });
    assert.equal(r.ok, false);
    const text = lines.join("\n");
    assert.match(text, /✘ Istiod was not Ready within 1s/);
    assert.match(text, /pod istiod-5d8f7b9c4-abcde: phase Running/);
    assert.match(
      text,
      /container discovery: waiting CrashLoopBackOff: back-off 40s restarting failed container, ready=false, restarts=4/,
    );
    assert.match(text, /error: CLUSTER_ID is not set/);
    assert.ok(!text.includes("Installation complete"));
  });

  it("diagnosis without any pod names the missing ReplicaSet work", async (t) => {
    const { api } = await server(t);
    const lines = await diagnoseIstiod(api);
    assert.match(lines[0] ?? "", /no istiod pod exists/);
  });
});
