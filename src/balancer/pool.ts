// A pool: its servers placed in the data plane, each server's availability as a set of down
// reasons, nginx-style passive failures (max_fails within fail_timeout takes a server out for
// fail_timeout), the max_conns queue, source persistence, and picks that avoid servers a retried
// session already failed on. It knows no protocol: the edge, the L4 proxy and the packet director
// all balance through it, each passing the key its protocol hashes.
//
// Membership is live: servers are added and removed, and weights set, at run time. The data plane
// moves the pool's slots when its list changes; a Server keeps its identity (its `slot` follows),
// so sessions in flight release the right counter, and a removed server's sessions release nothing.
// Across a reload, the next generation's pool inherits the counts of the sessions still in flight
// on this one (same pool name, same server address), so its least-connection picks and max_conns
// see them until they end.
import { type DataPlane, type PoolHandle, STATE_DOWN, STATE_DRAIN, STATE_UP, type ServerState } from "../core/dataplane.ts";
import { formatHostPort } from "../config/address.ts";
import type { BalancerPoolConfig, ServerConfig } from "./config.ts";
import { type Persistence, SharedPersistence, type SharedPersistenceTable, SourcePersistence } from "./persistence.ts";
import { PoolLatency, Traffic } from "./traffic.ts";
import { type SchedulerShare, sharedSchedulerState, type SharedSchedulerState } from "./shared-scheduler.ts";
import { type QueueHost, SharedQueue, type WaitResult, type WaitTable } from "./shared-queue.ts";
import type { SharedPassive } from "./shared-passive.ts";
import { limitClock } from "../core/limits.ts";

export type { WaitResult } from "./shared-queue.ts";

/** Why a server takes no new sessions. Each part that can take a server out owns one reason and
 * clears only its own: the server is back once no reason is left. */
export type DownReason = "admin" | "drain" | "passive" | "health" | "outlier" | "quorum" | "standby";
// "admin": an operator's maint (or `down: true`); "drain": an operator's drain, the only reason
// that leaves the server in the data plane's DRAIN state (no new sessions, those on it go on).
// "quorum": the pool has fewer servers up than its quorum and sends everything to its sorry server;
// "standby": the sorry server while the pool has quorum. Both are set by src/health.

/** What a session sent to a server came to: an HTTP status, or no response at all (refused,
 * reset, timed out). Outlier detection (src/health/outlier.ts) learns from these. */
export type Outcome = number | "no_response";

export interface Server {
  readonly pool: string;
  /** The server's slot in the data plane now; -1 once it was removed from the pool. */
  slot: number;
  readonly host: string;
  readonly port: number;
  /** "pool/host:port", as logs name it. */
  readonly label: string;
  readonly config: ServerConfig;
  /** The configured weight now (config, or an admin's `set weight`). */
  weight: number;
  readonly down: Set<DownReason>;
  fails: number;
  failWindowStart: number;
  requests: number;
  failures: number;
  /** When the server last went in or out (its data-plane state changed), ms since the epoch. */
  changedAt: number;
  /** What sessions sent to it carried and how long they took (the edge counts, metrics read). */
  readonly traffic: Traffic;
  /** Its word in the pool's shared session counts (setSharedCounts; workers), -1 for none. */
  shared: number;
}

/** What a pick hashes and who asks: `key` for keyed schedulers (null: the client address). */
export interface PickRequest {
  key: string | null;
  client: string;
}

/** Route priorities run 0..9, higher first; a route without one is DEFAULT_PRIORITY. */
export const DEFAULT_PRIORITY = 5;
export const PRIORITIES = 10;

interface Waiter {
  wake: (result: WaitResult) => void;
  timer: ReturnType<typeof setTimeout>;
  priority: number;
}

export type MembershipChange = { type: "added" | "removed"; server: Server };

/** `C` is the config as the caller keeps it: the balancer reads only its own part. */
export class Pool<C extends BalancerPoolConfig = BalancerPoolConfig> {
  readonly name: string;
  /** The configured (non-sorry) servers, in order; changes with membership. */
  readonly servers: Server[] = [];
  /** The sorry server (keepalived): out ("standby") until the pool falls below its quorum. */
  readonly sorry: Server | null;
  /** least_time: what the protocol part times for `observeTime` (the response head or its last
   * byte); null: the scheduler keeps no estimate. */
  readonly timing: "header" | "last_byte" | null;
  /** Connect and response times of every server's sessions (each server's traffic observes here). */
  readonly latency = new PoolLatency();
  private readonly handle: PoolHandle;
  private readonly observers: ((server: Server, outcome: Outcome) => void)[] = [];
  private readonly watchers: ((change: MembershipChange) => void)[] = [];
  private readonly adminWatchers: ((server: Server) => void)[] = [];
  /** Servers of this pool whose sessions also count on the same address in a later generation's
   * pool (see inherit): each acquire and release here is repeated there. */
  private readonly heirs = new Map<Server, { pool: Pool<BalancerPoolConfig>; server: Server }>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly changeWatchers: (() => void)[] = [];
  private failureSink: ((server: Server, outUntil: number | null) => void) | null = null;
  /** max_fails counted with the other workers (setSharedPassive), null: here, or by the sink. */
  private sharedPassive: SharedPassive | null = null;
  /** Members this process has out as "passive" from the shared words (picks look until none). */
  private passiveHere = 0;
  /** Session counts shared by the worker processes (one word per server, by pool and address),
   * null in a single process. With them, a server's count is the word, and max_conns is gated
   * there (add, then check). */
  private shared: Int32Array | null = null;
  /** This process's own part of each shared word (a worker's), which its supervisor takes back
   * out of the totals if the worker dies with sessions in flight; null: not kept. */
  private sharedOwn: Int32Array | null = null;
  /** Whether picks read servers' counts (lc, wlc, ... or a max_conns): they are copied from the
   * shared words first. */
  private picksReadCounts = false;
  /** The scheduler's own state shared by the workers (rr's position, wrr's weights, lblc's
   * table), null: none, or kept per process. */
  private sharedScheduler: SharedSchedulerState | null = null;
  /** The shared word's value right after this process's last add (acquire's, for admitted). */
  private lastShared = 0;
  /** Polls the shared counts while sessions wait: a slot another worker freed wakes none here
   * (a queue kept per worker, when the shared table has no room for this pool). */
  private queuePoll: ReturnType<typeof setInterval> | null = null;
  /** Source persistence: this process's table, or the workers' shared one (sharePersistence). */
  private persistence: Persistence<Server> | null;
  /** The max_conns queue shared by every worker (setSharedQueue), null: kept here. */
  private sharedQueue: SharedQueue | null = null;
  /** Slots granted to this process's waiters (their counts kept), for their next pick; given
   * back at the next turn if no pick took them. */
  private readonly reserved: Server[] = [];
  private reservedCheck: ReturnType<typeof setTimeout> | null = null;
  /** Sessions waiting for a server below its max_conns: higher priority first, then oldest. */
  private readonly waiting: Waiter[] = [];
  /** Waits by priority that got a slot, and sessions shed at the full queue (metrics). */
  readonly queueServed = new Float64Array(PRIORITIES);
  readonly queueShed = new Float64Array(PRIORITIES);

  constructor(readonly config: C, private readonly dp: DataPlane) {
    this.name = config.name;
    this.handle = dp.addPool({ scheduler: config.scheduler, servers: [], decayMs: config.leastTime?.decayMs });
    this.timing = config.leastTime?.measure ?? null;
    for (const s of config.servers) this.servers.push(this.newServer(s, s.down ? ["admin"] : []));
    this.sorry = config.sorryServer ? this.newServer(config.sorryServer, ["standby"]) : null;
    this.place();
    this.persistence = config.persistenceMs > 0 ? new SourcePersistence(config.persistenceMs) : null;
  }

  /** Every server by slot order: the configured ones, then the sorry server. */
  private get members(): Server[] {
    return this.sorry ? [...this.servers, this.sorry] : this.servers;
  }

  /** A server for a new session, honouring `prefer` (a sticky cookie's server) and source
   * persistence, never one in `avoid` (the servers a retried session already failed on).
   * Counts it as active. Null when no server can take it. */
  pick(req: PickRequest, avoid?: ReadonlySet<Server>, prefer?: Server | null): Server | null {
    if (this.shared) return this.pickShared(req, avoid, prefer);
    return this.pickHere(req, avoid, prefer);
  }

  private pickHere(req: PickRequest, avoid?: ReadonlySet<Server>, prefer?: Server | null, key = this.keyOf(req)): Server | null {
    const pinned = prefer ?? this.persistence?.lookup(req.client) ?? null;
    if (pinned && pinned.slot >= 0 && !avoid?.has(pinned) && this.dp.canTake(pinned.slot)) {
      return this.remember(req, this.acquire(pinned));
    }
    const slot = this.dp.pick(this.handle.id, key);
    if (slot >= 0) {
      const s = this.atSlot(slot);
      if (!avoid?.has(s)) return this.remember(req, this.acquire(s));
    }
    if (!avoid) return null;
    // The scheduler keeps choosing a server already tried (a hash does): take the next untried
    // one in order, primaries first.
    for (const backup of [false, true]) {
      for (const c of this.members) {
        if (c.config.backup === backup && !avoid.has(c) && this.dp.canTake(c.slot)) return this.remember(req, this.acquire(c));
      }
    }
    return null;
  }

  /** The hash a keyed scheduler picks by (0: not keyed). */
  private keyOf(req: PickRequest): number {
    return this.config.hashKey ? this.dp.hash(req.key ?? req.client) : 0;
  }

  // A pick over counts shared with other workers: the counts are copied in (when the scheduler
  // or a max_conns reads them), the pick counts its server in the shared word, and a server
  // another worker filled up in the meantime (max_conns reached after the add) is given back
  // and avoided, so max_conns is never exceeded across workers.
  private pickShared(req: PickRequest, avoid?: ReadonlySet<Server>, prefer?: Server | null): Server | null {
    const key = this.keyOf(req);
    if (this.sharedPassive && (this.passiveHere > 0 || this.sharedPassive.anyOut)) this.followPassive();
    const granted = this.reserved.length > 0 ? this.takeReserved(avoid) : null;
    if (granted) return this.remember(req, granted);
    let skip = avoid;
    for (let tries = 0; tries <= this.members.length; tries++) {
      if (this.picksReadCounts) this.syncCounts();
      const pinned = tries === 0 ? prefer : null;
      const shared = this.sharedScheduler;
      let s: Server | null;
      if (shared) {
        shared.enter(key);
        try {
          s = this.pickHere(req, skip, pinned, key);
        } finally {
          shared.leave();
        }
      } else s = this.pickHere(req, skip, pinned, key);
      if (s === null || this.admitted(s)) return s;
      const widened = new Set(skip);
      widened.add(s);
      skip = widened;
    }
    return null;
  }

  // After acquire counted `s` in its shared word: false (and the count undone) when that went
  // past its max_conns because another worker took the last slot first.
  private admitted(s: Server): boolean {
    const max = s.config.maxConns;
    if (max === 0 || s.shared < 0) return true;
    if (this.lastShared <= max) return true; // this add's own result: of two racing adds, one wins
    this.count(s, -1);
    s.requests--;
    return false;
  }

  // Sets each member's "passive" reason to what the shared words say now: out until a time that
  // any worker's failures set, back once it passed (every worker by the same clock).
  private followPassive(): void {
    const shared = this.sharedPassive!, now = limitClock();
    let out = 0;
    for (const s of this.members) {
      if (s.shared < 0 || s.slot < 0) continue;
      const down = shared.isOut(s.shared, now);
      if (s.down.has("passive") !== down) this.setDown(s, "passive", down);
      if (down) out++;
    }
    this.passiveHere = out;
    shared.settle(now);
  }

  /** Copies the servers' shared counts into the data plane, which the schedulers read. */
  private syncCounts(): void {
    const words = this.shared!, active = this.dp.active;
    for (const s of this.members) if (s.shared >= 0 && s.slot >= 0) active[s.slot] = Atomics.load(words, s.shared);
  }

  /** Counts sessions in shared words from now on (a worker, or the supervisor that reports them):
   * each server's word is its `shared` index. `share`: where a worker shares its scheduler's
   * own state (null: kept here). */
  setSharedCounts(words: Int32Array, own: Int32Array | null = null, share: SchedulerShare | null = null): void {
    this.shared = words;
    this.sharedOwn = own;
    this.sharedScheduler = share ? sharedSchedulerState(this.config.scheduler, this.dp, this.handle.id, () => this.members, words, share) : null;
    this.picksReadCounts = this.config.scheduler !== "rr" && this.config.scheduler !== "wrr" || this.members.some((s) => s.config.maxConns > 0);
  }

  /** Keeps source persistence in `table`, shared by the worker processes, from now on (entries
   * name servers by their shared word, `Server.shared`, the same in every worker). */
  sharePersistence(table: SharedPersistenceTable): void {
    const ms = this.config.persistenceMs;
    if (ms <= 0 || (this.persistence instanceof SharedPersistence && this.persistence.table === table)) return;
    this.persistence = new SharedPersistence(table, this.name, ms, () => this.members);
  }

  /** The server at `host:port`, or undefined. */
  find(host: string, port: number): Server | undefined {
    return this.members.find((s) => s.host === host && s.port === port);
  }

  /** The session on `server` ended. */
  release(server: Server): void {
    const heir = this.heirs.get(server); // the same session counted in a later generation ends there too
    if (heir) heir.pool.release(heir.server);
    if (this.shared && server.shared >= 0) {
      if (this.sharedOwn) this.sharedOwn[server.shared]--;
      this.handOver(server);
    } else if (server.slot >= 0) this.dp.active[server.slot]--;
    const next = this.waiting.shift();
    if (next) { clearTimeout(next.timer); this.queueServed[next.priority]++; next.wake("slot"); }
  }

  /** A reload: this pool replaces `previous` (same name). Each of its servers whose address
   * `previous` has too takes over the count of the sessions in flight there, and from now on
   * sessions that start or end on the old server count here too (a chain, when reloads follow
   * each other before the old sessions end). Returns the undo, for a generation that failed to
   * start. */
  inherit(previous: Pool<BalancerPoolConfig>): () => void {
    const linked: Server[] = [];
    for (const old of previous.members) {
      const mine = this.find(old.host, old.port);
      if (!mine) continue;
      this.count(mine, previous.active(old));
      previous.heirs.set(old, { pool: this, server: mine });
      linked.push(old);
    }
    return () => { for (const old of linked) if (previous.heirs.get(old)?.pool === this) previous.heirs.delete(old); };
  }

  // Adds `delta` sessions to a server's count here and in the pools that inherited it.
  private count(server: Server, delta: number): void {
    if (this.shared && server.shared >= 0) {
      if (this.sharedOwn) this.sharedOwn[server.shared] += delta;
      const now = this.lastShared = Atomics.add(this.shared, server.shared, delta) + delta;
      if (server.slot >= 0) this.dp.active[server.slot] = now;
    } else if (server.slot >= 0) this.dp.active[server.slot] += delta;
    const heir = this.heirs.get(server);
    if (heir) heir.pool.count(heir.server, delta);
  }

  /** When no server could take a session because the usable ones are all at max_conns, a
   * promise of how its wait ends (see WaitResult); null when it should not wait (no server is
   * merely full, or the queue takes no one). A full queue sheds its least important session,
   * the newest of them: a waiting one to make room for this one if this one ranks higher, else
   * this one (at once). `priority`: 0..9, higher is served first. */
  waitForSlot(priority = DEFAULT_PRIORITY): Promise<WaitResult> | null {
    const q = this.config.queue;
    if (q.size === 0) return null;
    const full = this.members.some((s) => this.dp.maxConns[s.slot] > 0 && this.dp.available(s.slot));
    if (!full) return null;
    if (this.sharedQueue) return this.sharedQueue.wait(priority, q);
    if (this.waiting.length >= q.size) {
      const last = this.waiting[this.waiting.length - 1];
      if (last.priority >= priority) { this.queueShed[priority]++; return Promise.resolve("shed"); }
      this.waiting.pop();
      clearTimeout(last.timer);
      this.queueShed[last.priority]++;
      last.wake("shed");
    }
    return new Promise((wake) => {
      const entry: Waiter = {
        wake,
        priority,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          wake("timeout");
        }, q.timeoutMs),
      };
      // After every waiter of the same or a higher priority: first come, first served within one.
      let at = this.waiting.length;
      while (at > 0 && this.waiting[at - 1].priority < priority) at--;
      this.waiting.splice(at, 0, entry);
      if (this.shared) this.pollQueue();
    });
  }

  // With shared counts, a slot freed in another worker is seen here by looking: every 5 ms
  // while sessions wait, the first waiter is woken when any server can take a session.
  private pollQueue(): void {
    if (this.queuePoll) return;
    this.queuePoll = setInterval(() => {
      if (this.waiting.length === 0) { clearInterval(this.queuePoll!); this.queuePoll = null; return; }
      this.syncCounts();
      if (!this.members.some((s) => s.slot >= 0 && this.dp.canTake(s.slot))) return;
      const next = this.waiting.shift()!;
      clearTimeout(next.timer);
      this.queueServed[next.priority]++;
      next.wake("slot");
    }, 5);
  }

  /** Shares the max_conns queue with the other workers through `table` (this pool's), after
   * setSharedCounts; null: kept here. */
  setSharedQueue(table: WaitTable | null): void {
    if (this.sharedQueue?.table === table) return;
    this.sharedQueue?.stop();
    const host: QueueHost = {
      takeGrant: (word) => this.takeGrant(word),
      claimFree: () => this.claimFree(),
      queueServed: this.queueServed,
      queueShed: this.queueShed,
    };
    this.sharedQueue = table ? new SharedQueue(table, host) : null;
  }

  // A session count on `s` that its session no longer uses: the best waiter of any worker takes
  // it over (the count stays; true), else it is given back.
  private handOver(s: Server): boolean {
    const words = this.shared!;
    const taken = this.sharedQueue !== null && s.slot >= 0 && this.dp.available(s.slot) && this.sharedQueue.handOver(s.shared);
    const now = taken ? Atomics.load(words, s.shared) : Atomics.sub(words, s.shared, 1) - 1;
    if (s.slot >= 0) this.dp.active[s.slot] = now;
    return taken;
  }

  // A slot on the server of shared word `word` granted to a waiter here: this process's session
  // from now (its own part), held for the waiter's pick.
  private takeGrant(word: number): void {
    const s = this.members.find((m) => m.shared === word);
    if (!s) { Atomics.sub(this.shared!, word, 1); return; } // the server left the pool meanwhile
    if (this.sharedOwn) this.sharedOwn[word]++;
    this.reserved.push(s);
    // A woken waiter picks within the turn (or not at all: its client went): what is left over
    // goes on to the next waiter.
    this.reservedCheck ??= setTimeout(() => {
      this.reservedCheck = null;
      for (const r of this.reserved.splice(0)) {
        if (this.sharedOwn) this.sharedOwn[r.shared]--;
        this.handOver(r);
      }
    }, 0);
  }

  // A granted slot for a pick that may take it.
  private takeReserved(avoid?: ReadonlySet<Server>): Server | null {
    const i = this.reserved.findIndex((s) => s.slot >= 0 && this.dp.available(s.slot) && !avoid?.has(s));
    if (i < 0) return null;
    const [s] = this.reserved.splice(i, 1);
    s.requests++;
    return s;
  }

  // While sessions wait here, slots free without a release that granted them (freed while none
  // waited yet, a server back up): each is counted, then handed over as a release's.
  private claimFree(): void {
    const words = this.shared!;
    this.syncCounts();
    for (const s of this.members) {
      while (this.sharedQueue!.length > 0 && s.slot >= 0 && s.shared >= 0 && this.dp.canTake(s.slot)) {
        const now = Atomics.add(words, s.shared, 1) + 1;
        this.dp.active[s.slot] = now;
        if (s.config.maxConns > 0 && now > s.config.maxConns) { this.dp.active[s.slot] = Atomics.sub(words, s.shared, 1) - 1; break; }
        if (!this.handOver(s)) break;
      }
    }
  }

  /** Sessions on the server now. */
  active(server: Server): number {
    if (this.shared && server.shared >= 0) return Atomics.load(this.shared, server.shared);
    return server.slot >= 0 ? this.dp.active[server.slot] : 0;
  }

  /** A session's response time on `server` (from sending to the head or last byte, as `timing`
   * says; an L4 session's connect time): least_time's estimate learns it. */
  observeTime(server: Server, ms: number): void {
    if (this.timing === null || server.slot < 0) return;
    // With workers, the estimate is the one every worker shares.
    if (this.sharedScheduler?.observe) this.sharedScheduler.observe(server, ms);
    else this.dp.observeTime(server.slot, ms);
  }

  /** least_time's estimate for `server` as last set, ms (0: nothing known; null: no estimates). */
  timeEstimate(server: Server): number | null {
    if (this.timing === null || server.slot < 0) return null;
    return (this.sharedScheduler?.estimate?.(server) ?? this.dp.timeEstimate(server.slot)) / 1000;
  }

  reportSuccess(server: Server): void {
    server.fails = 0;
    if (this.sharedPassive && server.shared >= 0) this.sharedPassive.succeed(server.shared);
  }

  reportFailure(server: Server, now = Date.now()): void {
    server.failures++;
    const { maxFails, failTimeoutMs } = server.config;
    if (this.sharedPassive && server.shared >= 0) {
      // Counted with every worker's: out here at once, in the others at their next pick.
      if (maxFails === 0 || server.slot < 0) return;
      const until = this.sharedPassive.fail(server.shared, maxFails, failTimeoutMs, limitClock());
      if (until === null) return;
      this.setDown(server, "passive", true);
      this.passiveHere++;
      this.failureSink?.(server, until);
      return;
    }
    // Without shared words, a worker's failures are counted in its supervisor's pool.
    if (this.failureSink) { this.failureSink(server, null); return; }
    if (maxFails === 0 || server.slot < 0) return;
    if (now - server.failWindowStart > failTimeoutMs) { server.fails = 0; server.failWindowStart = now; }
    if (++server.fails < maxFails) return;
    server.fails = 0;
    if (server.down.has("passive")) return;
    this.passiveOut(server, failTimeoutMs);
  }

  /** The server is out for `ms` as max_fails says (a worker's failures took it out until then,
   * on the shared clock: the supervisor's pool logs it and shows it, and its workers' picks
   * read the time from the shared words). */
  passiveOut(server: Server, ms: number, announce = true): void {
    const { maxFails, failTimeoutMs } = server.config;
    if (server.down.has("passive")) return;
    this.setDown(server, "passive", true);
    if (announce) console.error(`fulcrum: ${server.label} out for ${failTimeoutMs} ms: ${maxFails} failure(s) within fail_timeout (max_fails)`);
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.setDown(server, "passive", false);
      if (announce) console.error(`fulcrum: ${server.label} back after fail_timeout`);
    }, Math.max(0, ms));
    this.timers.add(t);
  }

  /** A new generation's pool in the supervisor: servers that `shared` has out (failures counted
   * under the previous generation, whose pool logged them) are out here too until their time. */
  adoptPassive(shared: SharedPassive): void {
    const now = limitClock();
    for (const s of this.members) {
      const ms = s.shared >= 0 ? shared.remaining(s.shared, now) : 0;
      if (ms > 0) this.passiveOut(s, ms, false);
    }
  }

  /** In a worker: what its supervisor learns of failures. `outUntil` null: a failure to count
   * (the server has no shared words; the supervisor counts max_fails over all workers and sends
   * back the "passive" reason); else max_fails was reached here and the server is out until
   * then (the shared clock, limitClock). */
  setFailureSink(sink: (server: Server, outUntil: number | null) => void): void {
    this.failureSink = sink;
  }

  /** Counts max_fails in `shared` with the other workers from now on (null: as before). */
  setSharedPassive(shared: SharedPassive | null): void {
    this.sharedPassive = shared;
    // A reason set otherwise (a new worker's first state) is checked against the words too.
    this.passiveHere = shared ? this.members.filter((s) => s.down.has("passive")).length : 0;
  }

  /** Whether the server's "passive" reason comes from the shared words (not from a relay). */
  sharesPassive(server: Server): boolean {
    return this.sharedPassive !== null && server.shared >= 0;
  }

  /** Called with the outcome of every session (health's outlier detection subscribes). */
  onOutcome(observer: (server: Server, outcome: Outcome) => void): () => void {
    this.observers.push(observer);
    return () => { const i = this.observers.indexOf(observer); if (i >= 0) this.observers.splice(i, 1); };
  }

  observe(server: Server, outcome: Outcome): void {
    for (const o of this.observers) o(server, outcome);
  }

  /** Called when a server is added or removed (health starts and stops its checks). */
  onMembership(watcher: (change: MembershipChange) => void): () => void {
    this.watchers.push(watcher);
    return () => { const i = this.watchers.indexOf(watcher); if (i >= 0) this.watchers.splice(i, 1); };
  }

  /** Called after any change of a server's down reasons, weights or the membership (the
   * supervisor sends its workers the pools' state). */
  onChange(watcher: () => void): () => void {
    this.changeWatchers.push(watcher);
    return () => { const i = this.changeWatchers.indexOf(watcher); if (i >= 0) this.changeWatchers.splice(i, 1); };
  }

  private changed(): void {
    for (const w of this.changeWatchers) w();
  }

  /** Called when an operator takes a server out of service or back (the "admin" reason): health
   * counts such servers out of its quorum and panic shares. */
  onAdminChange(watcher: (server: Server) => void): () => void {
    this.adminWatchers.push(watcher);
    return () => { const i = this.adminWatchers.indexOf(watcher); if (i >= 0) this.adminWatchers.splice(i, 1); };
  }

  /** Sets or clears one reason for a server to be out, and updates the data plane. */
  setDown(server: Server, reason: DownReason, down: boolean): void {
    const had = server.down.has(reason);
    if (down) server.down.add(reason);
    else server.down.delete(reason);
    if (reason === "admin" && had !== down) for (const w of this.adminWatchers) w(server);
    const state = stateOf(server);
    if (server.slot >= 0 && this.dp.state[server.slot] !== state) {
      server.changedAt = Date.now();
      this.dp.setState(server.slot, state);
    }
    if (had !== down) this.changed();
  }

  /** Sessions waiting in the max_conns queue now (over every worker, when they share it). */
  get queued(): number {
    return this.sharedQueue ? this.sharedQueue.length : this.waiting.length;
  }

  isAvailable(server: Server): boolean {
    return server.down.size === 0;
  }

  /** The weight the schedulers use now (slow start and agents move it; `weight` sets the start). */
  setEffectiveWeight(server: Server, weight: number): void {
    if (server.slot < 0 || this.dp.effectiveWeight[server.slot] === weight) return;
    this.dp.setEffectiveWeight(server.slot, weight);
    this.changed();
  }

  effectiveWeight(server: Server): number {
    return server.slot >= 0 ? this.dp.effectiveWeight[server.slot] : 0;
  }

  /** An admin's `set weight`: the configured weight, which the effective weight follows. */
  setWeight(server: Server, weight: number): void {
    server.weight = weight;
    if (server.slot < 0) return;
    this.dp.setWeight(server.slot, weight);
    // A ketama pool is laid out again to make room: its slots may have moved.
    this.members.forEach((s, k) => { s.slot = this.handle.base + k; });
    this.changed();
  }

  /** Adds a server at run time; it starts up (or out with "admin" when its config says down). */
  addServer(config: ServerConfig): Server {
    if (this.find(config.address.host, config.address.port)) {
      throw new Error(`pool ${this.name} already has server ${formatHostPort(config.address)}`);
    }
    const server = this.newServer(config, config.down ? ["admin"] : []);
    this.servers.push(server);
    try {
      this.place();
    } catch (e) {
      this.servers.pop();
      throw e;
    }
    for (const w of this.watchers) w({ type: "added", server });
    this.changed();
    return server;
  }

  /** Removes a server at run time: it takes no new sessions; those on it go on until they end. */
  removeServer(server: Server): void {
    const i = this.servers.indexOf(server);
    if (i < 0) throw new Error(`pool ${this.name} has no server ${server.label}`);
    this.servers.splice(i, 1);
    this.place();
    server.slot = -1;
    for (const w of this.watchers) w({ type: "removed", server });
    this.changed();
  }

  /** Frees the pool's place in the data plane; ends queued waits. */
  stop(): void {
    if (this.queuePoll) { clearInterval(this.queuePoll); this.queuePoll = null; }
    this.sharedQueue?.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiting.splice(0)) { clearTimeout(w.timer); w.wake("timeout"); }
  }

  /** Stops the pool and gives its slots and tables back (a pool removed at run time). */
  remove(): void {
    this.stop();
    this.dp.removePool(this.handle);
    for (const s of this.members) s.slot = -1;
  }

  // Lays the members out in the data plane again, carrying each one's counters and state.
  private place(): void {
    const members = this.members;
    const specs = members.map((s) => ({
      address: formatHostPort(s.config.address), weight: s.weight, backup: s.config.backup,
      down: s.down.size > 0, maxConns: s.config.maxConns,
    }));
    this.dp.setServers(this.handle, specs, members.map((s) => s.slot));
    members.forEach((s, k) => { s.slot = this.handle.base + k; });
  }

  private atSlot(slot: number): Server {
    const k = slot - this.handle.base;
    return k < this.servers.length ? this.servers[k] : this.sorry!;
  }

  private newServer(config: ServerConfig, down: DownReason[]): Server {
    return {
      pool: this.name,
      slot: -1,
      host: config.address.host,
      port: config.address.port,
      label: `${this.name}/${formatHostPort(config.address)}`,
      config,
      weight: config.weight,
      down: new Set(down),
      fails: 0,
      failWindowStart: 0,
      requests: 0,
      failures: 0,
      changedAt: Date.now(),
      traffic: new Traffic(this.latency),
      shared: -1,
    };
  }

  private remember(req: PickRequest, server: Server): Server {
    this.persistence?.remember(req.client, server);
    return server;
  }

  private acquire(s: Server): Server {
    this.count(s, 1);
    s.requests++;
    return s;
  }
}

/** The data-plane state a server's down reasons make: UP with none, DRAIN when drain is the only
 * one (no new sessions, those on it go on), else DOWN. */
export function stateOf(server: Server): ServerState {
  const d = server.down;
  return d.size === 0 ? STATE_UP : d.size === 1 && d.has("drain") ? STATE_DRAIN : STATE_DOWN;
}
