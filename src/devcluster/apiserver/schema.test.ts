import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkFields, kubeTypes, modelOf, openApiSchemas } from "./schema.js";
import { ResourceRegistry } from "./registry.js";

describe("kube type table", () => {
  it("matches what @kubernetes/client-node's models say (regenerate with buildKubeTypes/renderKubeTypesModule)", async () => {
    const { buildKubeTypes } = await import("./schema.js");
    assert.deepEqual(JSON.parse(JSON.stringify(kubeTypes)), await buildKubeTypes());
  });

  it("has a model for every stored built-in resource", () => {
    for (const r of new ResourceRegistry().all()) {
      if (r.virtual) continue;
      assert.ok(modelOf(r), `no model for ${r.kind}`);
    }
  });

  it("names unknown fields by path, including inside lists and maps", () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", labels: { a: "b" }, bogus: 1 },
      spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: 1, nope: 2 }] }], extra: true },
    };
    assert.deepEqual(checkFields({ group: "", kind: "Pod" }, pod), [
      "metadata.bogus",
      "spec.containers[0].ports[0].nope",
      "spec.extra",
    ]);
    assert.deepEqual(checkFields({ group: "x", kind: "Widget", crd: "widgets.x" }, pod), []);
  });

  it("gives OpenAPI schemas with refs, patch extensions and GVKs", () => {
    const s = openApiSchemas("#/components/schemas/", new Map([["V1Pod", { group: "", version: "v1", kind: "Pod" }]]));
    const pod = s.V1Pod as { properties: Record<string, unknown>; "x-kubernetes-group-version-kind": unknown };
    assert.deepEqual(pod["x-kubernetes-group-version-kind"], [{ group: "", version: "v1", kind: "Pod" }]);
    assert.deepEqual(pod.properties.spec, { allOf: [{ $ref: "#/components/schemas/V1PodSpec" }] });
    const containers = (s.V1PodSpec as { properties: Record<string, Record<string, unknown>> }).properties.containers;
    assert.equal(containers?.["x-kubernetes-patch-merge-key"], "name");
  });
});
