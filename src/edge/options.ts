// Config for the edge's traffic handling: per listener (TLS, limits, request ids) and the HTTP
// keys of a pool (retries as nginx proxy_next_upstream, sticky cookies, read timeout).
import { parseSize } from "../config/size.ts";
import { OVERLOAD_KEY, type OverloadConfig, readOverload } from "../core/overload.ts";
import {
  boolean, Checker, choice, duration, integer, type Mapping, oneOrMany, type PathSegment, type Read, string, valueOf,
} from "../config/checker.ts";
import type { BalancerPoolConfig } from "../balancer/config.ts";
import type { PoolL4Options } from "../l4/config.ts";
import { type AccessLogConfig, readListenerAccessLog } from "../log/config.ts";
import { CLIENT_LIMIT_KEYS, type ClientLimits, readClientLimits } from "./limits/config.ts";

export const LISTENER_OPTION_KEYS = [
  "engine", "tls", "request_id", "max_connections", "max_header_size", "max_headers", "max_body_size",
  "header_timeout", "body_timeout", "keepalive_timeout", "http2", "accept_proxy", OVERLOAD_KEY, "access_log", ...CLIENT_LIMIT_KEYS,
] as const;
export const POOL_HTTP_KEYS = ["next_upstream", "next_upstream_tries", "next_upstream_timeout", "sticky", "read_timeout", "protocol"] as const;

export interface TlsFiles {
  cert: string;
  key: string;
  /** SNI names served by this certificate; empty for the default one. */
  serverNames: string[];
}

export interface ListenerOptions {
  tls: TlsFiles[] | null;
  /** HTTP/2: offered by ALPN on TLS listeners (default on); h2c with prior knowledge on plain
   * ones (default off), beside HTTP/1.1 on the same port. */
  http2: boolean;
  requestId: boolean;
  /** Read a PROXY v1/v2 header first (src/l4/proxy-accept.ts): its client is the client. */
  acceptProxy: boolean;
  /** Shed new requests while the process is overloaded (src/core/overload.ts); absent: never. */
  overload?: OverloadConfig;
  /** src/log: null for `off`; absent, the top-level `access_log` applies (schema.ts). */
  accessLog?: AccessLogConfig | null;
  /** Per-client `rate_limit` and `conn_limit` (src/edge/limits/). */
  clientLimits: ClientLimits;
  limits: {
    maxConnections: number;
    maxHeaderBytes: number;
    maxHeaderCount: number;
    maxBodyBytes: number;
    headerTimeoutMs: number;
    bodyTimeoutMs: number;
    idleTimeoutMs: number;
  };
}

export interface RetryPolicy {
  /** Attempts in all, first included; 0 means every server of the pool once. */
  tries: number;
  /** 0: no time bound. */
  timeoutMs: number;
  on: Set<"error" | "timeout">;
  statuses: Set<number>;
  nonIdempotent: boolean;
}

export interface StickyCookie {
  name: string;
  /** Remove the cookie from requests sent upstream (HAProxy `indirect`). */
  indirect: boolean;
  /** Mark responses that set it private to caches (HAProxy `nocache`). */
  nocache: boolean;
}

/** The limits a listener enforces (config: listeners[].max_*, *_timeout). */
export type ListenerLimits = ListenerOptions["limits"];

/** A pool config that carries the edge's part (the balancer's pools hand it back to the edge). */
export interface HttpPoolConfig extends BalancerPoolConfig {
  http: PoolHttpOptions;
  /** `send_proxy` (src/l4/config.ts), when the schema read it. */
  l4?: PoolL4Options;
}

/** A pool's HTTP options. */
export interface PoolHttpOptions {
  retry: RetryPolicy;
  sticky: StickyCookie | null;
  readTimeoutMs: number;
  /** What the pool speaks to its servers: HTTP/1.1, or HTTP/2 with prior knowledge (gRPC);
   * an h2 pool serves requests that arrive over HTTP/2. */
  protocol: "http1" | "h2";
}

const NEXT_UPSTREAM = ["error", "timeout", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off"] as const;

/** nginx sizes: 1024, "32k", "1m", "2g". */
const size = (max: number): Read<number> => (c, value, path) => {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max) return value;
  const n = typeof value === "string" ? parseSize(value) : null;
  if (n !== null && n <= max) return n;
  return c.expected(path, `a size like 32k, 1m or a byte count up to ${max}`, value);
};

function readTls(c: Checker, value: unknown, p: PathSegment[]): TlsFiles[] | null {
  const items = Array.isArray(value) ? value : [value];
  const out: TlsFiles[] = [];
  items.forEach((item, i) => {
    const ip = Array.isArray(value) ? [...p, i] : p;
    const m = c.mapping(item, ip, "a mapping with cert and key (PEM file paths)");
    if (!m) return;
    c.checkKeys(m, ip, ["cert", "key", "server_names"]);
    const cert = c.required(m, ip, "cert", string("a PEM certificate file path"));
    const key = c.required(m, ip, "key", string("a PEM private key file path"));
    const serverNames = c.optional(m, ip, "server_names", oneOrMany("server names", string("a server name")), [] as string[]);
    if (cert && key) out.push({ cert, key, serverNames: serverNames.map((n) => n.toLowerCase()) });
  });
  return out.length ? out : null;
}

// `engine` once chose between the socket path and a fetch()/Hono path, which was removed; the
// key stays readable so an old config gets a clear answer. `engine: socket` is still accepted.
function checkEngine(c: Checker, m: Mapping, p: PathSegment[]): void {
  const value = valueOf(m, "engine");
  if (value === undefined || value === "socket") return;
  if (value === "fetch") {
    c.fail([...p, "engine"], "the fetch engine was removed: the socket path serves every listener (remove this key)");
  } else {
    c.expected([...p, "engine"], "socket (the only engine; the key may be left out)", value);
  }
}

export function readListenerOptions(c: Checker, m: Mapping, p: PathSegment[]): ListenerOptions {
  checkEngine(c, m, p);
  const tls = m.tls === undefined || m.tls === null ? null : readTls(c, m.tls, [...p, "tls"]);
  const overload = readOverload(c, m, p);
  return {
    ...(overload ? { overload } : {}),
    tls,
    http2: c.optional(m, p, "http2", boolean, tls !== null),
    requestId: c.optional(m, p, "request_id", boolean, true),
    acceptProxy: c.optional(m, p, "accept_proxy", boolean, false),
    ...readListenerAccessLog(c, m, p),
    clientLimits: readClientLimits(c, m, p),
    limits: {
      maxConnections: c.optional(m, p, "max_connections", integer(1, 1_000_000), 10_000),
      maxHeaderBytes: c.optional(m, p, "max_header_size", size(1024 * 1024), 32 * 1024),
      maxHeaderCount: c.optional(m, p, "max_headers", integer(1, 10_000), 100),
      maxBodyBytes: c.optional(m, p, "max_body_size", size(2 ** 50), 0),
      headerTimeoutMs: c.optional(m, p, "header_timeout", duration({ zeroAllowed: false }), 10_000),
      bodyTimeoutMs: c.optional(m, p, "body_timeout", duration({ zeroAllowed: false }), 60_000),
      idleTimeoutMs: c.optional(m, p, "keepalive_timeout", duration({ zeroAllowed: false }), 75_000),
    },
  };
}

export function readPoolHttp(c: Checker, m: Mapping, p: PathSegment[]): PoolHttpOptions {
  const tokens = c.optional(m, p, "next_upstream", oneOrMany("next_upstream conditions", choice(NEXT_UPSTREAM)), ["error", "timeout"] as string[]);
  const off = tokens.includes("off");
  const retry: RetryPolicy = {
    tries: off ? 1 : c.optional(m, p, "next_upstream_tries", integer(0, 100), 0),
    timeoutMs: c.optional(m, p, "next_upstream_timeout", duration({ zeroAllowed: true }), 0),
    on: new Set(tokens.filter((t) => t === "error" || t === "timeout") as ("error" | "timeout")[]),
    statuses: new Set(tokens.filter((t) => t.startsWith("http_")).map((t) => Number(t.slice(5)))),
    nonIdempotent: tokens.includes("non_idempotent"),
  };
  let sticky: StickyCookie | null = null;
  if (m.sticky !== undefined && m.sticky !== null) {
    const sp = [...p, "sticky"];
    const sm = c.mapping(m.sticky, sp, "a mapping with cookie (and indirect, nocache)");
    if (sm) {
      c.checkKeys(sm, sp, ["cookie", "indirect", "nocache"]);
      const name = c.required(sm, sp, "cookie", string("a cookie name"));
      if (name && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) c.expected([...sp, "cookie"], "a cookie name (token characters)", name);
      else if (name) {
        sticky = { name, indirect: c.optional(sm, sp, "indirect", boolean, true), nocache: c.optional(sm, sp, "nocache", boolean, true) };
      }
    }
  }
  const readTimeoutMs = c.optional(m, p, "read_timeout", duration({ zeroAllowed: false }), 60_000);
  const protocol = c.optional(m, p, "protocol", choice(["http1", "h2"] as const), "http1");
  return { retry, sticky, readTimeoutMs, protocol };
}
