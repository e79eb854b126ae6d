/**
 * Counters and timings of the xDS server, as plain numbers for the /metrics page (which the
 * discovery part renders in Prometheus format under Istio's metric names).
 */

/** A bounded sample of durations with count and sum, enough for p50/p99 and a Prometheus summary. */
export class DurationSamples {
  count = 0;
  sumMs = 0;
  readonly #recent: number[] = [];
  readonly #limit: number;
  constructor(limit = 4096) {
    this.#limit = limit;
  }
  observe(ms: number): void {
    this.count++;
    this.sumMs += ms;
    this.#recent.push(ms);
    if (this.#recent.length > this.#limit) this.#recent.shift();
  }
  /** The q-quantile (0..1) of the recent samples, or 0 when there are none. */
  quantile(q: number): number {
    if (this.#recent.length === 0) return 0;
    const sorted = [...this.#recent].sort((a, b) => a - b);
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[i] ?? 0;
  }
}

/** Plain-number view of XdsMetrics at one moment. */
export interface XdsMetricsSnapshot {
  /** Responses sent, by short type (CDS/EDS/LDS/RDS): Istio's `pilot_xds_pushes{type}`. */
  readonly pushesByType: Readonly<Record<string, number>>;
  /** NACKs received, by short type: Istio's `pilot_total_xds_rejects{type}`. */
  readonly nacksByType: Readonly<Record<string, number>>;
  /** Currently connected ADS streams: Istio's `pilot_xds`. */
  readonly connectedProxies: number;
  /** Push cycles run (each serving every affected proxy) and their total/last wall time. */
  readonly pushCycles: number;
  readonly pushTimeSumMs: number;
  readonly pushTimeLastMs: number;
  /** Time from the triggering registry event to the proxy's ACK: Istio's `pilot_proxy_convergence_time`. */
  readonly convergenceCount: number;
  readonly convergenceSumMs: number;
  readonly convergenceP50Ms: number;
  readonly convergenceP99Ms: number;
}

export class XdsMetrics {
  readonly pushesByType = new Map<string, number>();
  readonly nacksByType = new Map<string, number>();
  readonly pushTime = new DurationSamples(1024);
  readonly convergence = new DurationSamples();
  connectedProxies = 0;

  countPush(type: string): void {
    this.pushesByType.set(type, (this.pushesByType.get(type) ?? 0) + 1);
  }
  countNack(type: string): void {
    this.nacksByType.set(type, (this.nacksByType.get(type) ?? 0) + 1);
  }
  snapshot(): XdsMetricsSnapshot {
    return {
      pushesByType: Object.fromEntries(this.pushesByType),
      nacksByType: Object.fromEntries(this.nacksByType),
      connectedProxies: this.connectedProxies,
      pushCycles: this.pushTime.count,
      pushTimeSumMs: this.pushTime.sumMs,
      pushTimeLastMs: this.#lastPush,
      convergenceCount: this.convergence.count,
      convergenceSumMs: this.convergence.sumMs,
      convergenceP50Ms: this.convergence.quantile(0.5),
      convergenceP99Ms: this.convergence.quantile(0.99),
    };
  }
  #lastPush = 0;
  observePush(ms: number): void {
    this.#lastPush = ms;
    this.pushTime.observe(ms);
  }
}
