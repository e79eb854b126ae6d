/**
 * A bound on how many responses are being written at once across every ADS stream (Istio's
 * PILOT_PUSH_THROTTLE plays this part). A slot is held from handing a response to gRPC until gRPC
 * says it went out, so a full push to hundreds of slow proxies keeps at most `max` framed copies
 * in memory instead of one per proxy, and streams that read slowly wait rather than buffer.
 */
import { defineEnv } from "../../base/index.js";

export const pushThrottleEnv = defineEnv<number>({
  name: "PILOT_PUSH_THROTTLE",
  description:
    "how many xDS responses the control plane writes at once across all proxies (each waits for gRPC flow control)",
  defaultValue: 25,
  parse: (raw: string) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`PILOT_PUSH_THROTTLE must be a positive integer, got "${raw}"`);
    return n;
  },
});

/** A release function: idempotent, so a write callback and a closed stream may both call it. */
export type ReleaseSlot = () => void;

/** FIFO counting semaphore over callbacks (no promises: a push hands out hundreds of slots). */
export class SendLimiter {
  readonly max: number;
  #free: number;
  #waiters: ((release: ReleaseSlot) => void)[] = [];
  #head = 0;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`a send limit must be a positive integer, got ${max}`);
    this.max = max;
    this.#free = max;
  }

  /** Slots in use now. */
  get inUse(): number {
    return this.max - this.#free;
  }

  /** Calls `fn` with a release function once a slot is free (at once if one is); waiters are served in order. */
  acquire(fn: (release: ReleaseSlot) => void): void {
    if (this.#free > 0) {
      this.#free--;
      fn(this.#releaser());
    } else this.#waiters.push(fn);
  }

  #releaser(): ReleaseSlot {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#handOn();
    };
  }

  #handOn(): void {
    const next = this.#waiters[this.#head];
    if (next === undefined) {
      this.#free++;
      return;
    }
    this.#waiters[this.#head++] = undefined as never;
    if (this.#head > 1024 && this.#head * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
    next(this.#releaser());
  }
}
