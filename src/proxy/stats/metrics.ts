/**
 * The sidecar's request metrics in Istio's names (istio_requests_total,
 * istio_request_duration_milliseconds), rendered in Prometheus text format on 15090.
 */

export type Labels = Readonly<Record<string, string>>;

const escapeValue = (v: string): string =>
  /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v;

const labelKeyUncached = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}="${escapeValue(String(labels[k]))}"`)
    .join(",");

/** Label sets repeat (one per peer and status): their rendered keys are kept, by names and values in given order. */
const labelKeys = new Map<string, string>();
const labelKeysLimit = 10_000;

const labelKey = (labels: Labels): string => {
  let raw = "";
  for (const k in labels) raw += `${k}\u0000${labels[k]}\u0001`;
  let key = labelKeys.get(raw);
  if (key === undefined) {
    key = labelKeyUncached(labels);
    if (labelKeys.size >= labelKeysLimit) labelKeys.clear();
    labelKeys.set(raw, key);
  }
  return key;
};

/** Request duration buckets in milliseconds, as Istio's. */
const durationBuckets = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

/** Counters and histograms keyed by label set. Not thread-shared: one per sidecar process. */
export class RequestMetrics {
  readonly #requests = new Map<string, number>();
  readonly #durations = new Map<string, HistogramSeries>();
  readonly #counters = new Map<string, Map<string, number>>();

  /** Records one finished request. */
  recordRequest(labels: Labels, durationMs: number): void {
    const key = labelKey(labels);
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let h = this.#durations.get(key);
    if (h === undefined) {
      h = { counts: durationBuckets.map(() => 0), sum: 0, count: 0 };
      this.#durations.set(key, h);
    }
    for (let i = 0; i < durationBuckets.length; i++)
      if (durationMs <= (durationBuckets[i] ?? 0)) h.counts[i] = (h.counts[i] ?? 0) + 1;
    h.sum += durationMs;
    h.count++;
  }

  /** Adds to a free-form counter (e.g. envoy-style `cluster.<name>.upstream_rq_retry`). */
  inc(name: string, labels: Labels = {}, by = 1): void {
    let series = this.#counters.get(name);
    if (series === undefined) {
      series = new Map();
      this.#counters.set(name, series);
    }
    const key = labelKey(labels);
    series.set(key, (series.get(key) ?? 0) + by);
  }

  /** The value of istio_requests_total for exactly these labels (0 if never recorded). */
  requestCount(labels: Labels): number {
    return this.#requests.get(labelKey(labels)) ?? 0;
  }

  /** Every istio_requests_total series: label string → count. */
  requestSeries(): ReadonlyMap<string, number> {
    return this.#requests;
  }

  /** Prometheus text exposition. */
  render(): string {
    const out: string[] = ["# TYPE istio_requests_total counter"];
    for (const [k, v] of this.#requests) out.push(`istio_requests_total{${k}} ${v}`);
    out.push("# TYPE istio_request_duration_milliseconds histogram");
    for (const [k, h] of this.#durations) {
      const sep = k === "" ? "" : ",";
      for (const [i, b] of durationBuckets.entries())
        out.push(`istio_request_duration_milliseconds_bucket{${k}${sep}le="${b}"} ${h.counts[i]}`);
      out.push(`istio_request_duration_milliseconds_bucket{${k}${sep}le="+Inf"} ${h.count}`);
      out.push(`istio_request_duration_milliseconds_sum{${k}} ${h.sum}`);
      out.push(`istio_request_duration_milliseconds_count{${k}} ${h.count}`);
    }
    for (const [name, series] of this.#counters) {
      out.push(`# TYPE ${name} counter`);
      for (const [k, v] of series) out.push(k === "" ? `${name} ${v}` : `${name}{${k}} ${v}`);
    }
    return `${out.join("\n")}\n`;
  }
}
