// Counters the edge keeps per listener (per server in Server.traffic): requests, connections,
// bytes, responses by status class, failures by kind. Read by the admin API's /metrics.
export const ERROR_KINDS = [
  "no_route", "no_server", "upstream_refused", "upstream_failed", "upstream_timeout", "bad_request",
  "header_too_large", "body_too_large", "request_timeout", "queue_timeout", "too_many_connections", "bad_proxy_header",
  "shed", "overloaded",
  "rate_limited", "conn_limited",
  // Access rules (src/edge/access): allow/deny refused (403), basic auth failed (401) or its checks queue full (503).
  "denied", "unauthorized", "auth_busy",
] as const;
export type ErrorKind = typeof ERROR_KINDS[number];

import { H2Stats } from "./h2/stats.ts";

export class EdgeStats {
  requests = 0;
  readonly h2 = new H2Stats();
  retries = 0;
  /** Connections accepted. */
  connections = 0;
  /** Bytes received from clients, and sent to them in responses passed on from servers. */
  bytesIn = 0;
  bytesOut = 0;
  /** Responses by status class (index 1 is 1xx ... 5 is 5xx), Fulcrum's own error answers too. */
  readonly responses = new Float64Array(10);
  readonly errors = Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>;
}

/** Per route: requests it matched and their responses by status class (Fulcrum's own errors too). */
export class RouteStats {
  requests = 0;
  /** Refused by allow/deny (the listener's or the route's), and by basic auth. */
  denied = 0;
  unauthorized = 0;
  readonly responses = new Float64Array(10);
}
