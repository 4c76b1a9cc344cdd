// A balancer pool as the HTTP edge uses it: the HTTP key a keyed scheduler hashes (URI, host,
// header, cookie, query argument; the client address when the request lacks it), sticky cookies,
// retries, and the keep-alive connections to its servers. Everything about servers and picks is
// the balancer's (src/balancer/pool.ts).
import type { Outcome, Pool, Server, WaitResult } from "../balancer/pool.ts";
import type { HashKey } from "../balancer/config.ts";
import type { HeaderLookup } from "../http1/head.ts";
import type { HttpPoolConfig, RetryPolicy } from "./options.ts";
import { cookieValue, StickyCookies, stickyId } from "./affinity.ts";
import type { UpstreamPool } from "./http1/upstream-pool.ts";

/** What a key can be taken from. */
export interface KeyFacts {
  clientAddress: string;
  /** Path and query as received. */
  target: string;
  host: string;
  headers: HeaderLookup;
}

const NO_FIELDS: [string, string][] = [];

export class HttpPool {
  readonly name: string;
  /** Retries; `tries: 0` in config means every server of the pool once. */
  readonly retry: RetryPolicy;
  private readonly sticky: StickyCookies | null;
  private readonly unwatch: (() => void) | null = null;

  readonly config: HttpPoolConfig;

  constructor(readonly balance: Pool<HttpPoolConfig>, readonly upstreams: UpstreamPool) {
    this.name = balance.name;
    const config = this.config = balance.config;
    const { retry, sticky } = config.http;
    const everyServer = () => balance.servers.length + (balance.sorry ? 1 : 0);
    this.retry = { ...retry, tries: retry.tries || everyServer() };
    // "Every server once" follows the pool's membership.
    if (retry.tries === 0) this.unwatch = balance.onMembership(() => { this.retry.tries = everyServer(); });
    this.sticky = sticky ? new StickyCookies(sticky) : null;
  }

  /** The edge stops using this pool. */
  close(): void {
    this.unwatch?.();
  }

  /** A server for a request, honouring its sticky cookie, never one in `tried`. Counts it as active. */
  pickAvoiding(facts: KeyFacts, tried: ReadonlySet<Server>): Server | null {
    const id = this.sticky?.requested(facts.headers);
    const prefer = id ? this.balance.servers.find((s) => stickyId(s.config) === id) ?? null : null;
    const key = this.config.hashKey ? keyOf(this.config.hashKey, facts) : null;
    return this.balance.pick({ key, client: facts.clientAddress }, tried, prefer);
  }

  /** With a sticky cookie in `indirect` mode, its name: the upstream never sees it. */
  stickyCookieToDrop(): string | null {
    return this.sticky?.cookie.indirect ? this.sticky.cookie.name : null;
  }

  /** Response fields that pin the client to `server` (empty when it already is, or no cookie). */
  stickyCookieFor(server: Server, facts: KeyFacts): [string, string][] {
    return this.sticky ? this.sticky.insert(stickyId(server.config), this.sticky.requested(facts.headers)) : NO_FIELDS;
  }

  release(server: Server): void {
    this.balance.release(server);
  }

  waitForSlot(priority?: number): Promise<WaitResult> | null {
    return this.balance.waitForSlot(priority);
  }

  reportSuccess(server: Server): void {
    this.balance.reportSuccess(server);
  }

  reportFailure(server: Server): void {
    this.balance.reportFailure(server);
  }

  observe(server: Server, outcome: Outcome): void {
    this.balance.observe(server, outcome);
  }
}

/** The string a keyed scheduler hashes for this request; the client address when it lacks one. */
function keyOf(k: HashKey, f: KeyFacts): string {
  switch (k.kind) {
    case "source": return f.clientAddress;
    case "uri": return f.target;
    case "host": return f.host;
    case "header": return f.headers.get(k.name) ?? f.clientAddress;
    case "cookie": return cookieValue(f.headers.get("cookie"), k.name) ?? f.clientAddress;
    case "arg": return queryArg(f.target, k.name) ?? f.clientAddress;
  }
}

function queryArg(target: string, name: string): string | null {
  const q = target.indexOf("?");
  return q < 0 ? null : new URLSearchParams(target.slice(q + 1)).get(name);
}
