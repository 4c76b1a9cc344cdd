// Fulcrum's metrics: every family, collected at scrape time from the serving generation (the
// edge's listeners, the balancer's pools and servers, health's monitors, VRRP's instances) and
// the process. Names follow Prometheus conventions: fulcrum_<part>_<what>_<unit>[_total].
import { readdirSync } from "node:fs";
import process from "node:process";
import pkg from "../../package.json" with { type: "json" };
import { runtime } from "../runtime/index.ts";
import type { Pool, Server } from "../balancer/pool.ts";
import type { SocketListener } from "../edge/http1/listener.ts";
import { ERROR_KINDS } from "../edge/stats.ts";
import { L4_ERROR_KINDS } from "../l4/stats.ts";
import { REASONS, TABLE_COUNTERS } from "../l4/director/names.ts";
import { R_DROP_FIRST } from "../core/layout.ts";
import type { Monitor } from "../health/monitor.ts";
import type { VrrpInstance } from "../vrrp/instance.ts";
import { DROP_REASONS } from "../vrrp/packet.ts";
import { formatHostPort } from "../config/address.ts";
import { labels, labelValue, type MetricWriter, Registry } from "./metrics.ts";
import { adminState } from "./admin-read.ts";
import type { ControlState } from "./admin-state.ts";
import type { PoolConfig } from "./schema.ts";
import { type LogSink, openSinks } from "../log/sink.ts";
import { limitRows } from "./admin-limits.ts";

// The extra label of each sample, written as is.
const CODES = ["", 'code="1xx"', 'code="2xx"', 'code="3xx"', 'code="4xx"', 'code="5xx"'];
const ADMIN_STATES = ["ready", "drain", "maint"] as const;
const ADMIN_STATE_LABELS = ADMIN_STATES.map((a) => `state="${a}"`);
const VRRP_STATES = ["INIT", "BACKUP", "MASTER", "FAULT"] as const;
const VRRP_STATE_LABELS = VRRP_STATES.map((st) => `state="${st}"`);
const KIND_LABELS = ERROR_KINDS.map((k) => `kind="${k}"`);
const L4_KIND_LABELS = L4_ERROR_KINDS.map((k) => `kind="${k}"`);
const PRIORITY_LABELS = Array.from({ length: 10 }, (_, k) => `priority="${k}"`);
const REASON_LABELS = DROP_REASONS.map((r) => `reason="${r}"`);

export interface FulcrumMetrics {
  registry: Registry;
  render(): Uint8Array<ArrayBuffer>;
}

/** Admin API requests by status code, counted by the admin service. */
export type AdminCounts = Map<number, number>;

export function fulcrumMetrics(state: ControlState, adminRequests: AdminCounts): FulcrumMetrics {
  const r = new Registry();
  const g = () => state.generation;

  // Label sets, made once per object.
  const serverLabels = new WeakMap<Server, string>();
  const sl = (s: Server) => {
    let l = serverLabels.get(s);
    if (l === undefined) { l = labels({ pool: s.pool, server: formatHostPort(s.config.address) }); serverLabels.set(s, l); }
    return l;
  };
  const listenerLabels = new WeakMap<SocketListener, string>();
  const ll = (l: SocketListener) => {
    let s = listenerLabels.get(l);
    if (s === undefined) { s = labels({ listener: l.config.name }); listenerLabels.set(l, s); }
    return s;
  };
  const poolLabels = new WeakMap<Pool<PoolConfig>, string>();
  const pl = (p: Pool<PoolConfig>) => {
    let s = poolLabels.get(p);
    if (s === undefined) { s = labels({ pool: p.name }); poolLabels.set(p, s); }
    return s;
  };
  const il = (i: VrrpInstance) => `instance="${labelValue(i.name)}"`;

  // What one scrape reads, gathered once per render into arrays kept between renders: the
  // servers with their label sets, and the monitors with theirs.
  const rowPool: Pool<PoolConfig>[] = [], rowServer: Server[] = [], rowLabel: string[] = [];
  const monitors: Monitor[] = [], monitorLabel: string[] = [];
  const monitorBase = new Map<string, string>();
  const seen = new Map<string, number>();
  const snapshot = () => {
    rowPool.length = rowServer.length = rowLabel.length = 0;
    for (const p of g().balancer.all()) {
      for (const s of p.servers) { rowPool.push(p); rowServer.push(s); rowLabel.push(sl(s)); }
      if (p.sorry) { rowPool.push(p); rowServer.push(p.sorry); rowLabel.push(sl(p.sorry)); }
    }
    // Two definitions of one check type on one address get a variant label, so series stay unique.
    monitors.length = monitorLabel.length = 0;
    seen.clear();
    for (const m of g().health.registry.all()) {
      let base = monitorBase.get(m.key);
      if (base === undefined) { base = labels({ address: m.address, check: m.check.type }); monitorBase.set(m.key, base); }
      const k = (seen.get(base) ?? 0) + 1;
      seen.set(base, k);
      monitors.push(m);
      monitorLabel.push(k === 1 ? base : `${base},variant="${k}"`);
    }
  };
  const eachServer = (fn: (p: Pool<PoolConfig>, s: Server, l: string) => void) => {
    for (let i = 0; i < rowServer.length; i++) fn(rowPool[i], rowServer[i], rowLabel[i]);
  };
  const eachMonitor = (fn: (m: Monitor, l: string) => void) => {
    for (let i = 0; i < monitors.length; i++) fn(monitors[i], monitorLabel[i]);
  };
  const listeners = () => g().edge?.listeners ?? [];
  const instances = () => g().vrrp?.instances ?? [];

  // ------------------------------------------------------------------ process and config
  const info = labels({ version: pkg.version, runtime: `${runtime.name} ${runtime.version}` });
  r.add("fulcrum_build_info", "gauge", "Fulcrum's version and runtime (always 1).", (w, n) => w.sample(n, info, 1));
  r.add("process_start_time_seconds", "gauge", "When the process started, seconds since the epoch.", (w, n) => w.sample(n, "", state.startedAt / 1000));
  r.add("process_cpu_seconds_total", "counter", "User and system CPU time spent.", (w, n) => {
    const u = process.cpuUsage();
    w.sample(n, "", (u.user + u.system) / 1e6);
  });
  // memoryUsage() costs about a millisecond (it walks the heap): read once per scrape, here.
  let memory = process.memoryUsage();
  r.add("process_resident_memory_bytes", "gauge", "Resident set size.", (w, n) => { memory = process.memoryUsage(); w.sample(n, "", memory.rss); });
  r.add("fulcrum_js_heap_used_bytes", "gauge", "JavaScript heap in use (the runtime exposes no GC counters; watch this).", (w, n) => w.sample(n, "", memory.heapUsed));
  r.add("fulcrum_js_heap_total_bytes", "gauge", "JavaScript heap reserved.", (w, n) => w.sample(n, "", memory.heapTotal));
  r.add("process_open_fds", "gauge", "Open file descriptors (sockets included).", (w, n) => {
    const fds = openFds();
    if (fds >= 0) w.sample(n, "", fds);
  });
  r.add("fulcrum_config_generation", "gauge", "The generation serving now (1 at start, one more per reload).", (w, n) => w.sample(n, "", g().id));
  r.add("fulcrum_config_last_reload_successful", "gauge", "1 when the last reload succeeded (or none was tried), else 0.", (w, n) => w.sample(n, "", state.reloads.lastOk ? 1 : 0));
  r.add("fulcrum_config_last_reload_timestamp_seconds", "gauge", "When the last reload was tried, seconds since the epoch (0: never).", (w, n) => w.sample(n, "", state.reloads.lastAt / 1000));
  r.add("fulcrum_config_reloads_total", "counter", "Reloads by result.", (w, n) => {
    w.sample(n, 'result="ok"', state.reloads.ok);
    w.sample(n, 'result="failed"', state.reloads.failed);
  });
  r.add("fulcrum_admin_requests_total", "counter", "Admin API requests by status code.", (w, n) => {
    for (const [code, count] of adminRequests) w.sample(n, `code="${code}"`, count); // a few codes
  });

  // ------------------------------------------------------------------ listeners
  r.add("fulcrum_listener_connections_total", "counter", "Client connections accepted.", (w, n) => { for (const l of listeners()) w.sample(n, ll(l), l.stats.connections); });
  r.add("fulcrum_listener_connections", "gauge", "Client connections open now.", (w, n) => { for (const l of listeners()) w.sample(n, ll(l), l.connections); });
  r.add("fulcrum_listener_requests_total", "counter", "Requests received.", (w, n) => { for (const l of listeners()) w.sample(n, ll(l), l.stats.requests); });
  r.add("fulcrum_listener_responses_total", "counter", "Responses by status class, Fulcrum's own error answers included.", (w, n) => {
    for (const l of listeners()) { const b = ll(l); for (let c = 1; c <= 5; c++) w.sampleWith(n, b, CODES[c], l.stats.responses[c]); }
  });
  r.add("fulcrum_listener_received_bytes_total", "counter", "Bytes received from clients.", (w, n) => { for (const l of listeners()) w.sample(n, ll(l), l.stats.bytesIn); });
  r.add("fulcrum_listener_sent_bytes_total", "counter", "Response bytes passed on from servers to clients.", (w, n) => { for (const l of listeners()) w.sample(n, ll(l), l.stats.bytesOut); });
  r.add("fulcrum_listener_retries_total", "counter", "Requests tried again on another server.", (w, n) => { for (const l of listeners()) w.sample(n, ll(l), l.stats.retries); });
  r.add("fulcrum_listener_errors_total", "counter", "Failed requests and connections by kind.", (w, n) => {
    for (const l of listeners()) { const b = ll(l); ERROR_KINDS.forEach((k, i) => w.sampleWith(n, b, KIND_LABELS[i], l.stats.errors[k])); }
  });

  r.add("fulcrum_listener_overload_shed_total", "counter", "Requests shed by the listener's overload guard (503 with Retry-After), by reason.", (w, n) => {
    for (const l of listeners()) if (l.overload) { const b = ll(l); for (const [reason, v] of Object.entries(l.overload.shed)) w.sampleWith(n, b, `reason="${reason}"`, v); }
  });
  r.add("fulcrum_event_loop_lag_seconds", "gauge", "How late the overload guards' last periodic sample ran (0 while no listener has a guard).", (w, n) => w.sample(n, "", state.eventLoopLagMs() / 1000));

  // ------------------------------------------------------------------ L4 proxy
  // Sessions, retries and errors are the proxy's (all its listeners); open connections per listener.
  const l4 = () => g().l4;
  r.add("fulcrum_l4_listener_connections", "gauge", "TCP connections (udp: sessions) open now on the L4 listener.", (w, n) => {
    for (const l of l4()?.listening ?? []) w.sample(n, `listener="${labelValue(l.config.name)}",protocol="${l.config.protocol}"`, l.connections);
  });
  r.add("fulcrum_l4_sessions_total", "counter", "L4 sessions started (tcp connections accepted, udp client sessions).", (w, n) => { const p = l4(); if (p) w.sample(n, "", p.stats.sessions); });
  r.add("fulcrum_l4_retries_total", "counter", "L4 connects tried again on another server.", (w, n) => { const p = l4(); if (p) w.sample(n, "", p.stats.retries); });
  r.add("fulcrum_l4_errors_total", "counter", "L4 sessions refused, failed or timed out, by kind.", (w, n) => {
    const p = l4();
    if (p) L4_ERROR_KINDS.forEach((k, i) => w.sample(n, L4_KIND_LABELS[i], p.stats.errors[k]));
  });

  // ------------------------------------------------------------------ packet director
  // One read of the director's counters per family (a few dozen words of its memory).
  const directorCounters = () => g().director?.state()?.counters ?? null;
  const forwardReasons = Object.entries(REASONS).filter(([, code]) => code < R_DROP_FIRST).map(([name]) => name);
  const dropReasons = Object.entries(REASONS).filter(([, code]) => code >= R_DROP_FIRST).map(([name]) => name);
  r.add("fulcrum_director_forwarded_packets_total", "counter", "Packets the packet director forwarded, by direction and kind.", (w, n) => {
    const c = directorCounters();
    if (c) for (const name of forwardReasons) w.sample(n, `reason="${name}"`, c[name]);
  });
  r.add("fulcrum_director_dropped_packets_total", "counter", "Packets the packet director dropped, by reason.", (w, n) => {
    const c = directorCounters();
    if (c) for (const name of dropReasons) w.sample(n, `reason="${name}"`, c[name]);
  });
  r.add("fulcrum_director_connection_events_total", "counter", "Connection table events: entries created, expired, evicted, adopted (a moved flow), templates, refiled.", (w, n) => {
    const c = directorCounters();
    if (c) for (const name of Object.keys(TABLE_COUNTERS)) w.sample(n, `event="${name}"`, c[name]);
  });
  r.add("fulcrum_director_connections", "gauge", "Connection table entries in use.", (w, n) => {
    const c = directorCounters();
    if (c) w.sample(n, "", c.in_use);
  });
  // Connection sync between directors (src/l4/director/sync/), present with director_sync.
  const sync = () => g().directorSync?.counts() ?? null;
  r.add("fulcrum_director_sync_datagrams_total", "counter", "Sync datagrams sent, failed to send, and received (before any check).", (w, n) => {
    const c = sync();
    if (c) { w.sample(n, `event="sent"`, c.sent); w.sample(n, `event="send_error"`, c.sendErrors); w.sample(n, `event="received"`, c.received); }
  });
  r.add("fulcrum_director_sync_rejected_datagrams_total", "counter", "Sync datagrams refused whole, by reason.", (w, n) => {
    const c = sync();
    if (c) for (const [reason, v] of Object.entries(c.rejected)) w.sample(n, `reason="${reason}"`, v);
  });
  r.add("fulcrum_director_sync_records_total", "counter", "Connection records sent, and applied as new or refreshed entries.", (w, n) => {
    const c = sync();
    if (c) { w.sample(n, `event="sent"`, c.recordsSent); w.sample(n, `event="imported"`, c.recordsImported); w.sample(n, `event="updated"`, c.recordsUpdated); }
  });
  r.add("fulcrum_director_sync_rejected_records_total", "counter", "Connection records refused, by reason.", (w, n) => {
    const c = sync();
    if (c) for (const [reason, v] of Object.entries(c.recordsRejected)) w.sample(n, `reason="${reason}"`, v);
  });

  // ------------------------------------------------------------------ routes
  const routes = () => g().edge?.routeStats ?? new Map();
  r.add("fulcrum_route_requests_total", "counter", "Requests the route matched.", (w, n) => {
    for (const [route, st] of routes()) w.sample(n, `route="${labelValue(route.name)}",pool="${labelValue(route.pool)}"`, st.requests);
  });
  r.add("fulcrum_route_responses_total", "counter", "Responses to the route's requests by status class.", (w, n) => {
    for (const [route, st] of routes()) {
      const b = `route="${labelValue(route.name)}",pool="${labelValue(route.pool)}"`;
      for (let c = 1; c <= 5; c++) w.sampleWith(n, b, CODES[c], st.responses[c]);
    }
  });
  r.add("fulcrum_route_refused_total", "counter", "Requests the route's access rules refused: allow/deny (403) or basic auth (401).", (w, n) => {
    for (const [route, st] of routes()) {
      const b = `route="${labelValue(route.name)}",pool="${labelValue(route.pool)}"`;
      w.sampleWith(n, b, 'reason="denied"', st.denied);
      w.sampleWith(n, b, 'reason="unauthorized"', st.unauthorized);
    }
  });

  // ------------------------------------------------------------------ per-client limits
  // A handful of tables: their rows are read once per family (each row reads a few table words).
  const limitLabel = (row: { scope: string; name: string; limit: string }) =>
    `scope="${row.scope}",name="${labelValue(row.name)}",limit="${row.limit}"`;
  r.add("fulcrum_limit_rejected_total", "counter", "Requests (tcp: connections) refused by the listener's or route's rate_limit or conn_limit.", (w, n) => {
    for (const row of limitRows(g())) w.sample(n, limitLabel(row), row.rejected + row.full);
  });
  r.add("fulcrum_limit_evictions_total", "counter", "Tracked keys replaced by a new key in a full table (their state lost).", (w, n) => {
    for (const row of limitRows(g())) w.sample(n, limitLabel(row), row.evictions);
  });
  r.add("fulcrum_limit_entries", "gauge", "Keys the table tracks now.", (w, n) => { for (const row of limitRows(g())) w.sample(n, limitLabel(row), row.entries); });
  r.add("fulcrum_limit_size", "gauge", "Keys the table can track (its configured size).", (w, n) => { for (const row of limitRows(g())) w.sample(n, limitLabel(row), row.size); });
  r.add("fulcrum_limit_memory_bytes", "gauge", "Data-plane memory the table holds.", (w, n) => { for (const row of limitRows(g())) w.sample(n, limitLabel(row), row.bytes); });

  // ------------------------------------------------------------------ pools
  r.add("fulcrum_pool_servers", "gauge", "Servers in the pool (the sorry server not counted).", (w, n) => { for (const p of g().balancer.all()) w.sample(n, pl(p), p.servers.length); });
  r.add("fulcrum_pool_servers_available", "gauge", "Servers taking new sessions now.", (w, n) => {
    for (const p of g().balancer.all()) { let up = 0; for (const s of p.servers) if (s.down.size === 0) up++; w.sample(n, pl(p), up); }
  });
  r.add("fulcrum_pool_queued", "gauge", "Sessions waiting for a server below its max_conns.", (w, n) => { for (const p of g().balancer.all()) w.sample(n, pl(p), p.queued); });
  // Route priorities (0..9) with a count only: ten series a pool would be mostly zeros.
  r.add("fulcrum_pool_queue_served_total", "counter", "Queued sessions that got a server, by route priority.", (w, n) => {
    for (const p of g().balancer.all()) p.queueServed.forEach((v, k) => { if (v > 0) w.sampleWith(n, pl(p), PRIORITY_LABELS[k], v); });
  });
  r.add("fulcrum_pool_queue_shed_total", "counter", "Sessions shed at the full queue (503 with Retry-After; L4: closed), by route priority.", (w, n) => {
    for (const p of g().balancer.all()) p.queueShed.forEach((v, k) => { if (v > 0) w.sampleWith(n, pl(p), PRIORITY_LABELS[k], v); });
  });
  // Per pool, not per server (as Envoy's per-cluster histograms): 16 series a server would be most of a scrape.
  r.add("fulcrum_pool_connect_duration_seconds", "histogram", "Time to open a new connection to a server of the pool.", (w, n) => { for (const p of g().balancer.all()) w.histogramMs(n, pl(p), p.latency.connectTime); });
  r.add("fulcrum_pool_response_duration_seconds", "histogram", "From a request's arrival to a server's response head.", (w, n) => { for (const p of g().balancer.all()) w.histogramMs(n, pl(p), p.latency.responseTime); });
  r.add("fulcrum_pool_active", "gauge", "Sessions on the pool's servers now.", (w, n) => {
    for (const p of g().balancer.all()) { let a = 0; for (const s of p.servers) a += p.active(s); w.sample(n, pl(p), a); }
  });

  // ------------------------------------------------------------------ servers
  r.add("fulcrum_server_up", "gauge", "1 when the server takes new sessions (no down reason), else 0.", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.down.size === 0 ? 1 : 0)));
  r.add("fulcrum_server_admin_state", "gauge", "The operator's setting: 1 for the current one of ready, drain, maint.", (w, n) => eachServer((_, s, l) => {
    const now = adminState(s);
    for (let i = 0; i < ADMIN_STATES.length; i++) w.sampleWith(n, l, ADMIN_STATE_LABELS[i], ADMIN_STATES[i] === now ? 1 : 0);
  }));
  r.add("fulcrum_server_weight", "gauge", "Configured weight (config or admin).", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.weight)));
  r.add("fulcrum_server_effective_weight", "gauge", "Weight the schedulers use now (slow start, agents).", (w, n) => eachServer((p, s, l) => w.sample(n, l, p.effectiveWeight(s))));
  r.add("fulcrum_server_response_time_estimate_seconds", "gauge", "least_time pools: the server's response-time estimate as last set (0: none yet).", (w, n) => eachServer((p, s, l) => {
    const ms = p.timeEstimate(s);
    if (ms !== null) w.sample(n, l, ms / 1000);
  }));
  r.add("fulcrum_server_active", "gauge", "Sessions on the server now.", (w, n) => eachServer((p, s, l) => w.sample(n, l, p.active(s))));
  r.add("fulcrum_server_requests_total", "counter", "Sessions sent to the server (each try counts).", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.requests)));
  r.add("fulcrum_server_failures_total", "counter", "Sessions that failed on the server (passive failures).", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.failures)));
  r.add("fulcrum_server_responses_total", "counter", "Responses from the server by status class.", (w, n) => eachServer((_, s, l) => {
    const rs = s.traffic.responses;
    for (let c = 1; c <= 5; c++) w.sampleWith(n, l, CODES[c], rs[c]);
  }));
  r.add("fulcrum_server_request_bytes_total", "counter", "Request bytes sent to the server.", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.traffic.bytesIn)));
  r.add("fulcrum_server_response_bytes_total", "counter", "Response bytes from the server passed on to clients.", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.traffic.bytesOut)));
  r.add("fulcrum_server_last_change_timestamp_seconds", "gauge", "When the server last went in or out, seconds since the epoch.", (w, n) => eachServer((_, s, l) => w.sample(n, l, s.changedAt / 1000)));

  // ------------------------------------------------------------------ health
  r.add("fulcrum_health_check_up", "gauge", "1 when the check's verdict is up (shared by every pool checking this address so).", (w, n) => eachMonitor((m, l) => w.sample(n, l, m.up ? 1 : 0)));
  r.add("fulcrum_health_checks_total", "counter", "Checks completed.", (w, n) => eachMonitor((m, l) => w.sample(n, l, m.checks)));
  r.add("fulcrum_health_check_duration_seconds", "summary", "How long checks took.", (w, n) => eachMonitor((m, l) => w.summaryMs(n, l, m.durationSumMs, m.checks)));
  r.add("fulcrum_health_check_transitions_total", "counter", "Verdict changes (UP to DOWN or back).", (w, n) => eachMonitor((m, l) => w.sample(n, l, m.transitions)));

  // ------------------------------------------------------------------ access logs (one series per file)
  const sinkLabels = new WeakMap<LogSink, string>();
  const eachSink = (f: (s: LogSink, l: string) => void) => {
    for (const s of openSinks()) {
      let l = sinkLabels.get(s);
      if (l === undefined) { l = labels({ path: s.path }); sinkLabels.set(s, l); }
      f(s, l);
    }
  };
  r.add("fulcrum_access_log_lines_total", "counter", "Access log lines written.", (w, n) => eachSink((s, l) => w.sample(n, l, s.linesWritten)));
  r.add("fulcrum_access_log_dropped_total", "counter", "Access log lines dropped: the buffer was full while the file could not keep up, or a write failed.", (w, n) => eachSink((s, l) => w.sample(n, l, s.linesDropped)));
  r.add("fulcrum_access_log_written_bytes_total", "counter", "Access log bytes written.", (w, n) => eachSink((s, l) => w.sample(n, l, s.bytesWritten)));
  r.add("fulcrum_access_log_write_errors_total", "counter", "Access log writes that failed.", (w, n) => eachSink((s, l) => w.sample(n, l, s.writeErrors)));

  // ------------------------------------------------------------------ vrrp
  r.add("fulcrum_vrrp_state", "gauge", "1 for the instance's current state.", (w, n) => {
    for (const i of instances()) { const b = il(i); VRRP_STATES.forEach((st, k) => w.sampleWith(n, b, VRRP_STATE_LABELS[k], i.state === st ? 1 : 0)); }
  });
  r.add("fulcrum_vrrp_priority", "gauge", "The priority the instance advertises now (tracking included).", (w, n) => { for (const i of instances()) w.sample(n, il(i), i.priority); });
  r.add("fulcrum_vrrp_transitions_total", "counter", "State changes of the instance.", (w, n) => { for (const i of instances()) w.sample(n, il(i), i.transitions); });
  r.add("fulcrum_vrrp_adverts_sent_total", "counter", "Adverts sent.", (w, n) => { for (const i of instances()) w.sample(n, il(i), i.sent); });
  r.add("fulcrum_vrrp_adverts_received_total", "counter", "Valid adverts received.", (w, n) => { for (const i of instances()) w.sample(n, il(i), i.received); });
  r.add("fulcrum_vrrp_adverts_dropped_total", "counter", "Adverts dropped, by reason.", (w, n) => {
    for (const i of instances()) { const b = il(i); DROP_REASONS.forEach((reason, k) => w.sampleWith(n, b, REASON_LABELS[k], i.drops.get(reason) ?? 0)); }
  });

  return { registry: r, render: () => { snapshot(); return r.render(); } };
}

/** Entries of /proc/self/fd (one is the directory being read); -1 where there is no /proc. */
function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length - 1;
  } catch {
    return -1;
  }
}

export type { MetricWriter };
