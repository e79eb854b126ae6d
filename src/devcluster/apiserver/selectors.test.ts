import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../api/types.js";
import { matchLabelSelector, parseFieldSelector, parseLabelSelector } from "./selectors.js";

const obj = (labels: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "p", namespace: "ns", labels },
  ...extra,
});

describe("label selectors", () => {
  const labels = { app: "web", tier: "front", "example.com/x": "1" };
  const cases: [string, boolean][] = [
    ["", true],
    ["app=web", true],
    ["app==web", true],
    ["app=db", false],
    ["app!=db", true],
    ["app!=web", false],
    ["missing!=x", true],
    ["app in (web,db)", true],
    ["app in (db)", false],
    ["app notin (db, api)", true],
    ["app notin (web)", false],
    ["missing notin (web)", true],
    ["app", true],
    ["missing", false],
    ["!missing", true],
    ["!app", false],
    ["app=web,tier=front", true],
    ["app=web,tier=back", false],
    ["example.com/x=1", true],
    ["app in (web), tier notin (back), !missing", true],
  ];
  for (const [sel, want] of cases) {
    it(`${JSON.stringify(sel)} → ${want}`, () => {
      const p = parseLabelSelector(sel);
      assert.equal(typeof p, "function");
      if (typeof p === "function") assert.equal(p(obj(labels)), want);
    });
  }
  for (const bad of ["app in (", "a=b=c", "in (x)", "app in ()", "-bad=x", "app=bad value"]) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.equal(typeof parseLabelSelector(bad), "string"));
  }
  it("structured selectors", () => {
    assert.equal(
      matchLabelSelector(
        { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "In", values: ["front"] }] },
        labels,
      ),
      true,
    );
    assert.equal(matchLabelSelector({ matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, labels), false);
    assert.equal(matchLabelSelector({}, labels), true);
  });
});

describe("field selectors", () => {
  const pod = obj({}, { spec: { nodeName: "n1" }, status: { phase: "Running" } });
  const cases: [string, boolean][] = [
    ["metadata.name=p", true],
    ["metadata.name==q", false],
    ["metadata.namespace=ns", true],
    ["metadata.namespace!=ns", false],
    ["spec.nodeName=n1", true],
    ["spec.nodeName=", false],
    ["status.phase!=Succeeded,status.phase!=Failed", true],
  ];
  for (const [sel, want] of cases) {
    it(`${sel} → ${want}`, () => {
      const p = parseFieldSelector(sel, "Pod");
      assert.equal(typeof p, "function");
      if (typeof p === "function") assert.equal(p(pod), want);
    });
  }
  it("events by involvedObject, secrets by type", () => {
    const ev = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "e" },
      involvedObject: { kind: "Service", name: "hw", namespace: "s", uid: "u" },
    };
    const p = parseFieldSelector(
      "involvedObject.name=hw,involvedObject.namespace=s,involvedObject.kind=Service,involvedObject.uid=u",
      "Event",
    );
    assert.ok(typeof p === "function" && p(ev));
    const s = parseFieldSelector("type=kubernetes.io/tls", "Secret");
    assert.ok(typeof s === "function" && !s({ apiVersion: "v1", kind: "Secret", metadata: {}, type: "Opaque" }));
  });
  it("refuses fields the kind cannot be selected by", () => {
    assert.equal(parseFieldSelector("spec.nodeName=x", "ConfigMap"), "field label not supported: spec.nodeName");
    assert.equal(typeof parseFieldSelector("nonsense", "Pod"), "string");
  });
});
