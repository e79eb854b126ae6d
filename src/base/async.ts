/** Small helpers for waiting on events without sleeping in tests or loops. */
import { setTimeout as delay } from "node:timers/promises";

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : undefined);
}

/**
 * Polls `check` every `intervalMs` until it returns a value other than undefined/false,
 * or throws a timeout error naming `what`. For waiting on other processes, where no event exists.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : "";
      throw new Error(`timed out after ${opts.timeoutMs ?? 30_000} ms waiting for ${what}${why}`);
    }
    await sleep(opts.intervalMs ?? 100, opts.signal);
  }
}

/** Exponential back-off with jitter: 1 s doubling to 30 s by default. */
export class Backoff {
  #attempt = 0;
  readonly #minMs: number;
  readonly #maxMs: number;
  constructor(minMs = 1000, maxMs = 30_000) {
    this.#minMs = minMs;
    this.#maxMs = maxMs;
  }
  next(): number {
    const base = Math.min(this.#maxMs, this.#minMs * 2 ** this.#attempt);
    this.#attempt++;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
  reset(): void {
    this.#attempt = 0;
  }
}
