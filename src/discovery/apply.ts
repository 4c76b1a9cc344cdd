// The glue from a source to a live pool: it keeps the source's last known set and makes the
// pool's servers match it with the pool's own membership calls (addServer, removeServer,
// setWeight, setDown), so a change reaches the data plane without a reload and health follows
// the servers added and removed. The first full set replaces the servers the config listed.
import { formatHostPort, type HostPort } from "../config/address.ts";
import { SERVER_DEFAULTS } from "../balancer/config.ts";
import type { DownReason, Pool, Server } from "../balancer/pool.ts";
import type { DiscoveredServer, SourceUpdate } from "./source.ts";

// The operator's drain. The balancer's "drain" reason (data-plane DRAIN state) comes with the
// admin API; until then a reason the pool does not know still keeps new sessions off the server.
const DRAIN = "drain" as string as DownReason;

const keyOf = (a: HostPort) => formatHostPort(a).toLowerCase();

export class DiscoveredPool {
  private readonly known = new Map<string, DiscoveredServer>();

  constructor(
    readonly pool: Pool,
    private readonly log: (line: string) => void = (l) => console.error(l),
    /** Called after each update was applied (the bench measures change-to-applied latency). */
    private readonly onApplied?: (update: SourceUpdate) => void,
  ) {}

  apply(update: SourceUpdate): void {
    if (update.kind === "full") {
      this.known.clear();
      for (const s of update.servers) this.known.set(keyOf(s.address), s);
    } else {
      for (const a of update.removed) this.known.delete(keyOf(a));
      for (const s of update.upserts) this.known.set(keyOf(s.address), s);
    }
    this.reconcile();
    this.onApplied?.(update);
  }

  private reconcile(): void {
    const pool = this.pool;
    for (const server of [...pool.servers]) {
      if (this.known.has(keyOf(server))) continue;
      pool.removeServer(server);
      this.log(`fulcrum: discovery: ${server.label} removed`);
    }
    for (const want of this.known.values()) {
      let server = pool.find(want.address.host, want.address.port);
      if (!server) {
        try {
          server = pool.addServer({ ...SERVER_DEFAULTS, address: want.address, weight: want.weight });
        } catch (e) {
          // The data plane is full, say: the rest of the set still applies.
          this.log(`fulcrum: discovery: cannot add ${pool.name}/${formatHostPort(want.address)}: ${(e as Error).message}`);
          continue;
        }
        this.log(`fulcrum: discovery: ${server.label} added (weight ${want.weight}${want.state === "up" ? "" : `, ${want.state}`})`);
      } else if (server.weight !== want.weight) {
        pool.setWeight(server, want.weight);
        this.log(`fulcrum: discovery: ${server.label} weight ${want.weight}`);
      }
      this.setState(server, want);
    }
  }

  private setState(server: Server, want: DiscoveredServer): void {
    const maint = want.state === "maint", drain = want.state === "drain";
    if (server.down.has("admin") === maint && server.down.has(DRAIN) === drain) return;
    this.pool.setDown(server, "admin", maint);
    this.pool.setDown(server, DRAIN, drain);
    this.log(`fulcrum: discovery: ${server.label} ${want.state}`);
  }
}
