// Pools: the config's servers placed in the data plane, key extraction for keyed schedulers,
// each server's availability, and nginx-style passive failure accounting (max_fails within
// fail_timeout takes a server out for fail_timeout).
import { DataPlane, STATE_DOWN, STATE_UP } from "../core/dataplane.ts";
import { formatHostPort, type HashKey, type PoolConfig, type ServerConfig } from "../config/schema.ts";
import type { HeaderLookup } from "../http1/head.ts";
import type { RetryPolicy } from "../config/edge-options.ts";
import { cookieValue, SourcePersistence, StickyCookies, stickyId } from "./affinity.ts";
import { UpstreamPool } from "./http1/upstream-pool.ts";

/** Why a server takes no new sessions. Each part that can take a server out owns one reason and
 * clears only its own: the server is back once no reason is left. */
export type DownReason = "admin" | "passive" | "health" | "outlier" | "quorum" | "standby";
// "quorum": the pool has fewer servers up than its quorum and sends everything to its sorry server;
// "standby": the sorry server while the pool has quorum. Both are set by src/health.

/** What a request sent to a server came to: its HTTP status, or no response at all (refused,
 * reset, timed out). Outlier detection (src/health/outlier.ts) learns from these. */
export type Outcome = number | "no_response";

export interface Server {
  readonly pool: string;
  readonly slot: number;
  readonly host: string;
  readonly port: number;
  /** "pool/host:port", as logs name it. */
  readonly label: string;
  readonly config: ServerConfig;
  readonly down: Set<DownReason>;
  fails: number;
  failWindowStart: number;
  requests: number;
  failures: number;
}

/** What a key can be taken from. */
export interface KeyFacts {
  clientAddress: string;
  /** Path and query as received. */
  target: string;
  host: string;
  headers: HeaderLookup;
}

export class Pool {
  readonly name: string;
  readonly servers: Server[];
  /** The sorry server (keepalived): out ("standby") until the pool falls below its quorum. */
  readonly sorry: Server | null;
  /** Every server by slot - base: the configured ones, then the sorry server. */
  private readonly slots: Server[];
  private readonly observers: ((server: Server, outcome: Outcome) => void)[] = [];
  private readonly id: number;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  /** Keep-alive connections to this pool's servers (shared by the edge's pools). */
  readonly upstreams: UpstreamPool;
  /** Retries; `tries: 0` in config means every server of the pool once. */
  readonly retry: RetryPolicy;
  private readonly sticky: StickyCookies | null;
  private readonly persistence: SourcePersistence | null;
  /** Requests waiting for a server below its max_conns, oldest first. */
  private readonly waiting: { wake: (ok: boolean) => void; timer: ReturnType<typeof setTimeout> }[] = [];

  constructor(readonly config: PoolConfig, private readonly dp: DataPlane, upstreams = new UpstreamPool()) {
    this.name = config.name;
    const sorry = config.health.sorryServer;
    const all = sorry ? [...config.servers, sorry] : config.servers;
    const isSorry = (k: number) => k === config.servers.length;
    const handle = dp.addPool({
      scheduler: config.scheduler,
      servers: all.map((s, k) => ({
        address: formatHostPort(s.address), weight: s.weight, backup: s.backup, down: s.down || isSorry(k), maxConns: s.maxConns,
      })),
    });
    this.id = handle.id;
    this.slots = all.map((s, k) => ({
      pool: config.name,
      slot: handle.base + k,
      host: s.address.host,
      port: s.address.port,
      label: `${config.name}/${formatHostPort(s.address)}`,
      config: s,
      down: new Set<DownReason>(s.down ? ["admin"] : isSorry(k) ? ["standby"] : []),
      fails: 0,
      failWindowStart: 0,
      requests: 0,
      failures: 0,
    }));
    this.servers = this.slots.slice(0, config.servers.length);
    this.upstreams = upstreams;
    this.retry = { ...config.retry, tries: config.retry.tries || this.slots.length };
    this.sticky = config.sticky ? new StickyCookies(config.sticky) : null;
    this.persistence = config.persistenceMs > 0 ? new SourcePersistence(config.persistenceMs) : null;
    this.sorry = sorry ? this.slots[config.servers.length] : null;
  }

  /** A server for a new request, or null when none can take it. Counts it as active. */
  pick(facts: KeyFacts): Server | null {
    const key = this.config.hashKey ? this.dp.hash(keyOf(this.config.hashKey, facts)) : 0;
    const slot = this.dp.pick(this.id, key);
    if (slot < 0) return null;
    const server = this.slots[slot - this.slots[0].slot];
    this.dp.active[slot]++;
    server.requests++;
    return server;
  }

  /** A server for a request, honouring stickiness and persistence, never one in `tried` (the
   * servers a retried request already failed on). Counts it as active. */
  pickAvoiding(facts: KeyFacts, tried: ReadonlySet<Server>): Server | null {
    const pinned = this.pinned(facts);
    if (pinned && !tried.has(pinned) && this.usable(pinned)) return this.remember(facts, this.acquire(pinned));
    const s = this.pick(facts);
    if (s && !tried.has(s)) return this.remember(facts, s);
    if (s) this.release(s);
    // The scheduler keeps choosing a server already tried (a hash does): take the next untried
    // one in order, primaries first.
    for (const backup of [false, true]) {
      for (const c of this.slots) {
        if (c.config.backup === backup && !tried.has(c) && this.usable(c)) return this.remember(facts, this.acquire(c));
      }
    }
    return null;
  }

  /** With a sticky cookie in `indirect` mode, its name: the upstream never sees it. */
  stickyCookieToDrop(): string | null {
    return this.sticky?.cookie.indirect ? this.sticky.cookie.name : null;
  }

  /** Response fields that pin the client to `server` (empty when it already is, or no cookie). */
  stickyCookieFor(server: Server, facts: KeyFacts): [string, string][] {
    return this.sticky ? this.sticky.insert(stickyId(server.config), this.sticky.requested(facts.headers)) : NO_FIELDS;
  }

  private pinned(facts: KeyFacts): Server | null {
    const id = this.sticky?.requested(facts.headers);
    if (id) { const s = this.slots.find((c) => stickyId(c.config) === id); if (s) return s; }
    const index = this.persistence?.lookup(facts.clientAddress);
    return index === undefined || index === null ? null : this.slots[index] ?? null;
  }

  private remember(facts: KeyFacts, server: Server): Server {
    this.persistence?.remember(facts.clientAddress, this.slots.indexOf(server));
    return server;
  }

  private usable(s: Server): boolean {
    return this.dp.canTake(s.slot);
  }

  private acquire(s: Server): Server {
    this.dp.active[s.slot]++;
    s.requests++;
    return s;
  }

  release(server: Server): void {
    this.dp.active[server.slot]--;
    const next = this.waiting.shift();
    if (next) { clearTimeout(next.timer); next.wake(true); }
  }

  /** When no server could take a request because the usable ones are all at max_conns, a
   * promise that resolves true when a slot frees up (try again) or false when the wait times
   * out; null when the request should not wait (no server is merely full, or the queue is). */
  waitForSlot(): Promise<boolean> | null {
    const q = this.config.queue;
    if (this.waiting.length >= q.size) return null;
    const full = this.slots.some((s) =>
      this.dp.maxConns[s.slot] > 0 && this.dp.available(s.slot));
    if (!full) return null;
    return new Promise((wake) => {
      const entry = {
        wake,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          wake(false);
        }, q.timeoutMs),
      };
      this.waiting.push(entry);
    });
  }

  active(server: Server): number {
    return this.dp.active[server.slot];
  }

  reportSuccess(server: Server): void {
    server.fails = 0;
  }

  reportFailure(server: Server, now = Date.now()): void {
    server.failures++;
    const { maxFails, failTimeoutMs } = server.config;
    if (maxFails === 0) return;
    if (now - server.failWindowStart > failTimeoutMs) { server.fails = 0; server.failWindowStart = now; }
    if (++server.fails < maxFails) return;
    server.fails = 0;
    if (server.down.has("passive")) return;
    this.setDown(server, "passive", true);
    console.error(`fulcrum: ${server.label} out for ${failTimeoutMs} ms: ${maxFails} failure(s) within fail_timeout (max_fails)`);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.setDown(server, "passive", false);
      console.error(`fulcrum: ${server.label} back after fail_timeout`);
    }, failTimeoutMs);
    this.timers.add(t);
  }

  /** Called with the outcome of every request (health's outlier detection subscribes). */
  onOutcome(observer: (server: Server, outcome: Outcome) => void): void {
    this.observers.push(observer);
  }

  observe(server: Server, outcome: Outcome): void {
    for (const o of this.observers) o(server, outcome);
  }

  /** Sets or clears one reason for a server to be out, and updates the data plane. */
  setDown(server: Server, reason: DownReason, down: boolean): void {
    if (down) server.down.add(reason);
    else server.down.delete(reason);
    this.dp.setState(server.slot, server.down.size === 0 ? STATE_UP : STATE_DOWN);
  }

  isAvailable(server: Server): boolean {
    return server.down.size === 0;
  }

  /** The weight the schedulers use now (slow start and agents move it; config sets the start). */
  setEffectiveWeight(server: Server, weight: number): void {
    this.dp.setEffectiveWeight(server.slot, weight);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiting.splice(0)) { clearTimeout(w.timer); w.wake(false); }
  }
}

const NO_FIELDS: [string, string][] = [];

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
