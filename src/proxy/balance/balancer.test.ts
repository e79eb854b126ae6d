import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Endpoint } from "../config/types.js";
import { Balancer, endpointKey } from "./balancer.js";

const ep = (address: string, healthy = true): Endpoint => ({
  address,
  port: 5000,
  healthy,
  weight: 1,
  tlsMode: "istio",
  clusterId: address.endsWith("1") ? "cluster1" : "cluster2",
  locality: "",
  workload: "",
});

describe("Balancer", () => {
  it("alternates across idle endpoints under least request (the guide's v1/v2 toggle)", () => {
    const b = new Balancer("LEAST_REQUEST");
    const eps = [ep("10.200.1.1"), ep("10.200.2.2")];
    const picks = Array.from({ length: 6 }, () => b.pick(eps)?.address);
    assert.deepEqual(picks, ["10.200.1.1", "10.200.2.2", "10.200.1.1", "10.200.2.2", "10.200.1.1", "10.200.2.2"]);
  });

  it("sends new requests to the endpoint with fewer in flight", () => {
    const b = new Balancer("LEAST_REQUEST");
    const eps = [ep("10.200.1.1"), ep("10.200.2.2")];
    const end = b.begin(eps[0] as Endpoint);
    b.begin(eps[0] as Endpoint);
    for (let i = 0; i < 4; i++) assert.equal(b.pick(eps)?.address, "10.200.2.2");
    end();
    assert.equal(b.active(eps[0] as Endpoint), 1);
  });

  it("skips unhealthy endpoints and hosts a retry already tried, falling back when nothing else is left", () => {
    const b = new Balancer("ROUND_ROBIN");
    const eps = [ep("10.200.1.1"), ep("10.200.2.2", false), ep("10.200.3.1")];
    const tried = new Set([endpointKey(eps[0] as Endpoint)]);
    for (let i = 0; i < 3; i++) assert.equal(b.pick(eps, tried)?.address, "10.200.3.1");
    const all = new Set(eps.map(endpointKey));
    assert.ok(["10.200.1.1", "10.200.3.1"].includes(b.pick(eps, all)?.address ?? ""));
    assert.equal(b.pick([]), undefined);
  });
});
