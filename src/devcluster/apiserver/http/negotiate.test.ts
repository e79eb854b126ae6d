import assert from "node:assert/strict";
import { test } from "node:test";
import { mediaType, parseAccept, wantsAggregatedDiscovery, wantsTable } from "./negotiate.js";

test("kubectl get's Accept asks for a v1 Table; plain JSON does not", () => {
  const kubectl =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
  assert.equal(wantsTable(parseAccept(kubectl)), "v1");
  assert.equal(wantsTable(parseAccept("application/json;as=Table;v=v1beta1;g=meta.k8s.io")), "v1beta1");
  assert.equal(wantsTable(parseAccept("application/json, */*")), undefined);
  assert.equal(wantsTable(parseAccept(undefined)), undefined);
});

test("aggregated discovery is chosen by version in the client's order; protobuf entries are skipped", () => {
  const v2 =
    "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
  assert.equal(wantsAggregatedDiscovery(parseAccept(v2)), "v2");
  assert.equal(
    wantsAggregatedDiscovery(
      parseAccept("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"),
    ),
    "v2beta1",
  );
  assert.equal(wantsAggregatedDiscovery(parseAccept("application/json")), undefined);
});

test("mediaType drops parameters and case", () => {
  assert.equal(mediaType("Application/JSON; charset=utf-8"), "application/json");
  assert.equal(mediaType(undefined), "");
});
