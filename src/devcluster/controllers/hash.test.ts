import assert from "node:assert/strict";
import { test } from "node:test";
import { fnv32a, podTemplateHash, randomSuffix, safeAlphabet, safeEncode, stableStringify } from "./hash.js";

test("fnv32a matches the published FNV-1a test vectors", () => {
  const vectors: [string, number][] = [
    ["", 0x811c9dc5],
    ["a", 0xe40c292c],
    ["foobar", 0xbf9cf968],
  ];
  for (const [input, want] of vectors) assert.equal(fnv32a(input), want, JSON.stringify(input));
});

test("safeEncode maps decimal digits into the vowel-free alphabet", () => {
  // '0' is byte 48 and 48 % 27 = 21 -> '4'; '6' is 54 % 27 = 0 -> 'b'.
  assert.equal(safeEncode("0123456789"), "456789bcdf");
});

test("stableStringify ignores key order and undefined fields", () => {
  assert.equal(
    stableStringify({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } }),
    '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}',
  );
  assert.equal(stableStringify({ a: 1, b: 2 }), stableStringify({ b: 2, a: 1 }));
});

test("podTemplateHash is stable, short, safe, and changes with the template or collisionCount", () => {
  const t1 = {
    metadata: { labels: { app: "helloworld", version: "v1" } },
    spec: { containers: [{ name: "helloworld", image: "a:v1" }] },
  };
  const t1reordered = {
    spec: { containers: [{ image: "a:v1", name: "helloworld" }] },
    metadata: { labels: { version: "v1", app: "helloworld" } },
  };
  const t2 = {
    metadata: { labels: { app: "helloworld", version: "v1" } },
    spec: { containers: [{ name: "helloworld", image: "a:v2" }] },
  };
  const h1 = podTemplateHash(t1);
  assert.match(h1, /^[456789bcdf]{1,10}$/);
  assert.equal(podTemplateHash(t1reordered), h1);
  assert.notEqual(podTemplateHash(t2), h1);
  assert.notEqual(podTemplateHash(t1, 1), h1);
  assert.equal(podTemplateHash(t1, 0), h1);
});

test("randomSuffix draws from the safe alphabet", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = randomSuffix();
    assert.equal(s.length, 5);
    for (const ch of s) assert.ok(safeAlphabet.includes(ch), s);
    seen.add(s);
  }
  assert.ok(seen.size > 40, "suffixes should practically never repeat");
});
