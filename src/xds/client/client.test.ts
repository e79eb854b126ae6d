import assert from "node:assert/strict";
import { test } from "node:test";
import type { DescMessage } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { allTypeUrls, PushContext, TypeUrl } from "../resources/common.js";
import { generate, schemaOf } from "../resources/generate.js";
import { guideView, sleepSidecarCluster1 } from "../resources/guide-topology.js";
import { resourceName } from "./client.js";

test("resourceName reads field 1 of every generated type without decoding, as a full decode would", () => {
  const ctx = new PushContext(guideView());
  let checked = 0;
  for (const typeUrl of allTypeUrls) {
    for (const g of generate(ctx, sleepSidecarCluster1, typeUrl)) {
      assert.equal(resourceName(anyPack(schemaOf[typeUrl] as DescMessage, g.message)), g.name);
      checked++;
    }
  }
  assert.ok(checked > 10);
  // A name longer than 127 bytes needs a multi-byte length prefix.
  const long = `outbound|5000||${"x".repeat(300)}.sample.svc.cluster.local`;
  const [cluster] = generate(ctx, sleepSidecarCluster1, TypeUrl.Cluster);
  assert.ok(cluster);
  const any = anyPack(
    schemaOf[TypeUrl.Cluster] as DescMessage,
    { ...cluster.message, name: long } as typeof cluster.message,
  );
  assert.equal(resourceName(any), long);
});
