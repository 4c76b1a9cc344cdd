// The admin API's read side: status, pools and servers, VRRP instances and the effective config,
// as plain JSON-ready objects built from the serving generation. Metrics read the same parts.
import pkg from "../../package.json" with { type: "json" };
import { runtime } from "../runtime/index.ts";
import { type Pool, type Server, stateOf } from "../balancer/pool.ts";
import { STATE_DRAIN, STATE_UP } from "../core/dataplane.ts";
import type { Monitor } from "../health/monitor.ts";
import { monitorKey } from "../health/registry.ts";
import type { PoolHealthSnapshot } from "../health/pool-health.ts";
import { formatHostPort } from "../config/address.ts";
import { formatIP } from "../vrrp/ip.ts";
import type { ControlState } from "./admin-state.ts";
import type { Generation } from "./generation.ts";
import type { PoolConfig } from "./schema.ts";
import { jsonReplacer } from "./admin-http.ts";

/** The operator's setting for a server, HAProxy's words: ready, drain or maint. */
export type AdminState = "ready" | "drain" | "maint";

export function adminState(server: Server): AdminState {
  return server.down.has("admin") ? "maint" : server.down.has("drain") ? "drain" : "ready";
}

/** What the data plane offers: UP (takes new sessions), DRAIN (only drain holds it) or DOWN. */
export function serverState(server: Server): "UP" | "DRAIN" | "DOWN" {
  const state = stateOf(server);
  return state === STATE_UP ? "UP" : state === STATE_DRAIN ? "DRAIN" : "DOWN";
}

export function statusView(state: ControlState) {
  const g = state.generation;
  return {
    version: pkg.version,
    runtime: `${runtime.name} ${runtime.version}`,
    pid: processId(),
    phase: state.phase,
    started_at: new Date(state.startedAt).toISOString(),
    uptime_seconds: Math.round((Date.now() - state.startedAt) / 100) / 10,
    generation: g.id,
    config: { file: state.file, sha256: state.checksum },
    reloads: {
      ok: state.reloads.ok, failed: state.reloads.failed,
      last_at: state.reloads.lastAt ? new Date(state.reloads.lastAt).toISOString() : null,
      last_ok: state.reloads.lastOk, last_errors: state.reloads.lastErrors,
    },
    listeners: g.edge?.listeners.map((l, i) => ({
      name: l.config.name, address: formatHostPort({ host: l.config.bind.host, port: g.edge!.ports[i] }), connections: l.connections,
    })) ?? [],
    pools: [...g.balancer.all()].length,
    vrrp_instances: g.vrrp?.instances.length ?? 0,
  };
}

function processId(): number {
  return (globalThis as { process?: { pid: number } }).process?.pid ?? 0;
}

/** Every monitor of the generation by its key, to find a server's checks. */
export function monitorsByKey(g: Generation): Map<string, Monitor> {
  return new Map(g.health.registry.all().map((m) => [m.key, m]));
}

export function poolView(pool: Pool<PoolConfig>, monitors: Map<string, Monitor>, health: PoolHealthSnapshot | undefined) {
  const c = pool.config;
  return {
    name: pool.name,
    scheduler: c.scheduler,
    queued: pool.queued,
    queue: { size: c.queue.size, timeout_ms: c.queue.timeoutMs },
    health: health ? { panic: health.panic, quorum_met: health.quorumMet, up: health.up, total: health.total } : null,
    servers: pool.servers.map((s) => serverView(pool, s, monitors)),
    sorry_server: pool.sorry ? serverView(pool, pool.sorry, monitors) : null,
  };
}

export function serverView(pool: Pool<PoolConfig>, s: Server, monitors: Map<string, Monitor>) {
  return {
    address: formatHostPort(s.config.address),
    admin: adminState(s),
    state: serverState(s),
    down_reasons: [...s.down],
    weight: s.weight,
    effective_weight: pool.effectiveWeight(s),
    active: pool.active(s),
    backup: s.config.backup,
    max_conns: s.config.maxConns,
    requests: s.requests,
    failures: s.failures,
    last_change: new Date(s.changedAt).toISOString(),
    checks: pool.config.health.checks.map((check) => {
      const m = monitors.get(monitorKey(s.config.address, check));
      return {
        type: check.type,
        up: m?.up ?? null,
        detail: m?.state.lastResult?.detail ?? null,
        checks: m?.checks ?? 0,
        last_check: m && m.lastCheckAt ? new Date(m.lastCheckAt).toISOString() : null,
        duration_ms: m?.lastDurationMs ?? null,
      };
    }),
  };
}

export function poolsView(g: Generation) {
  const monitors = monitorsByKey(g);
  const health = new Map(g.health.snapshot().map((h) => [h.pool, h]));
  return [...g.balancer.all()].map((p) => poolView(p, monitors, health.get(p.name)));
}

export function vrrpView(g: Generation) {
  return (g.vrrp?.instances ?? []).map((i) => ({
    name: i.name,
    interface: i.config.interface,
    vrid: i.vrid,
    state: i.state,
    priority: i.priority,
    configured_priority: i.config.priority,
    addresses: i.config.addresses.map((a) => a.text),
    adverts: { sent: i.sent, received: i.received },
    drops: Object.fromEntries(i.drops),
  }));
}

const REDACTED = "<redacted>";
/** Keys whose values are secrets wherever they appear in the config. */
const SECRET_KEYS = new Set(["authPass", "password", "secret", "token"]);

/** The effective config (defaults filled in), secrets redacted, addresses readable. */
export function configView(g: Generation): unknown {
  return JSON.parse(JSON.stringify(g.config, (key, value) => {
    if (SECRET_KEYS.has(key) && value !== null && value !== undefined) return REDACTED;
    if (value instanceof Uint8Array && (value.length === 4 || value.length === 16)) return formatIP(value);
    return jsonReplacer(key, value);
  }));
}
