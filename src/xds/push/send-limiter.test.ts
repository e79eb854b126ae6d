import assert from "node:assert/strict";
import { test } from "node:test";
import { type ReleaseSlot, SendLimiter } from "./send-limiter.js";

test("at most max holders at once; waiters are served in order as slots are released", () => {
  const limiter = new SendLimiter(2);
  const got: number[] = [];
  const releases: ReleaseSlot[] = [];
  for (let i = 0; i < 5; i++)
    limiter.acquire((release) => {
      got.push(i);
      releases.push(release);
    });
  assert.deepEqual(got, [0, 1]);
  assert.equal(limiter.inUse, 2);
  releases[0]?.();
  assert.deepEqual(got, [0, 1, 2]);
  // Releasing twice (write callback and stream close) frees one slot only.
  releases[0]?.();
  assert.deepEqual(got, [0, 1, 2]);
  releases[1]?.();
  releases[2]?.();
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  releases[3]?.();
  releases[4]?.();
  assert.equal(limiter.inUse, 0);
});

test("a limit below one is refused with the value", () => {
  assert.throws(() => new SendLimiter(0), /positive integer, got 0/);
});
