import assert from "node:assert/strict";
import { test } from "node:test";
import { WorkQueue } from "./queue.js";

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test("a key added several times while waiting is processed once", async (t) => {
  const seen: string[] = [];
  const q = new WorkQueue({ name: "t", process: async (k) => void seen.push(k) });
  q.add("a");
  q.add("a");
  q.add("b");
  q.add("a");
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = q.run(ac.signal);
  await q.whenIdle();
  assert.deepEqual(seen.sort(), ["a", "b"]);
  ac.abort();
  await running;
});

test("a key is never worked on by two workers at once; adding it meanwhile runs one more pass", async (t) => {
  let active = 0;
  let maxActive = 0;
  let passes = 0;
  const firstStarted = deferred();
  const release = deferred();
  const q = new WorkQueue({
    name: "t",
    workers: 4,
    process: async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      passes++;
      if (passes === 1) {
        firstStarted.resolve();
        await release.promise;
      }
      active--;
    },
  });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = q.run(ac.signal);
  q.add("k");
  await firstStarted.promise;
  q.add("k");
  q.add("k");
  release.resolve();
  await q.whenIdle();
  assert.equal(maxActive, 1);
  assert.equal(passes, 2);
  ac.abort();
  await running;
});

test("a failing pass is retried with back-off until it succeeds", async (t) => {
  const times: number[] = [];
  const done = deferred();
  const q = new WorkQueue({
    name: "t",
    minRetryDelayMs: 5,
    process: async () => {
      times.push(Date.now());
      if (times.length < 4) throw new Error("not yet");
      done.resolve();
    },
  });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = q.run(ac.signal);
  q.add("x");
  await done.promise;
  assert.equal(times.length, 4);
  // Delays 5, 10, 20 ms: the whole run takes at least their sum.
  assert.ok((times[3] ?? 0) - (times[0] ?? 0) >= 30);
  ac.abort();
  await running;
});

test("different keys run in parallel up to the worker count", async (t) => {
  let active = 0;
  let maxActive = 0;
  const gate = deferred();
  const started: string[] = [];
  const allStarted = deferred();
  const q = new WorkQueue({
    name: "t",
    workers: 3,
    process: async (k) => {
      active++;
      maxActive = Math.max(maxActive, active);
      started.push(k);
      if (started.length === 3) allStarted.resolve();
      await gate.promise;
      active--;
    },
  });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = q.run(ac.signal);
  for (const k of ["a", "b", "c", "d", "e"]) q.add(k);
  await allStarted.promise;
  assert.equal(maxActive, 3);
  gate.resolve();
  await q.whenIdle();
  assert.equal(started.length, 5);
  ac.abort();
  await running;
});

test("of several delayed adds for a key, the earliest wins", async (t) => {
  const done = deferred();
  let passes = 0;
  const q = new WorkQueue({
    name: "t",
    process: async () => {
      passes++;
      done.resolve();
    },
  });
  const ac = new AbortController();
  t.after(() => ac.abort());
  const running = q.run(ac.signal);
  const start = Date.now();
  q.addAfter("k", 60_000);
  q.addAfter("k", 10);
  await done.promise;
  assert.ok(Date.now() - start < 30_000, "the 10 ms add replaced the 60 s one");
  assert.equal(passes, 1);
  ac.abort();
  await running;
});
