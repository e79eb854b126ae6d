import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import {
  type AdmissionReview,
  createInjectionHandler,
  defaultInjectValues,
  type InjectContext,
  injectSidecar,
  injectYaml,
  type JsonPatchOp,
  type Pod,
  reviewAdmission,
  SKIP_ANNOTATION,
  STATUS_ANNOTATION,
  valuesForPath,
} from "./index.js";

const TESTDATA = fileURLToPath(new URL("./testdata/", import.meta.url));

/** The guide's cluster1: meshID mesh1, clusterName cluster1, network network1. */
const CLUSTER1: InjectContext = {
  ...defaultInjectValues("docker.io/isthmus", "0.1.0"),
  clusterId: "cluster1",
  network: "network1",
  meshId: "mesh1",
};

function assertGolden(name: string, actual: string): void {
  const path = `${TESTDATA}${name}`;
  // UPDATE_GOLDEN=1 rewrites the file; review the diff like any code change.
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(path, actual);
  assert.ok(existsSync(path), `${name} is missing; run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(actual, readFileSync(path, "utf8"), `${name} differs; rerun with UPDATE_GOLDEN=1 if intended`);
}

function loadPod(name: string): Pod {
  return JSON.parse(readFileSync(`${TESTDATA}${name}`, "utf8")) as Pod;
}

describe("kube-inject golden files (the guide's samples)", () => {
  for (const file of ["helloworld.yaml", "sleep.yaml"]) {
    it(file, () => {
      const result = injectYaml(readFileSync(`${TESTDATA}${file}`, "utf8"), CLUSTER1);
      assert.deepEqual(result.warnings, []);
      assertGolden(`${file}.injected`, result.yaml);
    });
  }

  it("injects every Deployment's template and leaves the Service alone", () => {
    const docs = YAML.parseAllDocuments(injectYaml(readFileSync(`${TESTDATA}helloworld.yaml`, "utf8"), CLUSTER1).yaml);
    const objs = docs.map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> });
    assert.deepEqual(
      objs.map((o) => o.kind),
      ["Service", "Deployment", "Deployment"],
    );
    assert.equal(objs[0]?.spec.template, undefined);
    for (const d of objs.slice(1)) {
      const pod = d.spec.template as Pod;
      assert.deepEqual(
        pod.spec.containers.map((c) => c.name),
        ["helloworld", "istio-proxy"],
      );
      assert.equal(pod.metadata?.labels?.["topology.istio.io/network"], "network1");
    }
  });

  it("refuses text that is not YAML, naming the document", () => {
    assert.throws(() => injectYaml("a: b\n---\nkey: [unclosed\n", CLUSTER1), /document 2 is not valid YAML/);
  });
});

describe("injectSidecar", () => {
  const pod = loadPod("pod-from-replicaset.json");

  it("golden: a pod as the ReplicaSet controller creates it", () => {
    const decision = injectSidecar(pod, { ...CLUSTER1, namespaceLabels: { "istio-injection": "enabled" } });
    assert.equal(decision.kind, "inject");
    assertGolden(
      "pod-from-replicaset.json.injected",
      `${JSON.stringify(decision.kind === "inject" ? decision.pod : decision, null, 2)}\n`,
    );
  });

  it("adds what the proxy and the control plane read", () => {
    const decision = injectSidecar(pod, CLUSTER1);
    assert.ok(decision.kind === "inject");
    const out = decision.pod;
    const proxy = out.spec.containers.find((c) => c.name === "istio-proxy");
    assert.ok(proxy);
    const env = new Map(proxy.env?.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    assert.equal(env.get("ISTIO_META_CLUSTER_ID"), "cluster1");
    assert.equal(env.get("ISTIO_META_NETWORK"), "network1");
    assert.equal(env.get("ISTIO_META_MESH_ID"), "mesh1");
    assert.equal(env.get("CA_ADDR"), "istiod.istio-system.svc:15012");
    assert.equal(env.get("ISTIO_META_WORKLOAD_NAME"), "sleep");
    assert.equal(env.get("ISTIO_META_OWNER"), "kubernetes://apis/apps/v1/namespaces/sample/deployments/sleep");
    assert.equal(env.get("POD_NAME"), "metadata.name");
    assert.equal(proxy.image, "docker.io/isthmus/proxyv2:0.1.0");
    assert.deepEqual(proxy.args?.slice(0, 4), ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"]);
    const init = out.spec.initContainers?.find((c) => c.name === "istio-init");
    assert.deepEqual(init?.args, [
      "proxy",
      "init",
      "-p",
      "15001",
      "-z",
      "15006",
      "-u",
      "1337",
      "-m",
      "REDIRECT",
      "-i",
      "*",
      "-x",
      "",
      "-b",
      "*",
      "-d",
      "15090,15021,15020",
    ]);
    const token = out.spec.volumes?.find((v) => v.name === "istio-token") as {
      projected?: { sources: { serviceAccountToken?: { audience: string } }[] };
    };
    assert.equal(token.projected?.sources[0]?.serviceAccountToken?.audience, "istio-ca");
    assert.equal(out.metadata?.labels?.["security.istio.io/tlsMode"], "istio");
    assert.equal(out.metadata?.labels?.["service.istio.io/canonical-name"], "sleep");
    assert.equal(out.metadata?.labels?.["service.istio.io/canonical-revision"], "latest");
    assert.ok(out.metadata?.annotations?.[STATUS_ANNOTATION]);
    // The input is not modified.
    assert.equal(pod.spec.containers.length, 1);
  });

  it("leaves out the network env and label when no network is set", () => {
    const decision = injectSidecar(pod, { ...CLUSTER1, network: "" });
    assert.ok(decision.kind === "inject");
    assert.equal(decision.pod.metadata?.labels?.["topology.istio.io/network"], undefined);
    const names = decision.pod.spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name));
    assert.ok(!names.includes("ISTIO_META_NETWORK"));
  });

  const withAnnotation = (p: Pod, key: string, value: string): Pod => ({
    ...p,
    metadata: { ...p.metadata, annotations: { ...(p.metadata?.annotations ?? {}), [key]: value } },
  });
  const injected = (() => {
    const d = injectSidecar(pod, CLUSTER1);
    assert.ok(d.kind === "inject");
    return d.pod;
  })();
  const skips: [string, Pod, InjectContext, string][] = [
    ["namespace without the label", pod, { ...CLUSTER1, namespaceLabels: {} }, "namespace-not-enabled"],
    [
      "namespace label not 'enabled'",
      pod,
      { ...CLUSTER1, namespaceLabels: { "istio-injection": "disabled" } },
      "namespace-not-enabled",
    ],
    [
      "inject annotation false",
      withAnnotation(pod, "sidecar.istio.io/inject", "false"),
      CLUSTER1,
      "disabled-by-annotation",
    ],
    ["hostNetwork", { ...pod, spec: { ...pod.spec, hostNetwork: true } }, CLUSTER1, "host-network"],
    ["already injected", injected, CLUSTER1, "already-injected"],
  ];
  for (const [name, p, ctx, reason] of skips) {
    it(`skips: ${name}`, () => {
      const d = injectSidecar(p, ctx);
      assert.equal(d.kind, "skip");
      assert.equal(d.kind === "skip" ? d.reason : "", reason);
    });
  }
  it("injects a pod labelled sidecar.istio.io/inject=true outside an enabled namespace", () => {
    const labelled = {
      ...pod,
      metadata: { ...pod.metadata, labels: { ...pod.metadata?.labels, "sidecar.istio.io/inject": "true" } },
    };
    assert.equal(injectSidecar(labelled, { ...CLUSTER1, namespaceLabels: {} }).kind, "inject");
  });
  it("skips a pod labelled sidecar.istio.io/inject=false", () => {
    const labelled = {
      ...pod,
      metadata: { ...pod.metadata, labels: { ...pod.metadata?.labels, "sidecar.istio.io/inject": "false" } },
    };
    const d = injectSidecar(labelled, CLUSTER1);
    assert.equal(d.kind === "skip" ? d.reason : d.kind, "disabled-by-annotation");
  });
  it("injects when the annotation says true in an enabled namespace", () => {
    const d = injectSidecar(withAnnotation(pod, "sidecar.istio.io/inject", "true"), {
      ...CLUSTER1,
      namespaceLabels: { "istio-injection": "enabled" },
    });
    assert.equal(d.kind, "inject");
  });
});

/** Applies RFC 6902 add/replace/remove, as the API server does, to check our patches round-trip. */
function applyPatch(doc: unknown, ops: readonly JsonPatchOp[]): unknown {
  let root = structuredClone(doc);
  for (const op of ops) {
    if (op.path === "") {
      if (op.op === "remove") throw new Error("cannot remove the root");
      root = structuredClone(op.value);
      continue;
    }
    const tokens = op.path
      .slice(1)
      .split("/")
      .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = tokens.pop() ?? "";
    let parent = root as Record<string, unknown> | unknown[];
    for (const t of tokens) {
      const next = Array.isArray(parent) ? parent[Number(t)] : parent[t];
      if (typeof next !== "object" || next === null) throw new Error(`path ${op.path} does not exist`);
      parent = next as Record<string, unknown> | unknown[];
    }
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      if (op.op === "remove") parent.splice(i, 1);
      else if (op.op === "add") parent.splice(i, 0, structuredClone(op.value));
      else parent[i] = structuredClone(op.value);
    } else if (op.op === "remove") {
      if (!(last in parent)) throw new Error(`remove of missing ${op.path}`);
      delete parent[last];
    } else {
      if (op.op === "replace" && !(last in parent)) throw new Error(`replace of missing ${op.path}`);
      parent[last] = structuredClone(op.value);
    }
  }
  return root;
}

function review(object: unknown, namespace = "sample"): AdmissionReview {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: { uid: "705ab4f5-6393-11e8-b7cc-42010a800002", namespace, operation: "CREATE", object },
  };
}

function decodePatch(r: AdmissionReview): JsonPatchOp[] {
  assert.equal(r.response?.patchType, "JSONPatch");
  return JSON.parse(Buffer.from(r.response?.patch ?? "", "base64").toString("utf8")) as JsonPatchOp[];
}

describe("webhook adapter", () => {
  const pod = loadPod("pod-from-replicaset.json");

  it("JSONPatch round-trip: applying the patch gives exactly the injected pod", () => {
    const out = reviewAdmission(review(pod), CLUSTER1);
    assert.equal(out.response?.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert.equal(out.response?.allowed, true);
    const expected = injectSidecar(pod, CLUSTER1);
    assert.ok(expected.kind === "inject");
    assert.deepEqual(applyPatch(pod, decodePatch(out)), expected.pod);
  });

  it("takes the namespace from the request when the pod has none", () => {
    const { namespace: _ns, ...meta } = pod.metadata ?? {};
    const out = reviewAdmission(review({ ...pod, metadata: meta }, "other"), CLUSTER1);
    const patched = applyPatch({ ...pod, metadata: meta }, decodePatch(out)) as Pod;
    const env = patched.spec.containers.find((c) => c.name === "istio-proxy")?.env ?? [];
    assert.equal(
      env.find((e) => e.name === "ISTIO_META_OWNER")?.value,
      "kubernetes://apis/apps/v1/namespaces/other/deployments/sleep",
    );
  });

  it("annotates a skipped pod with the reason", () => {
    const optedOut = { ...pod, metadata: { ...pod.metadata, annotations: { "sidecar.istio.io/inject": "false" } } };
    const patched = applyPatch(optedOut, decodePatch(reviewAdmission(review(optedOut), CLUSTER1))) as Pod;
    assert.equal(patched.metadata?.annotations?.[SKIP_ANNOTATION], "disabled-by-annotation");
    assert.equal(patched.spec.containers.length, 1);
  });

  it("allows an already injected pod without a patch", () => {
    const d = injectSidecar(pod, CLUSTER1);
    assert.ok(d.kind === "inject");
    const out = reviewAdmission(review(d.pod), CLUSTER1);
    assert.equal(out.response?.allowed, true);
    assert.equal(out.response?.patch, undefined);
  });

  it("reads cluster and network overrides from the path", () => {
    assert.deepEqual(valuesForPath("/inject/cluster/c9/net/n9", CLUSTER1), {
      ...defaultInjectValues("docker.io/isthmus", "0.1.0"),
      clusterId: "c9",
      network: "n9",
      meshId: "mesh1",
    });
    assert.equal(valuesForPath("/other", CLUSTER1), undefined);
  });

  it("serves /inject over HTTP and checks namespace labels through the lookup", async (t) => {
    const labels: Record<string, Record<string, string>> = { sample: { "istio-injection": "enabled" }, plain: {} };
    const server = createServer(
      createInjectionHandler({ values: CLUSTER1, namespaceLabels: async (ns) => labels[ns] }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => server.close());
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const post = async (path: string, body: string) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        body,
        headers: { "content-type": "application/json" },
      });
      return { status: res.status, text: await res.text() };
    };
    const ok = await post("/inject", JSON.stringify(review(pod)));
    assert.equal(ok.status, 200);
    const answered = JSON.parse(ok.text) as AdmissionReview;
    const patched = applyPatch(pod, decodePatch(answered)) as Pod;
    assert.equal(patched.spec.containers.length, 2);

    const plain = JSON.parse((await post("/inject", JSON.stringify(review(pod, "plain")))).text) as AdmissionReview;
    const skipped = applyPatch(pod, decodePatch(plain)) as Pod;
    assert.equal(skipped.metadata?.annotations?.[SKIP_ANNOTATION], "namespace-not-enabled");

    const bad = await post("/inject", "{not json");
    assert.equal(bad.status, 400);
    assert.match(bad.text, /not JSON/);
    assert.equal((await post("/nope", "{}")).status, 404);
  });
});
