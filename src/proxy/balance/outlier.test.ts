import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OutlierDetector } from "./outlier.js";

describe("outlier detection", () => {
  const cluster = "outbound|5000||helloworld.sample.svc.cluster.local";

  it("ejects after consecutive failures, for longer each time, and lets the host back when the time is served", () => {
    let now = 1_000_000;
    const d = new OutlierDetector({ consecutiveFailures: 3, baseEjectionMs: 1000, now: () => now });
    assert.equal(d.failure(cluster, "a:1", "refused", 2), false);
    d.success(cluster, "a:1");
    assert.equal(d.failure(cluster, "a:1", "refused", 2), false);
    assert.equal(d.failure(cluster, "a:1", "refused", 2), false);
    assert.equal(d.failure(cluster, "a:1", "unknown root", 2), true, "three in a row after the success");
    assert.deepEqual(d.state(cluster, "a:1"), {
      ejected: true,
      consecutiveFailures: 0,
      ejections: 1,
      ejectedUntil: now + 1000,
      lastFailure: "unknown root",
    });
    now += 1000;
    assert.equal(d.isEjected(cluster, "a:1"), false);
    for (let i = 0; i < 2; i++) d.failure(cluster, "a:1", "refused", 2);
    assert.equal(d.failure(cluster, "a:1", "refused", 2), true);
    assert.equal(d.state(cluster, "a:1").ejectedUntil, now + 2000, "the second ejection lasts twice as long");
  });

  it("ejects at most the allowed share of a cluster, but always at least one host", () => {
    const d = new OutlierDetector({ consecutiveFailures: 1, maxEjectionPercent: 10 });
    assert.equal(d.failure(cluster, "a:1", "x", 2), true);
    assert.equal(d.failure(cluster, "b:1", "x", 2), false, "10% of two hosts still allows one, not two");
    assert.equal(d.isEjected(cluster, "b:1"), false);
    assert.equal(d.failure("other", "b:1", "x", 2), true, "clusters are counted apart");
  });
});
