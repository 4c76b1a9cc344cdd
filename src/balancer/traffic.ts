// What the sessions sent to one server carried, counted by the protocol part that ran them (the
// edge) and read by metrics: bytes each way, answers by status class, connect and response times.
// The time histograms are the pool's, shared by its servers (as Envoy keeps them per cluster): a
// histogram per server would be 16 series each, most of a 1000-server scrape.
import { Histogram } from "../core/histogram.ts";

export class Traffic {
  /** Bytes of requests sent to the server (client to server). */
  bytesIn = 0;
  /** Bytes of responses passed on to clients (server to client). */
  bytesOut = 0;
  /** Responses by status class: index 1 is 1xx ... 5 is 5xx (a status is 3 digits, so 10 places). */
  readonly responses = new Float64Array(10);
  constructor(readonly latency: PoolLatency) {}

  /** New connections' connect times, ms (the pool's histogram). */
  get connectTime(): Histogram { return this.latency.connectTime; }
  /** From the request's arrival to the response head, ms (the pool's histogram). */
  get responseTime(): Histogram { return this.latency.responseTime; }
}

/** A pool's connect and response time histograms, which its servers' Traffic observe into. */
export class PoolLatency {
  readonly connectTime = new Histogram();
  readonly responseTime = new Histogram();
}
