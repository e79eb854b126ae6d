import assert from "node:assert/strict";
import { test } from "node:test";
import { envFrom, readEnv } from "../../base/index.js";
import { type Clock, Debouncer, debounceAfterEnv, debounceMaxEnv, type MergedPush } from "./debounce.js";

/** A clock whose time moves only when the test says so. */
class FakeClock implements Clock {
  t = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }
  /** Advances time, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

function setup(afterMs = 100, maxMs = 10_000) {
  const clock = new FakeClock();
  const pushes: { at: number; merged: MergedPush }[] = [];
  let release: (() => void) | undefined;
  let hold = false;
  const d = new Debouncer({
    afterMs,
    maxMs,
    clock,
    push: async (merged) => {
      pushes.push({ at: clock.now(), merged });
      if (hold) await new Promise<void>((r) => (release = r));
    },
  });
  return {
    clock,
    pushes,
    d,
    holdPushes: () => (hold = true),
    releasePush: () => release?.(),
  };
}

test("env defaults are Istio's: 100 ms quiet, 10 s max", () => {
  assert.deepEqual(readEnv(envFrom({}), { a: debounceAfterEnv, m: debounceMaxEnv }), { a: 100, m: 10_000 });
  assert.deepEqual(
    readEnv(envFrom({ PILOT_DEBOUNCE_AFTER: "50ms", PILOT_DEBOUNCE_MAX: "2s" }), {
      a: debounceAfterEnv,
      m: debounceMaxEnv,
    }),
    {
      a: 50,
      m: 2000,
    },
  );
});

test("a burst of events becomes one merged push after 100 ms of quiet", async () => {
  const { clock, pushes, d } = setup();
  d.request({ full: false, edsHostnames: new Set(["a"]) });
  clock.advance(60);
  d.request({ full: false, edsHostnames: new Set(["b"]) });
  clock.advance(60);
  assert.equal(pushes.length, 0, "pushed before the quiet period ended");
  clock.advance(40);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]?.at, 160);
  assert.deepEqual([...(pushes[0]?.merged.edsHostnames ?? [])].sort(), ["a", "b"]);
  assert.equal(pushes[0]?.merged.full, false);
  assert.equal(pushes[0]?.merged.events, 2);
  assert.equal(pushes[0]?.merged.firstEventAt, 0);
  await d.idle();
});

test("a full request merged with EDS-only ones makes a full push", async () => {
  const { clock, pushes, d } = setup();
  d.request({ full: false, edsHostnames: new Set(["a"]) });
  d.request({ full: true });
  clock.advance(100);
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]?.merged.full, true);
  await d.idle();
});

test("events that never go quiet are pushed at PILOT_DEBOUNCE_MAX", async () => {
  const { clock, pushes, d } = setup(100, 1000);
  for (let i = 0; i < 30; i++) {
    d.request({ full: false, edsHostnames: new Set([`h${i}`]) });
    clock.advance(50);
  }
  assert.equal(pushes.length, 1);
  assert.equal(pushes[0]?.at, 1000);
  d.close();
});

test("one push at a time: requests during a push merge into the next one", async () => {
  const { clock, pushes, d, holdPushes, releasePush } = setup();
  holdPushes();
  d.request({ full: true });
  clock.advance(100);
  assert.equal(pushes.length, 1);
  d.request({ full: false, edsHostnames: new Set(["x"]) });
  d.request({ full: false, edsHostnames: new Set(["y"]) });
  clock.advance(500);
  assert.equal(pushes.length, 1, "second push started while the first was in flight");
  releasePush();
  await new Promise((r) => setImmediate(r));
  // The quiet period had long passed, so the merged push runs as soon as the first finishes.
  assert.equal(pushes.length, 2);
  assert.deepEqual([...(pushes[1]?.merged.edsHostnames ?? [])].sort(), ["x", "y"]);
  releasePush();
  await d.idle();
});
