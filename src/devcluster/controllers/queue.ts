/**
 * A keyed work queue for controllers: a key waits at most once (adding it again while it
 * waits is a no-op), a key being worked on is never handed to a second worker (adding it
 * meanwhile schedules one more pass afterwards), and a failed pass is retried with per-key
 * exponential back-off until it succeeds.
 */
import type { Logger } from "../../base/index.js";
import { errorMessage, silentLogger } from "../../base/index.js";

export interface WorkQueueOptions {
  /** Used in log lines. */
  readonly name: string;
  /** Does one pass for a key; a rejection schedules a retry with back-off. */
  readonly process: (key: string) => Promise<void>;
  /** How many keys are worked on at once (each key by at most one worker). Default 2. */
  readonly workers?: number;
  /** First retry delay; doubles per failure of the same key up to `maxRetryDelayMs`. Default 5 ms. */
  readonly minRetryDelayMs?: number;
  /** Default 30 s. */
  readonly maxRetryDelayMs?: number;
  readonly log?: Logger;
}

/**
 * The queue. `add` may be called before `run`; keys wait until `run(signal)` starts the
 * workers. Handlers of informers call `add` and nothing else.
 */
export class WorkQueue {
  readonly #opts: WorkQueueOptions;
  readonly #log: Logger;
  /** Keys waiting to be picked up, in arrival order. */
  readonly #waiting = new Set<string>();
  /** Keys a worker is processing now. */
  readonly #active = new Set<string>();
  /** Keys added while active: they go back to #waiting when their pass ends. */
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  #wake: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];
  #running = false;

  constructor(opts: WorkQueueOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
  }

  /** Schedules a pass for `key` (deduplicated with a pass already waiting). */
  add(key: string): void {
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#waiting.has(key)) return;
    this.#waiting.add(key);
    this.#wake?.();
  }

  /** Schedules a pass for `key` after `ms`; of several delayed adds for a key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const due = Date.now() + ms;
    const pending = this.#timers.get(key);
    if (pending && pending.due <= due) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    this.#timers.set(key, { timer, due });
  }

  /** Number of keys waiting or being worked on. */
  get length(): number {
    return this.#waiting.size + this.#active.size;
  }

  /** Resolves when nothing waits and nothing runs (delayed retries do not count). */
  whenIdle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Runs the workers until `signal` aborts; pending delayed adds are dropped then. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#running) throw new Error(`work queue ${this.#opts.name} is already running`);
    this.#running = true;
    const workers = Math.max(1, this.#opts.workers ?? 2);
    const loops: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) loops.push(this.#loop(signal));
    const onAbort = () => this.#wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.all(loops);
    } finally {
      signal.removeEventListener("abort", onAbort);
      for (const t of this.#timers.values()) clearTimeout(t.timer);
      this.#timers.clear();
      this.#running = false;
    }
  }

  #next(): string | undefined {
    for (const key of this.#waiting) {
      this.#waiting.delete(key);
      return key;
    }
    return undefined;
  }

  async #loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const key = this.#next();
      if (key === undefined) {
        await new Promise<void>((resolve) => {
          const prev = this.#wake;
          // Several idle workers share one wake-up chain; each resolves and re-checks.
          this.#wake = () => {
            this.#wake = undefined;
            prev?.();
            resolve();
          };
          if (signal.aborted) this.#wake();
        });
        continue;
      }
      this.#active.add(key);
      try {
        await this.#opts.process(key);
        this.#failures.delete(key);
      } catch (err) {
        const n = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, n);
        const min = this.#opts.minRetryDelayMs ?? 5;
        const max = this.#opts.maxRetryDelayMs ?? 30_000;
        const delay = Math.min(max, min * 2 ** (n - 1));
        this.#log.debug("retrying", { queue: this.#opts.name, key, attempt: n, delayMs: delay, error: err });
        if (n === 5) this.#log.warn("still failing", { queue: this.#opts.name, key, error: errorMessage(err) });
        this.addAfter(key, delay);
      } finally {
        this.#active.delete(key);
        if (this.#dirty.delete(key)) this.add(key);
        if (this.length === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const w of waiters) w();
        }
      }
    }
  }
}
