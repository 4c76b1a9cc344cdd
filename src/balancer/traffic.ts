// What the sessions sent to one server carried, counted by the protocol part that ran them (the
// edge) and read by metrics: bytes each way, answers by status class, connect and response times.
import { Histogram } from "../core/histogram.ts";

export class Traffic {
  /** Bytes of requests sent to the server (client to server). */
  bytesIn = 0;
  /** Bytes of responses passed on to clients (server to client). */
  bytesOut = 0;
  /** Responses by status class: index 1 is 1xx ... 5 is 5xx (a status is 3 digits, so 10 places). */
  readonly responses = new Float64Array(10);
  /** New connections' connect times, ms. */
  readonly connectTime = new Histogram();
  /** From the request's arrival to the response head, ms. */
  readonly responseTime = new Histogram();
}
