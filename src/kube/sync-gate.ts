/**
 * The "has synced" flag of an informer or anything built from informers, with waiting on it:
 * it opens once and stays open, releasing every waiter.
 */

/** One-way gate: open() releases every wait(); a wait() after open() resolves at once. */
export class SyncGate {
  #open = false;
  readonly #waiters = new Set<() => void>();

  /** True once open() has been called. */
  isOpen(): boolean {
    return this.#open;
  }

  /** Opens the gate (idempotent) and releases every waiter. */
  open(): void {
    if (this.#open) return;
    this.#open = true;
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves once open, or when `signal` aborts (then isOpen() tells which). */
  wait(signal: AbortSignal): Promise<void> {
    if (this.#open || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
