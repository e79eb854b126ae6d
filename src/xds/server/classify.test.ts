import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyRequest, type RequestFacts, type RequestMeaning, type SentState } from "./classify.js";

const sent: SentState = { nonce: "7", subscribed: new Set(["a", "b"]) };
const req = (over: Partial<RequestFacts>): RequestFacts => ({
  versionInfo: "v1",
  responseNonce: "7",
  resourceNames: ["a", "b"],
  ...over,
});

const table: { name: string; sent: SentState | undefined; req: RequestFacts; want: RequestMeaning }[] = [
  {
    name: "first request on a stream",
    sent: undefined,
    req: req({ responseNonce: "", versionInfo: "" }),
    want: { kind: "initial" },
  },
  {
    name: "reconnect carrying a nonce from another server",
    sent: undefined,
    req: req({ responseNonce: "99" }),
    want: { kind: "initial" },
  },
  {
    name: "re-request without nonce on a live stream",
    sent,
    req: req({ responseNonce: "" }),
    want: { kind: "initial" },
  },
  { name: "ACK: latest nonce, same names", sent, req: req({}), want: { kind: "ack", version: "v1", nonce: "7" } },
  {
    name: "ACK with names reordered",
    sent,
    req: req({ resourceNames: ["b", "a"] }),
    want: { kind: "ack", version: "v1", nonce: "7" },
  },
  {
    name: "NACK keeps the last good version",
    sent,
    req: req({ versionInfo: "v0", errorDetail: { message: "router filter is before the end of the list" } }),
    want: { kind: "nack", version: "v0", nonce: "7", message: "router filter is before the end of the list" },
  },
  { name: "stale nonce", sent, req: req({ responseNonce: "6" }), want: { kind: "stale-nonce", nonce: "6" } },
  {
    name: "stale NACK is ignored too",
    sent,
    req: req({ responseNonce: "6", errorDetail: { message: "x" } }),
    want: { kind: "stale-nonce", nonce: "6" },
  },
  {
    name: "resubscription with the latest nonce is not an ACK (added)",
    sent,
    req: req({ resourceNames: ["a", "b", "c"] }),
    want: { kind: "resubscribe", version: "v1", nonce: "7", added: ["c"], removed: [] },
  },
  {
    name: "resubscription removing a name",
    sent,
    req: req({ resourceNames: ["b"] }),
    want: { kind: "resubscribe", version: "v1", nonce: "7", added: [], removed: ["a"] },
  },
  {
    name: "wildcard to wildcard is an ACK",
    sent: { nonce: "3", subscribed: new Set() },
    req: req({ responseNonce: "3", resourceNames: [] }),
    want: { kind: "ack", version: "v1", nonce: "3" },
  },
];

for (const row of table) {
  test(`classify: ${row.name}`, () => {
    assert.deepEqual(classifyRequest(row.sent, row.req), row.want);
  });
}
