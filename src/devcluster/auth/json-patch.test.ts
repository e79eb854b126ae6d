import assert from "node:assert/strict";
import { test } from "node:test";
import { applyJsonPatch, parseJsonPointer } from "./json-patch.js";

const ok: [string, unknown, unknown[], unknown][] = [
  ["add a member", { a: 1 }, [{ op: "add", path: "/b", value: 2 }], { a: 1, b: 2 }],
  ["add replaces an existing member", { a: 1 }, [{ op: "add", path: "/a", value: [3] }], { a: [3] }],
  ["add inserts into an array", { l: [1, 3] }, [{ op: "add", path: "/l/1", value: 2 }], { l: [1, 2, 3] }],
  ["add at array end index", { l: [1] }, [{ op: "add", path: "/l/1", value: 2 }], { l: [1, 2] }],
  ["add with - appends", { l: [1] }, [{ op: "add", path: "/l/-", value: { x: 1 } }], { l: [1, { x: 1 }] }],
  ["add replaces the root", { a: 1 }, [{ op: "add", path: "", value: [1] }], [1]],
  ["add a null value", {}, [{ op: "add", path: "/n", value: null }], { n: null }],
  ["remove a member", { a: 1, b: 2 }, [{ op: "remove", path: "/a" }], { b: 2 }],
  ["remove from an array", { l: [1, 2, 3] }, [{ op: "remove", path: "/l/1" }], { l: [1, 3] }],
  ["replace a member", { a: 1 }, [{ op: "replace", path: "/a", value: "x" }], { a: "x" }],
  ["replace an array element", { l: [1, 2] }, [{ op: "replace", path: "/l/1", value: 9 }], { l: [1, 9] }],
  ["replace the root", { a: 1 }, [{ op: "replace", path: "", value: { b: 2 } }], { b: 2 }],
  ["move a member", { a: { x: 1 }, b: {} }, [{ op: "move", from: "/a/x", path: "/b/y" }], { a: {}, b: { y: 1 } }],
  ["move within an array", { l: [1, 2, 3, 4] }, [{ op: "move", from: "/l/1", path: "/l/3" }], { l: [1, 3, 4, 2] }],
  ["move to itself is a no-op", { a: 1 }, [{ op: "move", from: "/a", path: "/a" }], { a: 1 }],
  [
    "copy deep",
    { a: { x: [1] } },
    [
      { op: "copy", from: "/a", path: "/b" },
      { op: "add", path: "/b/x/-", value: 2 },
    ],
    { a: { x: [1] }, b: { x: [1, 2] } },
  ],
  [
    "test passes on equal values (key order ignored)",
    { a: { x: 1, y: [1, "2"] } },
    [{ op: "test", path: "/a", value: { y: [1, "2"], x: 1 } }],
    { a: { x: 1, y: [1, "2"] } },
  ],
  [
    "~1 and ~0 escapes",
    { metadata: { annotations: { "sidecar.istio.io/status": "a", "x~y": "b" } } },
    [
      { op: "replace", path: "/metadata/annotations/sidecar.istio.io~1status", value: "c" },
      { op: "remove", path: "/metadata/annotations/x~0y" },
      { op: "add", path: "/metadata/annotations/a~01", value: "d" },
    ],
    { metadata: { annotations: { "sidecar.istio.io/status": "c", "a~1": "d" } } },
  ],
  ["empty key", { "": 1 }, [{ op: "replace", path: "/", value: 2 }], { "": 2 }],
  ["no operations", { a: 1 }, [], { a: 1 }],
];

test("RFC 6902 operations apply", () => {
  for (const [name, doc, patch, want] of ok) {
    const before = structuredClone(doc);
    const got = applyJsonPatch(doc, patch);
    assert.deepEqual(got, { ok: true, value: want }, name);
    assert.deepEqual(doc, before, `${name}: input untouched`);
  }
});

const bad: [string, unknown, unknown, RegExp][] = [
  ["not an array", {}, { op: "add" }, /must be an array/],
  ["unknown op", {}, [{ op: "frobnicate", path: "/a" }], /operation 0: unknown operation "frobnicate"/],
  ["missing path", {}, [{ op: "add", value: 1 }], /needs a string "path"/],
  ["missing value", {}, [{ op: "add", path: "/a" }], /needs a "value"/],
  ["add under a missing parent", {}, [{ op: "add", path: "/a/b", value: 1 }], /"\/a\/b" does not exist/],
  ["remove a missing member", { a: 1 }, [{ op: "remove", path: "/b" }], /does not exist/],
  ["replace a missing member", { a: 1 }, [{ op: "replace", path: "/b", value: 1 }], /does not exist/],
  ["array index out of bounds on add", { l: [1] }, [{ op: "add", path: "/l/3", value: 1 }], /out of bounds/],
  ["array index out of bounds on remove", { l: [1] }, [{ op: "remove", path: "/l/1" }], /out of bounds/],
  ["leading zero index", { l: [1, 2] }, [{ op: "remove", path: "/l/01" }], /not an array index/],
  ["- is only for add", { l: [1] }, [{ op: "remove", path: "/l/-" }], /not an array index/],
  ["pointer without leading slash", {}, [{ op: "add", path: "a", value: 1 }], /not a JSON pointer/],
  ["bad escape", {}, [{ op: "add", path: "/a~2", value: 1 }], /not a JSON pointer/],
  ["move into own child", { a: { b: {} } }, [{ op: "move", from: "/a", path: "/a/b/c" }], /own child/],
  [
    "test fails",
    { a: 1 },
    [
      { op: "add", path: "/b", value: 2 },
      { op: "test", path: "/a", value: "1" },
    ],
    /operation 1: test failed/,
  ],
];

test("failing patches name the operation and change nothing", () => {
  for (const [name, doc, patch, why] of bad) {
    const got = applyJsonPatch(doc, patch);
    assert.equal(got.ok, false, name);
    assert.match(got.ok ? "" : got.reasons.join(), why, name);
  }
});

test("JSON pointers unescape ~1 before ~0", () => {
  assert.deepEqual(parseJsonPointer("/a~1b/c~0d/~01"), ["a/b", "c~d", "~1"]);
  assert.deepEqual(parseJsonPointer(""), []);
  assert.equal(parseJsonPointer("x"), undefined);
});
