/**
 * Values of the wrong type in string maps are decoding errors, as in kube-apiserver: 400
 * BadRequest naming the field and the types, and nothing is stored (issue 8's fault suite found
 * ConfigMap `data: {"a": 1}` stored).
 */
import assert from "node:assert/strict";
import { it, type TestContext } from "node:test";
import { silentLogger } from "../../base/index.js";
import { ApiError, type KubeObject, type ResourceRef, Resources, type StatusBody } from "../api/types.js";
import { LocalApi } from "./index.js";

async function client(t: TestContext) {
  const api = new LocalApi({ serviceCidr: "10.201.3.0/24", clusterName: "t", log: silentLogger });
  await api.start();
  t.after(() => api.close());
  const c = api.client();
  await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
  return c;
}

async function refusal(p: Promise<unknown>): Promise<StatusBody> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError) return err.status;
    throw err;
  }
  assert.fail("expected a refusal");
}

const obj = (kind: string, rest: Record<string, unknown>): KubeObject => ({
  apiVersion: kind === "Deployment" ? "apps/v1" : "v1",
  kind,
  metadata: { name: "x", namespace: "sample", ...((rest.metadata as object | undefined) ?? {}) },
  ...Object.fromEntries(Object.entries(rest).filter(([k]) => k !== "metadata")),
});

it("refuses a non-string in ConfigMap data/binaryData, Secret data/stringData, labels, annotations and nested selectors with kube-apiserver's 400", async (t) => {
  const c = await client(t);
  const cases: [ResourceRef, KubeObject, string][] = [
    [
      Resources.configmaps,
      obj("ConfigMap", { data: { a: 1 } }),
      'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string',
    ],
    [
      Resources.configmaps,
      obj("ConfigMap", { data: ["a"] }),
      "json: cannot unmarshal array into Go struct field ConfigMap.data of type map[string]string",
    ],
    [
      Resources.configmaps,
      obj("ConfigMap", { binaryData: { a: "not base64!" } }),
      "cannot be handled as a ConfigMap: illegal base64 data at input byte 3",
    ],
    [
      Resources.secrets,
      obj("Secret", { data: { a: true } }),
      "json: cannot unmarshal bool into Go struct field Secret.data of type []uint8",
    ],
    [Resources.secrets, obj("Secret", { data: { a: "YWJj=" } }), "illegal base64 data at input byte 4"],
    [
      Resources.secrets,
      obj("Secret", { stringData: { a: { b: "c" } } }),
      "json: cannot unmarshal object into Go struct field Secret.stringData of type string",
    ],
    [
      Resources.configmaps,
      obj("ConfigMap", { metadata: { labels: { app: 7 } } }),
      "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
    ],
    [
      Resources.configmaps,
      obj("ConfigMap", { metadata: { annotations: { note: false } } }),
      "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.annotations of type string",
    ],
    [
      Resources.deployments,
      obj("Deployment", {
        spec: {
          selector: { matchLabels: { app: 1 } },
          template: { metadata: { labels: { app: "1" } }, spec: { containers: [{ name: "c", image: "i" }] } },
        },
      }),
      "json: cannot unmarshal number into Go struct field LabelSelector.spec.selector.matchLabels of type string",
    ],
  ];
  for (const [ref, body, message] of cases) {
    const st = await refusal(c.create(ref, body));
    assert.equal(st.code, 400, JSON.stringify(st));
    assert.equal(st.reason, "BadRequest");
    assert.ok(st.message?.includes(message), `${st.message} should include ${message}`);
  }
  assert.deepEqual((await c.list(Resources.configmaps, { namespace: "sample" })).items, [], "nothing stored");
  assert.deepEqual((await c.list(Resources.secrets, { namespace: "sample" })).items, [], "nothing stored");
});

it("refuses the same through an update and a merge patch, and still takes strings, valid base64 and numeric quantities", async (t) => {
  const c = await client(t);
  const created = await c.create(
    Resources.secrets,
    obj("Secret", { data: { a: Buffer.from("abc").toString("base64"), b: "" }, stringData: { s: "plain" } }),
  );
  assert.equal((created.data as Record<string, string>).s, Buffer.from("plain").toString("base64"));
  const cm = await c.create(Resources.configmaps, obj("ConfigMap", { data: { a: "1" }, binaryData: { b: "AAE=" } }));
  const put = await refusal(c.update(Resources.configmaps, { ...cm, data: { a: 2 } }));
  assert.equal(put.code, 400);
  assert.match(put.message ?? "", /ConfigMap\.data of type string/);
  const patched = await refusal(
    c.patch(Resources.configmaps, "sample", "x", "application/merge-patch+json", { data: { b: [1] } }),
  );
  assert.equal(patched.code, 400);
  assert.match(patched.message ?? "", /cannot unmarshal array into Go struct field ConfigMap\.data of type string/);
  assert.deepEqual((await c.get(Resources.configmaps, "sample", "x")).data, { a: "1" }, "unchanged");
  // Quantities are not strings only: kubectl sends `cpu: 1` as a number and Kubernetes takes it.
  await c.create(Resources.pods, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "q", namespace: "sample" },
    spec: { containers: [{ name: "c", image: "i", resources: { limits: { cpu: 1 } } }] },
  });
});
