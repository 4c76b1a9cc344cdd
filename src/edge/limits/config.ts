// The `rate_limit` and `conn_limit` keys of a listener and of a route (nginx limit_req and
// limit_conn, kept in HAProxy-style tables: src/core/limits.ts). L4 tcp listeners take
// `conn_limit` keyed by client (src/l4/config.ts).
import { type Checker, integer, isMapping, type Mapping, type PathSegment, type Read } from "../../config/checker.ts";

/** What a limit counts by: the client address (a PROXY header's when the listener accepts one),
 * a request header's value, or a cookie's. A request without the header or cookie is not limited
 * (as nginx, whose empty key is not accounted). */
export type LimitKey = { kind: "client" } | { kind: "header"; name: string } | { kind: "cookie"; name: string };

export interface RateLimitConfig {
  /** Requests per second (10/m is 1/6). */
  rate: number;
  /** Requests above the rate let through at once (nginx burst with nodelay); more are refused. */
  burst: number;
  key: LimitKey;
  /** Keys the table tracks. */
  size: number;
}

export interface ConnLimitConfig {
  /** Requests in flight per key at most (connections, on a tcp listener). */
  max: number;
  key: LimitKey;
  size: number;
}

export interface ClientLimits {
  rate: RateLimitConfig | null;
  conn: ConnLimitConfig | null;
}

export const CLIENT_LIMIT_KEYS = ["rate_limit", "conn_limit"] as const;
export const NO_CLIENT_LIMITS: ClientLimits = { rate: null, conn: null };

const RATE_KEYS = ["rate", "burst", "key", "size"] as const;
const CONN_KEYS = ["max", "key", "size"] as const;
const RATE = /^([0-9]+(?:\.[0-9]+)?)\s*r?\/(s|m)$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DEFAULT_SIZE = 100_000;
// 20 bytes a key: 40 MB, most of the data plane's 64 MB heap, which every table shares.
const MAX_SIZE = 2_000_000;
const MAX_RATE = 1_000_000; // per second
const MIN_RATE = 0.001; // the tables keep milli-requests per second

/** "100/s", "10/m" (nginx's "100r/s" too), as requests per second. */
const rate: Read<number> = (c, value, path) => {
  const m = typeof value === "string" ? RATE.exec(value.trim()) : null;
  const perSecond = m ? Number(m[1]) / (m[2] === "m" ? 60 : 1) : NaN;
  if (perSecond >= MIN_RATE && perSecond <= MAX_RATE) return perSecond;
  return c.expected(path, `a rate like 100/s or 30/m (at most ${MAX_RATE}/s)`, value);
};

function limitKey(clientOnly: boolean): Read<LimitKey> {
  const what = clientOnly ? "client (the only key of a tcp listener)" : "client, header:NAME or cookie:NAME";
  return (c, value, path) => {
    if (value === "client") return { kind: "client" };
    const m = !clientOnly && typeof value === "string" ? /^(header|cookie):(.+)$/.exec(value) : null;
    if (m && TOKEN.test(m[2])) return m[1] === "header" ? { kind: "header", name: m[2].toLowerCase() } : { kind: "cookie", name: m[2] };
    return c.expected(path, what, value);
  };
}

function readRate(c: Checker, m: Mapping, p: PathSegment[]): RateLimitConfig | null {
  const value = m.rate_limit;
  if (value === undefined || value === null) return null;
  const rp = [...p, "rate_limit"];
  const rm = c.mapping(value, rp, "a mapping with rate (and burst, key, size)");
  if (!rm) return null;
  c.checkKeys(rm, rp, RATE_KEYS);
  const perSecond = c.required(rm, rp, "rate", rate);
  const out = {
    burst: c.optional(rm, rp, "burst", integer(0, 1_000_000), 0),
    key: c.optional(rm, rp, "key", limitKey(false), { kind: "client" } as LimitKey),
    size: c.optional(rm, rp, "size", integer(8, MAX_SIZE), DEFAULT_SIZE),
  };
  return perSecond === undefined ? null : { rate: perSecond, ...out };
}

function readConn(c: Checker, m: Mapping, p: PathSegment[], clientOnly: boolean): ConnLimitConfig | null {
  const value = m.conn_limit;
  if (value === undefined || value === null) return null;
  const cp = [...p, "conn_limit"];
  const cm = c.mapping(value, cp, "a mapping with max (and key, size)");
  if (!cm) return null;
  c.checkKeys(cm, cp, CONN_KEYS);
  const max = c.required(cm, cp, "max", integer(1, 1_000_000));
  const key = c.optional(cm, cp, "key", limitKey(clientOnly), { kind: "client" } as LimitKey);
  const size = c.optional(cm, cp, "size", integer(8, MAX_SIZE), DEFAULT_SIZE);
  return max === undefined ? null : { max, key, size };
}

/** The limits of a listener or route mapping `m` at path `p`. */
export function readClientLimits(c: Checker, m: Mapping, p: PathSegment[]): ClientLimits {
  if (!isMapping(m)) return NO_CLIENT_LIMITS;
  return { rate: readRate(c, m, p), conn: readConn(c, m, p, false) };
}

/** A tcp listener's `conn_limit` (connections per client address). */
export function readL4ConnLimit(c: Checker, m: Mapping, p: PathSegment[]): ConnLimitConfig | null {
  return readConn(c, m, p, true);
}
