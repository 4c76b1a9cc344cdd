// Source persistence (LVS persistence_timeout): a client goes back to the server it had while the
// entry is used within the timeout. Bounded: the least recently used client is forgotten first.
const MAX_PERSISTENT_CLIENTS = 100_000;

/** `S`: a server, whose slot is -1 once it left its pool. */
export class SourcePersistence<S extends { slot: number }> {
  private readonly table = new Map<string, { server: S; expires: number }>();

  constructor(readonly timeoutMs: number, private readonly capacity = MAX_PERSISTENT_CLIENTS) {}

  /** The client's server, unless the entry expired or the server left the pool. */
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
