// Pools: the config's servers placed in the data plane, key extraction for keyed schedulers,
// each server's availability, and nginx-style passive failure accounting (max_fails within
// fail_timeout takes a server out for fail_timeout).
import { DataPlane, STATE_DOWN, STATE_UP } from "../core/dataplane.ts";
import { formatHostPort, type HashKey, type PoolConfig, type ServerConfig } from "../config/schema.ts";

/** Why a server takes no new sessions. Each part that can take a server out owns one reason and
 * clears only its own: the server is back once no reason is left. */
export type DownReason = "admin" | "passive" | "health" | "outlier";

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
  headers: Headers;
}

export class Pool {
  readonly name: string;
  readonly servers: Server[];
  private readonly id: number;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(readonly config: PoolConfig, private readonly dp: DataPlane) {
    this.name = config.name;
    const handle = dp.addPool({
      scheduler: config.scheduler,
      servers: config.servers.map((s) => ({
        address: formatHostPort(s.address), weight: s.weight, backup: s.backup, down: s.down, maxConns: s.maxConns,
      })),
    });
    this.id = handle.id;
    this.servers = config.servers.map((s, k) => ({
      pool: config.name,
      slot: handle.base + k,
      host: s.address.host,
      port: s.address.port,
      label: `${config.name}/${formatHostPort(s.address)}`,
      config: s,
      down: new Set<DownReason>(s.down ? ["admin"] : []),
      fails: 0,
      failWindowStart: 0,
      requests: 0,
      failures: 0,
    }));
  }

  /** A server for a new request, or null when none can take it. Counts it as active. */
  pick(facts: KeyFacts): Server | null {
    const key = this.config.hashKey ? this.dp.hash(keyOf(this.config.hashKey, facts)) : 0;
    const slot = this.dp.pick(this.id, key);
    if (slot < 0) return null;
    const server = this.servers[slot - this.servers[0].slot];
    this.dp.active[slot]++;
    server.requests++;
    return server;
  }

  release(server: Server): void {
    this.dp.active[server.slot]--;
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
    const t = setTimeout(() => { this.timers.delete(t); this.setDown(server, "passive", false); }, failTimeoutMs);
    this.timers.add(t);
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
  }
}

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

function cookieValue(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function queryArg(target: string, name: string): string | null {
  const q = target.indexOf("?");
  return q < 0 ? null : new URLSearchParams(target.slice(q + 1)).get(name);
}
