/**
 * Endpoint choice for one Envoy cluster. Least request is Istio's default: among healthy
 * endpoints, those with the fewest requests in flight, ties broken in turn (so sequential
 * requests alternate across endpoints, as the guide's v1/v2 toggle shows). Round robin and
 * random are the other policies a DestinationRule can ask for.
 */
import type { Endpoint, LbPolicy } from "../config/types.js";

export const endpointKey = (e: { address: string; port: number }): string => `${e.address}:${e.port}`;

export class Balancer {
  readonly #policy: LbPolicy;
  readonly #active = new Map<string, number>();
  #cursor = 0;

  constructor(policy: LbPolicy) {
    this.#policy = policy;
  }

  get policy(): LbPolicy {
    return this.#policy;
  }

  /**
   * Picks an endpoint, preferring healthy, not `ejected` ones not in `exclude` (hosts a retry
   * already tried); falls back to excluded ones, then ejected healthy ones, then to any. Undefined only when `endpoints` is empty.
   */
  pick(
    endpoints: readonly Endpoint[],
    exclude?: ReadonlySet<string>,
    ejected?: (e: Endpoint) => boolean,
  ): Endpoint | undefined {
    const healthy = endpoints.filter((e) => e.healthy);
    // Outlier-ejected endpoints are used only when nothing else is left (Envoy's panic mode).
    const usable = ejected ? healthy.filter((e) => !ejected(e)) : healthy;
    const fresh = exclude ? usable.filter((e) => !exclude.has(endpointKey(e))) : usable;
    const pool = fresh.length > 0 ? fresh : usable.length > 0 ? usable : healthy.length > 0 ? healthy : endpoints;
    if (pool.length === 0) return undefined;
    if (this.#policy === "RANDOM") return pool[Math.floor(Math.random() * pool.length)];
    let candidates = pool;
    if (this.#policy === "LEAST_REQUEST") {
      const min = Math.min(...pool.map((e) => this.#active.get(endpointKey(e)) ?? 0));
      candidates = pool.filter((e) => (this.#active.get(endpointKey(e)) ?? 0) === min);
    }
    const chosen = candidates[this.#cursor % candidates.length];
    this.#cursor = (this.#cursor + 1) % 1_000_000_007;
    return chosen;
  }

  /** Marks a request to `e` as started; call the returned function exactly once when it ends. */
  begin(e: Endpoint): () => void {
    const key = endpointKey(e);
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.#active.get(key) ?? 1) - 1;
      if (n <= 0) this.#active.delete(key);
      else this.#active.set(key, n);
    };
  }

  /** Requests in flight to `e` (for /clusters). */
  active(e: Endpoint): number {
    return this.#active.get(endpointKey(e)) ?? 0;
  }
}
