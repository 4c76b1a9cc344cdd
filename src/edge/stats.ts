// Counters the edge keeps: per server in Server, per kind of failure here. Read by the CLI and,
// later, by the admin API and Prometheus exporter.
export const ERROR_KINDS = [
  "no_route", "no_server", "upstream_refused", "upstream_failed", "upstream_timeout", "bad_request",
  "header_too_large", "body_too_large", "request_timeout", "queue_timeout", "too_many_connections", "bad_proxy_header",
] as const;
export type ErrorKind = typeof ERROR_KINDS[number];

import { H2Stats } from "./h2/stats.ts";

export class EdgeStats {
  requests = 0;
  readonly h2 = new H2Stats();
  retries = 0;
  readonly errors = Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>;
}
