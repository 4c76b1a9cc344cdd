// What the L4 proxy counts, per kind: refused or failed sessions and why. Read by the CLI and,
// later, by the admin API and metrics.
export const L4_ERROR_KINDS = [
  "no_route", "no_server", "queue_timeout", "shed", "overloaded", "upstream_refused", "upstream_failed", "upstream_timeout",
  "too_many_connections", "proxy_header_missing", "proxy_header_too_long", "proxy_header_malformed",
  "bad_client_hello", "preread_timeout", "idle_timeout", "session_timeout", "conn_limited",
  "denied", // allow/deny refused the client
] as const;
export type L4ErrorKind = typeof L4_ERROR_KINDS[number];

export class L4Stats {
  sessions = 0;
  retries = 0;
  readonly errors = Object.fromEntries(L4_ERROR_KINDS.map((k) => [k, 0])) as Record<L4ErrorKind, number>;
}
