// Source persistence (LVS persistence_timeout): a client goes back to the server it had while the
// entry is used within the timeout. Bounded: the least recently used client is forgotten first.
import { idHash } from "../core/hash.ts";

const MAX_PERSISTENT_CLIENTS = 100_000;

/** Where a pool keeps each client's server: SourcePersistence in one process, SharedPersistence
 * over a table every worker maps. `S`: a server, whose slot is -1 once it left its pool. */
export interface Persistence<S extends { slot: number }> {
  /** The client's server, unless the entry expired or the server left the pool. */
  lookup(client: string, now?: number): S | null;
  remember(client: string, server: S, now?: number): void;
}

export class SourcePersistence<S extends { slot: number }> implements Persistence<S> {
  private readonly table = new Map<string, { server: S; expires: number }>();

  constructor(readonly timeoutMs: number, private readonly capacity = MAX_PERSISTENT_CLIENTS) {}

  lookup(client: string, now = Date.now()): S | null {
    const e = this.table.get(client);
    if (!e) return null;
    if (e.expires <= now || e.server.slot < 0) { this.table.delete(client); return null; }
    return e.server;
  }

  remember(client: string, server: S, now = Date.now()): void {
    this.table.delete(client); // re-insert: Map order is then least recently used first
    this.table.set(client, { server, expires: now + this.timeoutMs });
    if (this.table.size > this.capacity) this.table.delete(this.table.keys().next().value!);
  }
}

/** A persistence table shared by processes (workers): entries by pool and client, holding the
 * server's word in the shared session counts (the same in every process). */
export interface SharedPersistenceTable {
  /** The server word `client` has in pool `poolKey`, or -1 (none, or expired by `now`). */
  lookup(poolKey: number, client: string, now: number): number;
  remember(poolKey: number, client: string, server: number, expires: number): void;
}

/** A pool's persistence over a shared table: a server is found again by its shared word among
 * the pool's members now (`members`), so one that left the pool is never returned. */
export class SharedPersistence<S extends { slot: number; shared: number }> implements Persistence<S> {
  private readonly poolKey: number;

  constructor(readonly table: SharedPersistenceTable, pool: string, readonly timeoutMs: number, private readonly members: () => readonly S[]) {
    this.poolKey = idHash(pool);
  }

  lookup(client: string, now = Date.now()): S | null {
    const word = this.table.lookup(this.poolKey, client, now);
    if (word < 0) return null;
    for (const s of this.members()) if (s.shared === word && s.slot >= 0) return s;
    return null;
  }

  remember(client: string, server: S, now = Date.now()): void {
    if (server.shared >= 0) this.table.remember(this.poolKey, client, server.shared, now + this.timeoutMs);
  }
}
