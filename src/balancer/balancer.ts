// The balancer: every pool of a generation over one data plane. Pools are added and removed at
// run time (admin API, discovery); the parts that keep per-pool state (the edge's HTTP options,
// health) follow through onPools.
import type { DataPlane } from "../core/dataplane.ts";
import type { BalancerPoolConfig } from "./config.ts";
import { Pool } from "./pool.ts";

export type PoolChange<C extends BalancerPoolConfig> = { type: "added" | "removed"; pool: Pool<C> };

/** What a part that follows the pools needs (health; the edge). */
export interface PoolSet<C extends BalancerPoolConfig> {
  all(): Iterable<Pool<C>>;
  onPools(watcher: (change: PoolChange<C>) => void): () => void;
}

/** `C`: the pool config as the control plane keeps it (every part's keys); pools hand it back. */
export class Balancer<C extends BalancerPoolConfig = BalancerPoolConfig> implements PoolSet<C> {
  private readonly pools = new Map<string, Pool<C>>();
  private readonly watchers: ((change: PoolChange<C>) => void)[] = [];

  constructor(readonly dp: DataPlane, configs: Iterable<C> = []) {
    for (const c of configs) this.addPool(c);
  }

  get(name: string): Pool<C> | undefined {
    return this.pools.get(name);
  }

  all(): IterableIterator<Pool<C>> {
    return this.pools.values();
  }

  addPool(config: C): Pool<C> {
    if (this.pools.has(config.name)) throw new Error(`pool ${config.name} exists already`);
    const pool = new Pool(config, this.dp);
    this.pools.set(config.name, pool);
    for (const w of this.watchers) w({ type: "added", pool });
    return pool;
  }

  /** Removes a pool: it takes no new sessions; those in flight finish on their servers. */
  removePool(name: string): void {
    const pool = this.pools.get(name);
    if (!pool) throw new Error(`no pool ${name}`);
    this.pools.delete(name);
    pool.remove();
    for (const w of this.watchers) w({ type: "removed", pool });
  }

  /** A reload: each pool here that `previous` also has (by name) inherits the counts of the
   * sessions in flight on it (Pool.inherit). Returns the undo, for a generation that failed. */
  inherit(previous: Balancer<C>): () => void {
    const undo: (() => void)[] = [];
    for (const pool of this.pools.values()) {
      const old = previous.get(pool.name);
      if (old) undo.push(pool.inherit(old));
    }
    return () => { for (const u of undo) u(); };
  }

  onPools(watcher: (change: PoolChange<C>) => void): () => void {
    this.watchers.push(watcher);
    return () => { const i = this.watchers.indexOf(watcher); if (i >= 0) this.watchers.splice(i, 1); };
  }

  stop(): void {
    for (const p of this.pools.values()) p.stop();
  }
}
