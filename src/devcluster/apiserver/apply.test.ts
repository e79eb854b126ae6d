import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { silentLogger } from "../../base/index.js";
import { ApiError, type KubeObject, Resources } from "../api/types.js";
import { fieldSetOf } from "./apply.js";
import { LocalApi } from "./index.js";

async function setup(t: TestContext) {
  const api = new LocalApi({ serviceCidr: "10.201.3.0/24", clusterName: "t", log: silentLogger });
  await api.start();
  t.after(() => api.close());
  const c = api.client();
  await c.create(Resources.namespaces, { apiVersion: "v1", kind: "Namespace", metadata: { name: "sample" } });
  return { api, c };
}

const deployment = (labels: Record<string, string>, containers: Record<string, unknown>[]): KubeObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "d", labels },
  spec: {
    selector: { matchLabels: { app: "d" } },
    template: { metadata: { labels: { app: "d" } }, spec: { containers } },
  },
});

describe("fieldSetOf", () => {
  it("names fields as FieldsV1 does, with keyed list items", () => {
    const set = fieldSetOf({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", labels: { a: "b" }, finalizers: ["x"] },
      spec: { containers: [{ name: "c", image: "i", args: ["1"] }] },
    });
    assert.deepEqual(set, {
      "f:metadata": { "f:labels": { ".": {}, "f:a": {} }, "f:finalizers": { ".": {}, 'v:"x"': {} } },
      "f:spec": {
        ".": {},
        "f:containers": { ".": {}, 'k:{"name":"c"}': { ".": {}, "f:name": {}, "f:image": {}, "f:args": {} } },
      },
    });
  });
});

describe("server-side apply", () => {
  it("creates, then merges and removes only what the same manager stopped applying", async (t) => {
    const { c } = await setup(t);
    const opts = { fieldManager: "me" };
    const first = await c.apply(
      Resources.deployments,
      "sample",
      "d",
      deployment({ a: "1", b: "2" }, [
        { name: "app", image: "app:1", env: [{ name: "X", value: "1" }] },
        { name: "side", image: "side:1" },
      ]),
      opts,
    );
    assert.equal(first.metadata.managedFields?.length, 1);
    // Someone else adds a label with an ordinary patch; it survives the next apply.
    await c.patch(Resources.deployments, "sample", "d", "application/merge-patch+json", {
      metadata: { labels: { other: "x" } },
    });
    const second = await c.apply(
      Resources.deployments,
      "sample",
      "d",
      deployment({ a: "1" }, [{ name: "app", image: "app:2" }]),
      opts,
    );
    assert.deepEqual(second.metadata.labels, { a: "1", other: "x" });
    const cs = (second.spec as { template: { spec: { containers: { name: string; image: string; env?: unknown }[] } } })
      .template.spec.containers;
    assert.deepEqual(
      cs.map((x) => `${x.name}=${x.image}`),
      ["app=app:2"],
    );
    assert.equal(cs[0]?.env, undefined);
    assert.equal((second.spec as { replicas: number }).replicas, 1, "defaults stay");
    const again = await c.apply(
      Resources.deployments,
      "sample",
      "d",
      deployment({ a: "1" }, [{ name: "app", image: "app:2" }]),
      opts,
    );
    assert.equal(again.metadata.resourceVersion, second.metadata.resourceVersion, "an unchanged apply writes nothing");
  });

  it("refuses unknown fields and a missing field manager", async (t) => {
    const { c } = await setup(t);
    const bad = { ...deployment({}, [{ name: "app", image: "i" }]), spec: { bogus: 1 } };
    await assert.rejects(
      c.apply(Resources.deployments, "sample", "d", bad, { fieldManager: "me" }),
      (e: unknown) => e instanceof ApiError && e.code === 400 && /unknown field "spec\.bogus"/.test(e.message),
    );
    await assert.rejects(
      c.apply(Resources.deployments, "sample", "d", deployment({}, [{ name: "app", image: "i" }])),
      (e: unknown) => e instanceof ApiError && e.code === 422,
    );
  });
});
