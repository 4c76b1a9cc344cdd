// The edge's per-client limits at run time: a listener's or a route's `rate_limit` and
// `conn_limit` over tables in the data plane (src/core/limits.ts), one kernel call per decision.
import type { DataPlane } from "../../core/dataplane.ts";
import { LIMIT_FULL, LIMIT_OVER, LimitTable, type LimitTableStats } from "../../core/limits.ts";
import type { HeaderLookup } from "../../http1/head.ts";
import { cookieValue } from "../affinity.ts";
import type { ClientLimits, ConnLimitConfig, LimitKey, RateLimitConfig } from "./config.ts";
import { errorResponseBytes } from "../http1/heads-out.ts";

/** The key's value for a request, or null when it has none (then the limit does not apply). */
function keyOf(key: LimitKey, client: string, headers: HeaderLookup | null): string | null {
  if (key.kind === "client") return client;
  if (!headers) return null;
  const value = key.kind === "header" ? headers.get(key.name) : cookieValue(headers.get("cookie"), key.name);
  return value === null || value === "" ? null : value;
}

/** What conn limits admitted for one request (or tcp connection): at most a listener's and a
 * route's, released when it ends. Reused per connection; release() is idempotent. */
export class Held {
  private table1: LimitTable | null = null;
  private handle1 = 0;
  private table2: LimitTable | null = null;
  private handle2 = 0;

  add(table: LimitTable, handle: number): void {
    if (this.table1 === null) { this.table1 = table; this.handle1 = handle; } else { this.table2 = table; this.handle2 = handle; }
  }

  release(): void {
    if (this.table1 === null) return;
    this.table1.release(this.handle1);
    this.table2?.release(this.handle2);
    this.table1 = this.table2 = null;
  }
}

/** The Retry-After field of a refusal's 429. */
export function retryAfter(refusal: Refusal): [string, string][] {
  return [["retry-after", String(refusal.retryAfterSeconds)]];
}

// A flood is answered with the same few 429s over and over: each is built once.
const answers = new Map<string, Uint8Array>();
const MAX_ANSWERS = 1024;

/** The HTTP/1.1 429 for a refusal (`close`: the connection closes after it). */
export function refusalResponse(refusal: Refusal, close: boolean): Uint8Array {
  const key = `${refusal.retryAfterSeconds}|${close}|${refusal.detail}`;
  let bytes = answers.get(key);
  if (bytes === undefined) {
    if (answers.size >= MAX_ANSWERS) answers.clear();
    bytes = errorResponseBytes(429, refusal.kind, refusal.detail, close, retryAfter(refusal));
    answers.set(key, bytes);
  }
  return bytes;
}

/** A refusal: what is answered (429 with Retry-After) and which limit said so. */
export interface Refusal {
  kind: "rate_limited" | "conn_limited";
  retryAfterSeconds: number;
  detail: string;
}

/** The limits of one listener or route, each with its own table (so its counters are its own). */
export class LimitSet {
  readonly rate: LimitTable | null;
  readonly conn: LimitTable | null;
  private readonly rateDetail: string;
  private readonly connDetail: string;
  private readonly fullDetail: string;

  constructor(
    plane: DataPlane,
    readonly scope: "listener" | "route",
    readonly name: string,
    readonly config: ClientLimits,
  ) {
    const r = config.rate, c = config.conn;
    this.rate = r ? new LimitTable(plane, { kind: "rate", size: r.size, rate: r.rate, burst: r.burst }) : null;
    this.conn = c ? new LimitTable(plane, { kind: "conn", size: c.size, max: c.max }) : null;
    this.rateDetail = r ? `${scope} ${name}: over its rate_limit of ${rateText(r)}` : "";
    this.connDetail = c ? `${scope} ${name}: ${c.max} requests in flight for this ${keyName(c)}` : "";
    this.fullDetail = `${scope} ${name}: conn_limit table full`;
  }

  /** A reload keeps the rate state of an unchanged limit (same rate, burst, size and key); conn
   * counts belong to the requests of the generation that admitted them (they finish there), so
   * a conn table starts empty. */
  carryFrom(previous: LimitSet): void {
    const r = this.config.rate, pr = previous.config.rate;
    if (this.rate && previous.rate && r && pr && sameKey(r.key, pr.key)) this.rate.carryFrom(previous.rate);
  }

  /** Admits one request (or tcp connection) of `client` with `headers`: null when it may go on
   * (a conn limit's hold is added to `held`), else the refusal. */
  admit(client: string, headers: HeaderLookup | null, held: Held): Refusal | null {
    const r = this.config.rate;
    if (r && this.rate) {
      const key = keyOf(r.key, client, headers);
      const waitMs = key === null ? 0 : this.rate.rate(key);
      if (waitMs > 0) return refusal("rate_limited", waitMs, this.rateDetail);
    }
    const c = this.config.conn;
    if (c && this.conn) {
      const key = keyOf(c.key, client, headers);
      if (key === null) return null;
      const handle = this.conn.acquire(key);
      if (handle === LIMIT_OVER) return refusal("conn_limited", 1000, this.connDetail);
      if (handle === LIMIT_FULL) return refusal("conn_limited", 1000, this.fullDetail);
      held.add(this.conn, handle);
    }
    return null;
  }

  /** Per table: the admin API's and metrics' view. */
  tables(): { limit: "rate_limit" | "conn_limit"; stats: LimitTableStats }[] {
    const out: { limit: "rate_limit" | "conn_limit"; stats: LimitTableStats }[] = [];
    if (this.rate) out.push({ limit: "rate_limit", stats: this.rate.stats() });
    if (this.conn) out.push({ limit: "conn_limit", stats: this.conn.stats() });
    return out;
  }

  free(): void {
    this.rate?.free();
    this.conn?.free();
  }
}

function sameKey(a: LimitKey, b: LimitKey): boolean {
  return a.kind === b.kind && (a.kind === "client" || a.name === (b as { name: string }).name);
}

function refusal(kind: Refusal["kind"], waitMs: number, detail: string): Refusal {
  return { kind, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)), detail };
}

function rateText(r: RateLimitConfig): string {
  return `${r.rate}/s burst ${r.burst}`;
}

function keyName(c: ConnLimitConfig): string {
  return c.key.kind === "client" ? "client" : `${c.key.kind} ${c.key.name}`;
}

/** The limits of an edge's listeners and routes, made once per generation. */
export class EdgeLimits {
  readonly listeners = new Map<string, LimitSet>();
  readonly routes = new Map<object, LimitSet>();
  private readonly none: boolean;

  constructor(
    plane: DataPlane,
    listeners: readonly { name: string; clientLimits: ClientLimits }[],
    routes: readonly { name: string; clientLimits: ClientLimits }[],
  ) {
    for (const l of listeners) {
      if (l.clientLimits.rate || l.clientLimits.conn) this.listeners.set(l.name, new LimitSet(plane, "listener", l.name, l.clientLimits));
    }
    for (const r of routes) {
      if (r.clientLimits.rate || r.clientLimits.conn) this.routes.set(r, new LimitSet(plane, "route", r.name, r.clientLimits));
    }
    this.none = this.listeners.size === 0 && this.routes.size === 0;
  }

  /** A request on `listener` that matched `route`: the listener's limits, then the route's.
   * null: it goes on (conn limits' holds are in `held`); else the first refusal. */
  admit(listener: string, route: object, client: string, headers: HeaderLookup, held: Held): Refusal | null {
    if (this.none) return null;
    const l = this.listeners.get(listener);
    const refused = l ? l.admit(client, headers, held) : null;
    if (refused) return refused;
    const r = this.routes.get(route);
    const refusedByRoute = r ? r.admit(client, headers, held) : null;
    if (refusedByRoute) held.release();
    return refusedByRoute;
  }

  /** After a reload: unchanged limits of the same listener or route name keep their state. */
  carryFrom(previous: EdgeLimits): void {
    for (const [name, set] of this.listeners) {
      const old = previous.listeners.get(name);
      if (old) set.carryFrom(old);
    }
    for (const set of this.routes.values()) {
      for (const old of previous.routes.values()) if (old.name === set.name) set.carryFrom(old);
    }
  }

  /** Every listener's and route's limits, for the admin API and metrics. */
  all(): LimitSet[] {
    return [...this.listeners.values(), ...this.routes.values()];
  }

  free(): void {
    for (const set of this.all()) set.free();
  }
}
