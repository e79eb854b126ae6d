/**
 * Outlier detection as Envoy does it for Istio's defaults: an endpoint that fails this many
 * times in a row (connect failures, failed TLS handshakes, 502/503/504) is ejected from load
 * balancing for a base time multiplied by how often it was ejected before (the back-off), and
 * never more than the allowed share of a cluster's endpoints at once (at least one may go).
 */

/** Tunables; the defaults are Istio's (DestinationRule outlierDetection) and Envoy's. */
export interface OutlierOptions {
  /** Consecutive gateway failures that eject an endpoint (Istio's consecutive5xxErrors: 5). */
  readonly consecutiveFailures?: number;
  /** First ejection's length; the n-th ejection lasts n times this (Envoy's base_ejection_time: 30 s). */
  readonly baseEjectionMs?: number;
  /** Share of a cluster's endpoints that may be ejected at once, percent; at least one always may (10). */
  readonly maxEjectionPercent?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
}

/** What /clusters shows about one endpoint's outlier state. */
export interface OutlierState {
  readonly ejected: boolean;
  readonly consecutiveFailures: number;
  readonly ejections: number;
  /** When the current ejection ends (ms since epoch), 0 when not ejected. */
  readonly ejectedUntil: number;
  /** The last failure's reason, "" if none. */
  readonly lastFailure: string;
}

interface HostState {
  consecutive: number;
  ejections: number;
  ejectedUntil: number;
  lastFailure: string;
}

const key = (cluster: string, host: string) => `${cluster}\u0000${host}`;

export class OutlierDetector {
  readonly #consecutive: number;
  readonly #baseMs: number;
  readonly #maxPercent: number;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostState>();

  constructor(opts: OutlierOptions = {}) {
    this.#consecutive = opts.consecutiveFailures ?? 5;
    this.#baseMs = opts.baseEjectionMs ?? 30_000;
    this.#maxPercent = opts.maxEjectionPercent ?? 10;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Records a failure of `host` (an `address:port`) in `cluster` with `clusterSize` endpoints.
   * Returns true when this failure ejected the host.
   */
  failure(cluster: string, host: string, reason: string, clusterSize: number): boolean {
    const k = key(cluster, host);
    let s = this.#hosts.get(k);
    if (s === undefined) {
      s = { consecutive: 0, ejections: 0, ejectedUntil: 0, lastFailure: "" };
      this.#hosts.set(k, s);
    }
    s.consecutive++;
    s.lastFailure = reason;
    const now = this.#now();
    if (s.ejectedUntil > now || s.consecutive < this.#consecutive) return false;
    const allowed = Math.max(1, Math.floor((clusterSize * this.#maxPercent) / 100));
    if (this.#ejectedIn(cluster, now) >= allowed) return false;
    s.ejections++;
    s.ejectedUntil = now + this.#baseMs * s.ejections;
    s.consecutive = 0;
    return true;
  }

  /** Records a success: the consecutive count starts again. The ejection count decays only by time served. */
  success(cluster: string, host: string): void {
    const s = this.#hosts.get(key(cluster, host));
    if (s !== undefined) s.consecutive = 0;
  }

  /** Whether `host` is currently out of load balancing. */
  isEjected(cluster: string, host: string): boolean {
    const s = this.#hosts.get(key(cluster, host));
    return s !== undefined && s.ejectedUntil > this.#now();
  }

  state(cluster: string, host: string): OutlierState {
    const s = this.#hosts.get(key(cluster, host));
    if (s === undefined)
      return { ejected: false, consecutiveFailures: 0, ejections: 0, ejectedUntil: 0, lastFailure: "" };
    const ejected = s.ejectedUntil > this.#now();
    return {
      ejected,
      consecutiveFailures: s.consecutive,
      ejections: s.ejections,
      ejectedUntil: ejected ? s.ejectedUntil : 0,
      lastFailure: s.lastFailure,
    };
  }

  #ejectedIn(cluster: string, now: number): number {
    let n = 0;
    const prefix = `${cluster}\u0000`;
    for (const [k, s] of this.#hosts) if (k.startsWith(prefix) && s.ejectedUntil > now) n++;
    return n;
  }
}
