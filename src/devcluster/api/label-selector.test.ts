import assert from "node:assert/strict";
import { test } from "node:test";
import { asLabelSelector, type LabelSelector, matchLabelSelector } from "./label-selector.js";

const labels = { app: "web", tier: "front" };

test("matchLabelSelector: matchLabels, every operator, absent and unknown", () => {
  const cases: [LabelSelector | undefined, Record<string, string> | undefined, boolean][] = [
    [undefined, labels, true],
    [{}, undefined, true],
    [{ matchLabels: { app: "web" } }, labels, true],
    [{ matchLabels: { app: "db" } }, labels, false],
    [{ matchLabels: { app: "web" } }, undefined, false],
    [{ matchExpressions: [{ key: "tier", operator: "In", values: ["front", "back"] }] }, labels, true],
    [{ matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }, labels, false],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["front"] }] }, labels, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, labels, true],
    [{ matchExpressions: [{ key: "app", operator: "Exists" }] }, labels, true],
    [{ matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, labels, false],
    // A hand-made object with an operator Kubernetes would refuse must not select anything.
    [{ matchExpressions: [{ key: "zone", operator: "Bogus" }] }, labels, false],
    [{ matchExpressions: [{ key: "zone", operator: "toString" }] }, labels, false],
  ];
  for (const [selector, have, want] of cases) {
    assert.equal(matchLabelSelector(selector, have), want, JSON.stringify({ selector, have }));
  }
});

test("asLabelSelector takes objects only", () => {
  assert.deepEqual(asLabelSelector({ matchLabels: { a: "b" } }), { matchLabels: { a: "b" } });
  assert.equal(asLabelSelector(null), undefined);
  assert.equal(asLabelSelector(["a"]), undefined);
  assert.equal(asLabelSelector("app=web"), undefined);
});
