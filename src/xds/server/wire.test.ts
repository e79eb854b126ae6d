import assert from "node:assert/strict";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ClusterSchema } from "../../gen/envoy/config/cluster/v3/cluster_pb.js";
import {
  DeltaDiscoveryResponseSchema,
  DiscoveryResponseSchema,
} from "../../gen/envoy/service/discovery/v3/discovery_pb.js";
import { messageOf } from "./framed.js";
import {
  encodeDeltaDiscoveryResponse,
  encodeDeltaResourceField,
  encodeDiscoveryResponse,
  encodeResourceField,
} from "./wire.js";

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
  assert.deepEqual(new Uint8Array(messageOf(bytes)), toBinary(DiscoveryResponseSchema, expected));
});

test("the hand-encoded DeltaDiscoveryResponse decodes to what protobuf-es would have built", () => {
  const clusters = ["a", "c".repeat(200)].map((name) => anyPack(ClusterSchema, create(ClusterSchema, { name })));
  const typeUrl = clusters[0]?.typeUrl ?? "";
  const bytes = encodeDeltaDiscoveryResponse(
    "v2",
    typeUrl,
    "n9",
    clusters.map((a, i) => encodeDeltaResourceField(`r${i}`, `h${i}`, encodeResourceField(a.typeUrl, a.value))),
    ["gone-1", "gone-2"],
  );
  const expected = create(DeltaDiscoveryResponseSchema, {
    systemVersionInfo: "v2",
    typeUrl,
    nonce: "n9",
    resources: clusters.map((a, i) => ({ name: `r${i}`, version: `h${i}`, resource: a })),
    removedResources: ["gone-1", "gone-2"],
  });
  // Decoded and re-encoded: field order may differ from protobuf-es's, the message may not.
  const decoded = fromBinary(DeltaDiscoveryResponseSchema, new Uint8Array(messageOf(bytes)));
  assert.deepEqual(toBinary(DeltaDiscoveryResponseSchema, decoded), toBinary(DeltaDiscoveryResponseSchema, expected));
});
