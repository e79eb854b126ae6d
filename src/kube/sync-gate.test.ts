import assert from "node:assert/strict";
import { test } from "node:test";
import { SyncGate } from "./sync-gate.js";

test("SyncGate releases waiters on open, at once afterwards, and on abort", async () => {
  const gate = new SyncGate();
  const ac = new AbortController();
  let released = false;
  const waiting = gate.wait(ac.signal).then(() => {
    released = true;
  });
  await Promise.resolve();
  assert.equal(released, false);
  gate.open();
  await waiting;
  assert.equal(gate.isOpen(), true);
  await gate.wait(ac.signal);

  const other = new SyncGate();
  const aborting = new AbortController();
  const aborted = other.wait(aborting.signal);
  aborting.abort();
  await aborted;
  assert.equal(other.isOpen(), false);
});
