// Counters the edge keeps: per server in Server, per kind of failure here. Read by the CLI and,
// later, by the admin API and Prometheus exporter.
export const ERROR_KINDS = ["no_route", "no_server", "upstream_refused", "upstream_failed", "upstream_timeout"] as const;
export type ErrorKind = typeof ERROR_KINDS[number];

export class EdgeStats {
  requests = 0;
  readonly errors: Record<ErrorKind, number> = {
    no_route: 0, no_server: 0, upstream_refused: 0, upstream_failed: 0, upstream_timeout: 0,
  };
}
