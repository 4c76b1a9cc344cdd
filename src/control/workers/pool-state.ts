// The pools' state the supervisor decides and its workers follow: membership (discovery, admin),
// each server's down reasons from health and the operator, its configured and effective weight
// (slow start, agents), and its word in the shared session counts. Sent whole after any change
// (coalesced), and first to a new worker; a worker applies it to its own pools.
import type { DownReason, Pool, Server } from "../../balancer/pool.ts";
import type { ServerConfig } from "../../balancer/config.ts";
import type { Balancer } from "../../balancer/balancer.ts";
import { formatHostPort } from "../../config/address.ts";
import { schedulerInfo } from "../../core/schedulers.ts";

/** The reasons the supervisor sends: all of them. A worker takes "passive" from the words its
 * pool counts max_fails in with the other workers (shared-passive.ts), and from here only for a
 * server without them (its supervisor then counts that server's failures). */
const RELAYED: readonly DownReason[] = ["admin", "drain", "passive", "health", "outlier", "quorum", "standby"];

export interface ServerState {
  config: ServerConfig;
  weight: number;
  effective: number;
  down: DownReason[];
  shared: number;
  sorry: boolean;
}

export interface PoolState {
  servers: ServerState[];
  /** The pool's own shared word: rr's position in the shared counts; the lock of its
   * scheduler's state in the scheduler segment (scheduler-segment.ts). */
  cursor: number;
  /** lblc, lblcr: its table in the scheduler segment, -1 for none. */
  table: number;
  /** The pool's queue in the shared wait table (wait-table.ts), -1: each worker keeps its own. */
  queue: number;
}

export type PoolsState = Record<string, PoolState>;

/** Gives each (pool, address) one word of the shared counts for the supervisor's lifetime, so the
 * same server in the next generation's workers counts on the same word (sessions in flight on
 * retiring workers stay counted, as Pool.inherit does within one process). */
export class SharedIndex {
  private readonly words = new Map<string, number>();
  private readonly tables = new Map<string, number>();
  private readonly queues = new Map<string, number>();
  constructor(private readonly capacity: number, private readonly tableCapacity = 0, private readonly queueCapacity = 0) {}

  /** The pool's queue in the shared wait table (the same pool name over generations, so waiters
   * of a retiring generation's workers and of the new one's are one queue); -1 when it is full. */
  queueOf(pool: string): number {
    let q = this.queues.get(pool);
    if (q === undefined) {
      if (this.queues.size >= this.queueCapacity) return -1;
      this.queues.set(pool, q = this.queues.size);
    }
    return q;
  }

  of(pool: string, server: Server): number {
    return this.word(`${pool}/${formatHostPort(server.config.address)}`);
  }

  /** The word of a listener's open connections (max_connections over every worker), by its
   * name (unique over http and l4 listeners): a reload's generations count on the same word. */
  listenerOf(name: string): number {
    return this.word(`@listener ${name}`);
  }

  /** The pool's own word: rr's position (in the counts), the lock of its scheduler's state (in
   * the scheduler segment). */
  cursorOf(pool: string): number {
    return this.word(`${pool}#rr`);
  }

  /** The locality table of a pool (lblc, lblcr), -1 when every table is taken. */
  tableOf(pool: string): number {
    let t = this.tables.get(pool);
    if (t === undefined) {
      if (this.tables.size >= this.tableCapacity) return -1; // kept per worker
      t = this.tables.size;
      this.tables.set(pool, t);
    }
    return t;
  }

  private word(key: string): number {
    let w = this.words.get(key);
    if (w === undefined) {
      if (this.words.size >= this.capacity) return -1; // counted per worker only (logged once by the caller)
      w = this.words.size;
      this.words.set(key, w);
    }
    return w;
  }
}

export function poolsState(balancer: Balancer<never> | { all(): Iterable<Pool> }, index: SharedIndex): PoolsState {
  const out: PoolsState = {};
  for (const p of balancer.all()) {
    const row = (s: Server, sorry: boolean): ServerState => {
      if (s.shared < 0) s.shared = index.of(p.name, s);
      return {
        config: s.config, weight: s.weight, effective: p.effectiveWeight(s),
        down: RELAYED.filter((r) => s.down.has(r)), shared: s.shared, sorry,
      };
    };
    out[p.name] = {
      servers: [...p.servers.map((s) => row(s, false)), ...(p.sorry ? [row(p.sorry, true)] : [])],
      cursor: index.cursorOf(p.name),
      table: schedulerInfo(p.config.scheduler).table === "locality" ? index.tableOf(p.name) : -1,
      queue: index.queueOf(p.name),
    };
  }
  return out;
}

/** Brings a worker's pools to `state`: servers added and removed, reasons and weights set. Pools
 * the worker does not have (added through the admin API) are left out. */
export function applyPoolsState(pools: { get(name: string): Pool | undefined }, state: PoolsState): void {
  for (const [name, { servers: rows }] of Object.entries(state)) {
    const pool = pools.get(name);
    if (!pool) continue;
    const key = (c: ServerConfig) => formatHostPort(c.address);
    const wanted = new Map(rows.filter((r) => !r.sorry).map((r) => [key(r.config), r]));
    for (const s of [...pool.servers]) if (!wanted.has(key(s.config))) pool.removeServer(s);
    for (const r of rows) {
      let s = r.sorry ? pool.sorry : pool.find(r.config.address.host, r.config.address.port);
      if (!s && !r.sorry) s = pool.addServer(r.config);
      if (!s) continue;
      s.shared = r.shared;
      if (s.weight !== r.weight) pool.setWeight(s, r.weight);
      for (const reason of RELAYED) {
        if (reason === "passive" && pool.sharesPassive(s)) continue;
        if (s.down.has(reason) !== r.down.includes(reason)) pool.setDown(s, reason, r.down.includes(reason));
      }
      pool.setEffectiveWeight(s, r.effective);
    }
  }
}
