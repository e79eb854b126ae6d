import assert from "node:assert/strict";
import { test } from "node:test";
import { framed, messageOf, zeroCopyFraming } from "./framed.js";

test("grpc-js takes pre-framed responses as they are (if this fails after a grpc-js upgrade, see framed.ts)", () => {
  assert.equal(zeroCopyFraming, true);
});

test("a framed message carries the gRPC header: uncompressed, big-endian length", () => {
  const out = framed([Buffer.from("ab"), Buffer.from("cde")]);
  assert.deepEqual([...out.subarray(0, 5)], [0, 0, 0, 0, 5]);
  assert.equal(messageOf(out).toString(), "abcde");
  assert.equal(messageOf(Buffer.from("plain")).toString(), "plain");
});
