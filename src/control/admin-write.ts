// The admin API's write side, in HAProxy's runtime-API words: set a server ready, drain or maint,
// set its weight, add and remove servers and pools. Every change goes through the balancer's live
// membership (health and the edge follow it) and lasts until the next reload: the config file is
// not written.
import type { Balancer } from "../balancer/balancer.ts";
import type { DownReason, Pool, Server } from "../balancer/pool.ts";
import { readServer } from "../balancer/config.ts";
import { Checker, type SchemaIssue } from "../config/checker.ts";
import { formatPath } from "../config/errors.ts";
import { formatHostPort, parseHostPort } from "../config/address.ts";
import { ApiError } from "./admin-http.ts";
import { type AdminState, adminState, serverView } from "./admin-read.ts";
import type { Generation } from "./generation.ts";
import { type PoolConfig, readPoolConfig } from "./schema.ts";

/** What a write did: the log line's "what", and the answer's body. */
export interface WriteResult {
  what: string;
  body: Record<string, unknown>;
}

/** Said in every answer: the change is not in the config file. */
export const LASTS = "until the next reload (the config file is not changed)";
const MAX_WEIGHT = 256;

export function findPool(g: Generation, name: string): Pool<PoolConfig> {
  const pool = g.balancer.get(name);
  if (!pool) {
    const names = [...g.balancer.all()].map((p) => p.name);
    throw new ApiError(404, `no pool ${JSON.stringify(name)}`, { pools: names });
  }
  return pool;
}

export function findServer(pool: Pool<PoolConfig>, address: string): Server {
  const hp = parseHostPort(address, true);
  if (!hp) throw new ApiError(400, `expected a server address "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`);
  const server = pool.find(hp.host, hp.port);
  if (!server) {
    const servers = pool.servers.map((s) => formatHostPort(s.config.address));
    throw new ApiError(404, `pool ${pool.name} has no server ${formatHostPort(hp)}`, { servers });
  }
  return server;
}

/** ready: takes sessions again; drain: no new sessions, those on it go on, checks go on; maint:
 * out, as `down: true` in the config (checks go on, so its health is known when it is back). */
export function setAdminState(g: Generation, poolName: string, address: string, to: AdminState): WriteResult {
  const pool = findPool(g, poolName);
  const server = findServer(pool, address);
  const from = adminState(server);
  const set: Record<AdminState, DownReason | null> = { ready: null, drain: "drain", maint: "admin" };
  for (const reason of ["drain", "admin"] as const) pool.setDown(server, reason, set[to] === reason);
  const view = serverView(pool, server, new Map());
  return {
    what: `${to} ${server.label} (was ${from})`,
    body: {
      ok: true,
      message: `${server.label} is ${to} (was ${from}); this lasts ${LASTS}`,
      pool: pool.name, server: view.address, admin: to, previous: from, state: view.state, active: view.active, lasts: LASTS,
    },
  };
}

export function setWeight(g: Generation, poolName: string, address: string, body: Record<string, unknown>): WriteResult {
  const pool = findPool(g, poolName);
  const server = findServer(pool, address);
  const weight = body.weight;
  if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) {
    throw new ApiError(400, `weight: expected an integer 0..${MAX_WEIGHT}, got ${JSON.stringify(weight ?? null)}`);
  }
  const from = server.weight;
  pool.setWeight(server, weight);
  return {
    what: `weight ${server.label} ${from} -> ${weight}`,
    body: {
      ok: true, message: `${server.label} weight ${from} -> ${weight}; this lasts ${LASTS}`,
      pool: pool.name, server: formatHostPort(server.config.address), weight, previous: from,
      effective_weight: pool.effectiveWeight(server), lasts: LASTS,
    },
  };
}

/** Adds a server from the same keys a config server takes ({"address": "10.0.0.3:80", "weight": 2}). */
export function addServer(g: Generation, poolName: string, body: Record<string, unknown>): WriteResult {
  const pool = findPool(g, poolName);
  const c = new Checker();
  const config = readServer(c, body, ["server"]);
  if (!config || c.issues.length > 0) throw invalid("invalid server", c.issues);
  const address = formatHostPort(config.address);
  if (pool.find(config.address.host, config.address.port)) throw new ApiError(409, `pool ${pool.name} already has server ${address}`);
  let server: Server;
  try {
    server = pool.addServer(config);
  } catch (e) {
    throw new ApiError(409, (e as Error).message);
  }
  return {
    what: `add server ${server.label} weight ${config.weight}`,
    body: { ok: true, message: `added ${server.label}; it lasts ${LASTS}`, pool: pool.name, server: address, lasts: LASTS },
  };
}

/** Removes a server: no new sessions; those on it finish. */
export function removeServer(g: Generation, poolName: string, address: string): WriteResult {
  const pool = findPool(g, poolName);
  const server = findServer(pool, address);
  if (server === pool.sorry) throw new ApiError(409, `${server.label} is the pool's sorry server; it is removed with the pool only`);
  const active = pool.active(server);
  pool.removeServer(server);
  return {
    what: `remove server ${server.label} (${active} active)`,
    body: {
      ok: true, message: `removed ${server.label}; ${active} session(s) on it finish there; this lasts ${LASTS}`,
      pool: pool.name, server: formatHostPort(server.config.address), active, lasts: LASTS,
    },
  };
}

/** Adds a pool from the keys a config pool takes, plus "name"; with `discovery` the running
 * discovery service follows it. Routes are not changed, so the edge sends it nothing until a
 * reload adds a route to it. */
export function addPool(g: Generation, body: Record<string, unknown>): WriteResult {
  const { name, ...rest } = body;
  if (typeof name !== "string" || name === "") throw new ApiError(400, `name: expected a pool name, got ${JSON.stringify(name ?? null)}`);
  if (g.balancer.get(name)) throw new ApiError(409, `pool ${name} exists already`);
  // `discovery` may name only a kind the running config's `discovery:` section configures.
  const read = readPoolConfig(name, rest, g.discovery ? ["etcd"] : []);
  if (!read.ok) throw invalid("invalid pool", read.issues);
  let pool: Pool<PoolConfig>;
  try {
    pool = (g.balancer as Balancer<PoolConfig>).addPool(read.config);
  } catch (e) {
    throw new ApiError(409, (e as Error).message);
  }
  const discovery = read.config.discovery;
  // The config pools' path: a full read of the pool's prefix, then the watch.
  if (discovery) g.discovery!.follow(pool, discovery);
  const from = discovery ? `, and servers from ${discovery}` : "";
  return {
    what: `add pool ${name} (${read.config.servers.length} servers${from})`,
    body: {
      ok: true, message: `added pool ${name}${from}; no route sends to it until a reload adds one; it lasts ${LASTS}`,
      pool: name, servers: read.config.servers.map((s) => formatHostPort(s.address)), discovery, lasts: LASTS,
    },
  };
}

/** Removes a pool nothing refers to (a route sending to a removed pool would have nowhere to go). */
export function removePool(g: Generation, name: string): WriteResult {
  const pool = findPool(g, name);
  const routes = g.config.routes.filter((r) => r.pool === name).map((r) => r.name);
  const tracking = (g.config.vrrp?.instances ?? []).filter((i) => i.trackPools.some((t) => t.name === name)).map((i) => i.name);
  if (routes.length > 0 || tracking.length > 0) {
    const users = [...routes.map((r) => `route ${r}`), ...tracking.map((i) => `vrrp instance ${i} (track_pool)`)];
    throw new ApiError(409, `pool ${name} is used by ${users.join(", ")}; change the config and reload instead`, { used_by: users });
  }
  const active = pool.servers.reduce((sum, s) => sum + pool.active(s), 0);
  // Stopped first: no read or watch event reaches the pool from here on.
  g.discovery?.unfollow(name).catch((e) => console.error(`fulcrum: discovery: stopping pool ${name}: ${(e as Error).message}`));
  g.balancer.removePool(name);
  return {
    what: `remove pool ${name} (${active} active)`,
    body: { ok: true, message: `removed pool ${name}; ${active} session(s) in it finish; this lasts ${LASTS}`, pool: name, active, lasts: LASTS },
  };
}

function invalid(what: string, issues: SchemaIssue[]): ApiError {
  const list = issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  return new ApiError(400, `${what}: ${list.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { issues: list });
}
