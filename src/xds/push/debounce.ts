/**
 * Debounced, merged pushes, as istiod does them: a burst of registry events becomes one push once
 * the events have been quiet for PILOT_DEBOUNCE_AFTER, or PILOT_DEBOUNCE_MAX after the first event,
 * whichever comes first; requests arriving meanwhile merge; only one push runs at a time.
 */
import { defineEnv, type Logger, parseDuration, silentLogger } from "../../base/index.js";

export const debounceAfterEnv = defineEnv<number>({
  name: "PILOT_DEBOUNCE_AFTER",
  description:
    "quiet period after a registry event before the control plane pushes (merging events that arrive meanwhile)",
  defaultValue: 100,
  parse: parseDuration,
});

export const debounceMaxEnv = defineEnv<number>({
  name: "PILOT_DEBOUNCE_MAX",
  description: "longest time a push may be delayed by a stream of events that never goes quiet",
  defaultValue: 10_000,
  parse: parseDuration,
});

/** What the registry asks for. `full: false` with hostnames means "endpoints of these services changed": EDS only. */
export interface PushRequest {
  readonly full: boolean;
  readonly edsHostnames?: ReadonlySet<string>;
  /** For logs: what happened (e.g. "EndpointSlice sample/helloworld-abc"). */
  readonly reason?: string;
}

/** Several requests merged into one push. */
export interface MergedPush {
  readonly full: boolean;
  /** Union of the hostnames of every merged EDS-only request (empty when only full requests merged). */
  readonly edsHostnames: ReadonlySet<string>;
  /** When the earliest merged event arrived (clock ms): convergence is measured from here. */
  readonly firstEventAt: number;
  readonly events: number;
  readonly reasons: readonly string[];
}

/** Merges a request into a pending push (or starts one). */
export function mergePush(into: MergedPush | undefined, req: PushRequest, at: number): MergedPush {
  const hosts = new Set(into?.edsHostnames ?? []);
  for (const h of req.edsHostnames ?? []) hosts.add(h);
  const reasons = [...(into?.reasons ?? [])];
  if (req.reason !== undefined && reasons.length < 10) reasons.push(req.reason);
  return {
    full: (into?.full ?? false) || req.full,
    edsHostnames: hosts,
    firstEventAt: into?.firstEventAt ?? at,
    events: (into?.events ?? 0) + 1,
    reasons,
  };
}

/** Time source and timers, injectable so tests run without waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface DebouncerOptions {
  readonly afterMs: number;
  readonly maxMs: number;
  /** Runs one merged push; the next starts only after it settles. */
  readonly push: (merged: MergedPush) => Promise<void>;
  readonly clock?: Clock;
  readonly log?: Logger;
}

export class Debouncer {
  readonly #opts: DebouncerOptions;
  readonly #clock: Clock;
  #pending: MergedPush | undefined;
  #lastEventAt = 0;
  #timer: unknown;
  #pushing = false;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(opts: DebouncerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
  }

  /** Adds a request; the push happens later, merged with whatever else arrives. */
  request(req: PushRequest): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    this.#pending = mergePush(this.#pending, req, now);
    this.#lastEventAt = now;
    if (this.#timer === undefined && !this.#pushing) this.#arm(this.#opts.afterMs);
  }

  /** Resolves once nothing is pending or pushing (for tests and orderly shutdown). */
  idle(): Promise<void> {
    if (this.#pending === undefined && !this.#pushing) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drops what is pending and stops the timer; a push in flight finishes. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
    if (!this.#pushing) this.#wakeIdle();
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.#check();
      },
      Math.max(0, ms),
    );
  }

  #check(): void {
    const pending = this.#pending;
    if (pending === undefined || this.#closed) return;
    const now = this.#clock.now();
    const sinceFirst = now - pending.firstEventAt;
    const quiet = now - this.#lastEventAt;
    if (quiet >= this.#opts.afterMs || sinceFirst >= this.#opts.maxMs) {
      this.#run(pending, quiet, sinceFirst);
      return;
    }
    this.#arm(Math.min(this.#opts.afterMs - quiet, this.#opts.maxMs - sinceFirst));
  }

  #run(merged: MergedPush, quiet: number, sinceFirst: number): void {
    this.#pending = undefined;
    this.#pushing = true;
    this.#opts.log?.debug("push debounce stable", {
      events: merged.events,
      full: merged.full,
      quietMs: Math.round(quiet),
      sinceFirstMs: Math.round(sinceFirst),
      forced: quiet < this.#opts.afterMs,
      reasons: merged.reasons.join(","),
    });
    void this.#opts
      .push(merged)
      .catch((err: unknown) => (this.#opts.log ?? silentLogger).error("push failed", { error: err }))
      .finally(() => {
        this.#pushing = false;
        // Events that arrived during the push are debounced from their own timestamps.
        if (this.#pending !== undefined && !this.#closed) this.#check();
        else this.#wakeIdle();
      });
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
