import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ClusterSchema } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import { DiscoveryResponseSchema } from "../../gen/envoy/service/discovery/v3/discovery_pb.js";
import { encodeDiscoveryResponse, encodeResourceField } from "./wire.js";

test("the hand-encoded DiscoveryResponse decodes to what protobuf-es would have built", () => {
  const clusters = ["a", "b".repeat(300)].map((name) => anyPack(ClusterSchema, create(ClusterSchema, { name })));
  const bytes = encodeDiscoveryResponse(
    "v1",
    clusters[0]?.typeUrl ?? "",
    "42",
    clusters.map((a) => encodeResourceField(a.typeUrl, a.value)),
  );
  const expected = create(DiscoveryResponseSchema, {
    versionInfo: "v1",
    typeUrl: clusters[0]?.typeUrl ?? "",
    nonce: "42",
    resources: clusters,
  });
  assert.deepEqual(new Uint8Array(bytes), toBinary(DiscoveryResponseSchema, expected));
});
