// A histogram with fixed bucket bounds, cheap enough for the request path: observe() is a short
// scan over a few bounds and two additions, no allocation. Prometheus renders it (src/control/metrics.ts).

/** Upper bounds in milliseconds for connect and response times: 1 ms to 10 s. */
export const LATENCY_BOUNDS_MS: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class Histogram {
  /** counts[i]: observations <= bounds[i] and > bounds[i - 1] (not cumulative); the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = LATENCY_BOUNDS_MS) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}
