import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Json, jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";

describe("mergePatch (RFC 7386)", () => {
  const cases: [string, Json, Json, Json][] = [
    ["replaces scalars", { a: "b" }, { a: "c" }, { a: "c" }],
    ["adds keys", { a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    ["null removes", { a: "b", b: "c" }, { a: null }, { b: "c" }],
    ["arrays replace", { a: [1, 2] }, { a: [3] }, { a: [3] }],
    ["nested merge", { a: { b: 1, c: 2 } }, { a: { b: null, d: 3 } }, { a: { c: 2, d: 3 } }],
    ["non-object patch replaces all", { a: 1 }, [1], [1]],
  ];
  for (const [name, target, patch, want] of cases) it(name, () => assert.deepEqual(mergePatch(target, patch), want));
});

describe("jsonPatch (RFC 6902)", () => {
  const doc: Json = { a: { b: [1, 2] }, c: "x" };
  const ok: [string, unknown, Json][] = [
    ["add to object", [{ op: "add", path: "/d", value: 1 }], { a: { b: [1, 2] }, c: "x", d: 1 }],
    ["append with -", [{ op: "add", path: "/a/b/-", value: 3 }], { a: { b: [1, 2, 3] }, c: "x" }],
    ["insert at index", [{ op: "add", path: "/a/b/0", value: 0 }], { a: { b: [0, 1, 2] }, c: "x" }],
    ["remove", [{ op: "remove", path: "/a/b/1" }], { a: { b: [1] }, c: "x" }],
    ["replace", [{ op: "replace", path: "/c", value: "y" }], { a: { b: [1, 2] }, c: "y" }],
    ["move", [{ op: "move", from: "/c", path: "/e" }], { a: { b: [1, 2] }, e: "x" }],
    ["copy", [{ op: "copy", from: "/c", path: "/e" }], { a: { b: [1, 2] }, c: "x", e: "x" }],
    [
      "test then replace",
      [
        { op: "test", path: "/c", value: "x" },
        { op: "replace", path: "/c", value: "z" },
      ],
      { a: { b: [1, 2] }, c: "z" },
    ],
    ["escaped pointer", [{ op: "add", path: "/a~1b", value: 1 }], { a: { b: [1, 2] }, c: "x", "a/b": 1 }],
  ];
  for (const [name, ops, want] of ok) {
    it(name, () => {
      const r = jsonPatch(doc, ops);
      assert.ok(r.ok, r.ok ? "" : r.message);
      assert.deepEqual(r.value, want);
    });
  }
  it("leaves the input alone", () => {
    jsonPatch(doc, [{ op: "remove", path: "/c" }]);
    assert.deepEqual(doc, { a: { b: [1, 2] }, c: "x" });
  });
  const bad: [string, unknown, boolean][] = [
    ["failing test", [{ op: "test", path: "/c", value: "no" }], false],
    ["remove of a missing path", [{ op: "remove", path: "/zz" }], false],
    ["replace of a missing path", [{ op: "replace", path: "/zz", value: 1 }], false],
    ["not a list", { op: "add" }, true],
    ["unknown op", [{ op: "frob", path: "/c" }], true],
    ["add without value", [{ op: "add", path: "/c" }], true],
  ];
  for (const [name, ops, malformed] of bad) {
    it(`refuses ${name}`, () => {
      const r = jsonPatch(doc, ops);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.malformed === true, malformed);
    });
  }
});

describe("strategicMergePatch", () => {
  const pod: Json = {
    metadata: { finalizers: ["a"], ownerReferences: [{ uid: "1", name: "x" }] },
    spec: {
      containers: [
        {
          name: "app",
          image: "app:1",
          ports: [{ containerPort: 80, name: "http" }],
          env: [{ name: "A", value: "1" }],
          volumeMounts: [{ mountPath: "/data", name: "d" }],
        },
        { name: "side", image: "side:1" },
      ],
      volumes: [{ name: "d", emptyDir: {} }],
      tolerations: [{ key: "x" }],
    },
  };
  const apply = (patch: Json): Json => {
    const r = strategicMergePatch(pod, patch);
    assert.ok(r.ok, r.ok ? "" : r.message);
    return r.value;
  };
  const spec = (v: Json) => (v as { spec: Record<string, Json> }).spec;
  const containers = (v: Json) => spec(v).containers as Record<string, Json>[];

  it("merges containers by name and keeps the others", () => {
    const out = apply({
      spec: {
        containers: [
          { name: "app", image: "app:2" },
          { name: "new", image: "n" },
        ],
      },
    });
    assert.deepEqual(
      containers(out).map((c) => `${c.name}:${c.image}`),
      ["app:app:2", "side:side:1", "new:n"],
    );
    assert.deepEqual(containers(out)[0]?.ports, [{ containerPort: 80, name: "http" }]);
  });
  it("merges container ports by containerPort and env by name", () => {
    const out = apply({
      spec: {
        containers: [
          {
            name: "app",
            ports: [{ containerPort: 80, name: "web" }, { containerPort: 90 }],
            env: [{ name: "B", value: "2" }],
          },
        ],
      },
    });
    const app = containers(out)[0] ?? {};
    assert.deepEqual(app.ports, [{ containerPort: 80, name: "web" }, { containerPort: 90 }]);
    assert.deepEqual(app.env, [
      { name: "A", value: "1" },
      { name: "B", value: "2" },
    ]);
  });
  it("merges Service ports by port", () => {
    const r = strategicMergePatch(
      {
        spec: {
          ports: [
            { port: 80, name: "a" },
            { port: 81, name: "b" },
          ],
        },
      },
      { spec: { ports: [{ port: 81, name: "c" }] } },
    );
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      spec: {
        ports: [
          { port: 80, name: "a" },
          { port: 81, name: "c" },
        ],
      },
    });
  });
  it("merges volumeMounts by mountPath, volumes by name, finalizers as a set, ownerReferences by uid", () => {
    const out = apply({
      metadata: { finalizers: ["b", "a"], ownerReferences: [{ uid: "1", name: "y" }] },
      spec: {
        volumes: [{ name: "e", emptyDir: {} }],
        containers: [{ name: "app", volumeMounts: [{ mountPath: "/data", name: "e" }] }],
      },
    });
    const meta = (out as { metadata: Record<string, Json> }).metadata;
    assert.deepEqual(meta.finalizers, ["a", "b"]);
    assert.deepEqual(meta.ownerReferences, [{ uid: "1", name: "y" }]);
    assert.deepEqual(spec(out).volumes, [
      { name: "d", emptyDir: {} },
      { name: "e", emptyDir: {} },
    ]);
    assert.deepEqual(containers(out)[0]?.volumeMounts, [{ mountPath: "/data", name: "e" }]);
  });
  it("replaces lists without a merge key", () => {
    assert.deepEqual(spec(apply({ spec: { tolerations: [{ key: "y" }] } })).tolerations, [{ key: "y" }]);
  });
  it("honours $patch delete and replace, $retainKeys, $deleteFromPrimitiveList, and tolerates $setElementOrder", () => {
    const del = apply({
      spec: { containers: [{ name: "side", $patch: "delete" }], "$setElementOrder/containers": [{ name: "app" }] },
    });
    assert.deepEqual(
      containers(del).map((c) => c.name),
      ["app"],
    );
    const rep = apply({ spec: { containers: [{ name: "only", image: "o" }, { $patch: "replace" }] } });
    assert.deepEqual(containers(rep), [{ name: "only", image: "o" }]);
    const mapRep = apply({ spec: { $patch: "replace", containers: [] } });
    assert.deepEqual(spec(mapRep), { containers: [] });
    const retain = apply({
      spec: { volumes: [{ name: "d", hostPath: { path: "/x" }, $retainKeys: ["name", "hostPath"] }] },
    });
    assert.deepEqual(spec(retain).volumes, [{ name: "d", hostPath: { path: "/x" } }]);
    const prim = apply({ metadata: { "$deleteFromPrimitiveList/finalizers": ["a"] } });
    assert.deepEqual((prim as { metadata: Record<string, Json> }).metadata.finalizers, []);
    const nul = apply({ spec: { tolerations: null } });
    assert.equal(spec(nul).tolerations, undefined);
  });
  it("refuses unknown directives and non-object patches", () => {
    assert.equal(strategicMergePatch(pod, { spec: { $patch: "frob" } }).ok, false);
    assert.equal(strategicMergePatch(pod, [1]).ok, false);
  });
});
