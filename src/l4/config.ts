// The L4 proxy's config: tcp and udp listeners (their pool, or SNI routes for TLS passthrough,
// PROXY protocol in, timeouts), and a pool's L4 keys (`send_proxy`). The edge's listener reader
// hands tcp/udp listener mappings here (src/edge/config.ts ListenerReader); the schema registers
// both (src/control/schema.ts).
import { OVERLOAD_KEY, type OverloadConfig, readOverload } from "../core/overload.ts";
import {
  boolean, type Checker, choice, duration, integer, type Mapping, oneOrMany, type PathSegment, type Read, reference,
} from "../config/checker.ts";
import type { HostPort } from "../config/address.ts";
import { type AccessLogConfig, readListenerAccessLog } from "../log/config.ts";
import { type ConnLimitConfig, readL4ConnLimit } from "../edge/limits/config.ts";
import { ACCESS_KEYS, type AccessRules, readAccessRules } from "../edge/access/acl.ts";

/** A TLS passthrough route: the pool for ClientHellos naming one of `sni` (null: any, the default). */
export interface SniRoute {
  /** Lowercase names; "*.example.com" matches any name ending in ".example.com". */
  sni: string[] | null;
  pool: string;
}

export interface L4ListenerConfig {
  name: string;
  bind: HostPort;
  protocol: "tcp" | "udp";
  /** Set in a worker process (src/control/workers/): a tcp port shared with the other workers
   * (SO_REUSEPORT). Never read from the file. */
  reusePort?: boolean;
  /** The pool of a listener without routes. */
  pool: string | null;
  /** TLS passthrough routes (tcp): first match wins. Empty when the listener names its pool. */
  routes: SniRoute[];
  /** What a connection whose first bytes are no ClientHello gets: the default route, or a close. */
  badClientHello: "default" | "close";
  /** Read a PROXY v1/v2 header first; a connection without one is closed. */
  acceptProxy: boolean;
  /** Bound on the PROXY header and ClientHello reading. */
  prereadTimeoutMs: number;
  /** No bytes either way for this long ends the session (nginx proxy_timeout). */
  idleTimeoutMs: number;
  /** A session's whole life, 0: unbounded. */
  sessionTimeoutMs: number;
  maxConnections: number;
  /** udp: replies that end a session (nginx proxy_responses); 0: only the idle timeout does. */
  responses: number;
  /** tcp: new connections are closed while the process is overloaded (src/core/overload.ts). */
  overload?: OverloadConfig;
  /** src/log: null for `off`; absent, the top-level `access_log` applies (schema.ts). */
  accessLog?: AccessLogConfig | null;
  /** tcp: connections per client address at most (src/edge/limits/); over it a new one is closed. */
  connLimit: ConnLimitConfig | null;
  /** allow / deny by CIDR: a refused client is closed at accept (tcp) or its datagrams dropped (udp). */
  access: AccessRules | null;
}

export interface PoolL4Options {
  /** PROXY protocol header sent first on every connection to a server. */
  sendProxy: "v1" | "v2" | null;
}

const L4_LISTENER_KEYS = [
  "name", "bind", "protocol", "pool", "routes", "bad_client_hello", "accept_proxy", "preread_timeout", "idle_timeout",
  "session_timeout", "max_connections", "responses", OVERLOAD_KEY, "access_log", "conn_limit", ...ACCESS_KEYS,
] as const;
const ROUTE_KEYS = ["sni", "pool"] as const;
export const POOL_L4_KEYS = ["send_proxy"] as const;
const SNI_NAME = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

const sniName: Read<string> = (c, value, path) => {
  const name = typeof value === "string" ? value.toLowerCase() : "";
  if (SNI_NAME.test(name)) return name;
  return c.expected(path, `a server name like "api.example.com" or "*.example.com"`, value);
};

/** Reads one tcp or udp listener; `poolNames` are the pools declared in the file. */
export function readL4Listener(
  c: Checker, m: Mapping, p: PathSegment[], base: { name: string; bind: HostPort }, protocol: "tcp" | "udp",
  poolNames: readonly string[],
): L4ListenerConfig {
  c.checkKeys(m, p, L4_LISTENER_KEYS);
  const pool = c.optional(m, p, "pool", reference("pool", poolNames), null);
  const routes = m.routes === undefined ? [] : readSniRoutes(c, m.routes, [...p, "routes"], poolNames);
  if (protocol === "udp" && routes.length > 0) c.fail([...p, "routes"], "SNI routes are for tcp listeners (TLS passthrough)", "key");
  if (pool !== null && routes.length > 0) c.fail([...p, "routes"], "expected pool or routes, not both", "key");
  if (protocol === "udp" && m.conn_limit !== undefined) c.fail([...p, "conn_limit"], "conn_limit is for tcp listeners (udp has no connections)", "key");
  if (pool === null && routes.length === 0 && m.pool === undefined && m.routes === undefined) {
    c.fail(p, `expected a ${protocol} listener with pool (or routes for TLS passthrough)`);
  }
  const overload = readOverload(c, m, p);
  if (overload && protocol === "udp") c.fail([...p, OVERLOAD_KEY], "overload is for tcp and http listeners", "key");
  return {
    ...base,
    ...(overload && protocol === "tcp" ? { overload } : {}),
    protocol,
    pool,
    routes,
    badClientHello: c.optional(m, p, "bad_client_hello", choice(["default", "close"] as const), "close"),
    acceptProxy: c.optional(m, p, "accept_proxy", boolean, false),
    prereadTimeoutMs: c.optional(m, p, "preread_timeout", duration({ zeroAllowed: false }), 5_000),
    idleTimeoutMs: c.optional(m, p, "idle_timeout", duration({ zeroAllowed: false }), protocol === "udp" ? 30_000 : 600_000),
    sessionTimeoutMs: c.optional(m, p, "session_timeout", duration({ zeroAllowed: true }), 0),
    maxConnections: c.optional(m, p, "max_connections", integer(1, 1_000_000), 10_000),
    responses: protocol === "udp" ? c.optional(m, p, "responses", integer(0, 1_000_000), 0) : 0,
    ...readListenerAccessLog(c, m, p),
    connLimit: readL4ConnLimit(c, m, p),
    access: readAccessRules(c, m, p),
  };
}

function readSniRoutes(c: Checker, value: unknown, p: PathSegment[], poolNames: readonly string[]): SniRoute[] {
  const routes: SniRoute[] = [];
  c.list(value, p, "a non-empty list of routes with sni and pool").forEach((item, i) => {
    const rp = [...p, i];
    const m = c.mapping(item, rp, "a route mapping with pool (and sni)");
    if (m === undefined) return;
    c.checkKeys(m, rp, ROUTE_KEYS);
    const pool = c.required(m, rp, "pool", reference("pool", poolNames));
    const sni = c.optional(m, rp, "sni", oneOrMany("server names", sniName), null);
    if (pool !== undefined) routes.push({ sni, pool });
  });
  return routes;
}

export function readPoolL4(c: Checker, m: Mapping, p: PathSegment[]): PoolL4Options {
  return { sendProxy: c.optional(m, p, "send_proxy", choice(["v1", "v2"] as const), null) };
}
