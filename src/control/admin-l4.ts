// GET /api/l4: the L4 socket proxy's listeners (tcp, udp, SNI routes) with the proxy's counters,
// and the packet director's `virtual_servers:` shaped as `ipvsadm -Ln` lists them: a virtual
// server with its scheduler and flags, then its real servers with forward method, weight and
// active/inactive connections, from the generation's running director (src/l4/director/service.ts).
// Reads existing state only.
import { formatHostPort } from "../config/address.ts";
import type { LbKind } from "../l4/director/names.ts";
import type { ServiceRow } from "../l4/director/director.ts";
import type { Generation } from "./generation.ts";
import { serverState } from "./admin-read.ts";

/** ipvsadm's words for the forwarding methods. */
export const FORWARD: Record<LbKind, string> = { nat: "Masq", dr: "Route", tun: "Tunnel", fullnat: "FullNat" };

/** What a running director reports (Director.listServices). */
export interface DirectorRows {
  listServices(): ServiceRow[];
}

/** `director`: rows to show instead of the generation's own director's (tests). */
export function l4View(g: Generation, director: DirectorRows | null = null) {
  const state = director ? null : g.director?.state() ?? null;
  const rows = director?.listServices() ?? state?.services ?? null;
  return {
    listeners: l4ListenersView(g),
    counters: g.l4 ? { sessions: g.l4.stats.sessions, retries: g.l4.stats.retries, errors: { ...g.l4.stats.errors } } : null,
    virtual_servers: virtualServersView(g, rows),
    director: rows !== null
      ? { running: true, counters: state ? { ...state.counters, ...g.directorSync?.counters() } : null, ports: state?.ports ?? null, text: state?.text ?? null }
      : { running: false, reason: g.config.virtualServers.length > 0 ? "the director has not started" : "no virtual_servers configured" },
  };
}

/** GET /api/l4/connections: the director's table as `ipvsadm -Lnc` lists it, the first `limit`
 * entries (`truncated` when there are more). */
export function l4ConnectionsView(g: Generation, limit: number) {
  const rows = g.director?.connections(limit + 1) ?? null;
  if (rows === null) return { running: false, truncated: false, connections: [] };
  return {
    running: true,
    truncated: rows.length > limit,
    connections: rows.slice(0, limit).map((r) => ({
      protocol: r.protocol, state: r.state, expires_in: r.expiresIn, client: r.client, virtual: r.virtual,
      local: r.local, server: r.server, template: r.template,
    })),
  };
}

function l4ListenersView(g: Generation) {
  const l4 = g.l4;
  if (!l4) return [];
  return l4.listening.map((l, i) => ({
    name: l.config.name,
    protocol: l.config.protocol,
    address: formatHostPort({ host: l.config.bind.host, port: l4.ports[i] ?? l.config.bind.port }),
    pool: l.config.pool,
    routes: l.config.routes.map((r) => ({ sni: r.sni, pool: r.pool })),
    accept_proxy: l.config.acceptProxy,
    connections: l.connections,
    max_connections: l.config.maxConnections,
  }));
}

function virtualServersView(g: Generation, rows: ServiceRow[] | null) {
  const byName = new Map((rows ?? []).map((r) => [r.name, r]));
  return g.config.virtualServers.map((vs) => {
    const pool = g.balancer.get(vs.pool);
    const row = byName.get(vs.name) ?? null;
    const real = new Map((row?.servers ?? []).map((s) => [s.address, s]));
    const forward = FORWARD[vs.lbKind];
    return {
      name: vs.name,
      protocol: vs.protocol.toUpperCase(),
      virtual: formatHostPort({ host: vs.address, port: vs.port }),
      scheduler: pool?.config.scheduler ?? null,
      lb_kind: vs.lbKind,
      forward,
      persistent_seconds: vs.persistenceMs > 0 ? Math.round(vs.persistenceMs / 1000) : null,
      interface: vs.interface,
      local_addresses: vs.localAddresses,
      pool: vs.pool,
      served: row !== null,
      connections: row?.connections ?? null,
      packets: row ? { in: row.packetsIn, out: row.packetsOut } : null,
      bytes: row ? { in: row.bytesIn, out: row.bytesOut } : null,
      real_servers: (pool?.servers ?? []).map((s) => {
        const address = formatHostPort(s.config.address);
        const r = real.get(address);
        return {
          address, forward, weight: pool!.effectiveWeight(s), state: serverState(s),
          active: r?.active ?? null, inactive: r?.inactive ?? null,
        };
      }),
    };
  });
}
