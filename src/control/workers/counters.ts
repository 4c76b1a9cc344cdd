// The counters a worker keeps (per listener, route, server, pool; the L4 proxy's) as a plain tree
// of numbers, and their sum written into the supervisor's generation, whose admin API and
// /metrics read them as a single process's. Walked generically: a counter added to EdgeStats,
// RouteStats, L4Stats or Traffic is carried without a change here. A listener's overload guard
// keeps its shed counts apart from its stats: carried as `overload`, by listener. Gauges (what is
// open now) are under `open`: summed over the workers serving, not kept for those that exited.
import type { Balancer } from "../../balancer/balancer.ts";
import type { Edge } from "../../edge/edge.ts";
import type { L4Proxy } from "../../l4/proxy.ts";
import type { PoolConfig } from "../schema.ts";
import { formatHostPort } from "../../config/address.ts";

export type CounterTree = { [key: string]: number | number[] | CounterTree };

/** What carries counters in a process: the serving edge, L4 proxy and pools. */
export interface CounterSource {
  edge: Edge | null;
  l4: L4Proxy | null;
  balancer: Balancer<PoolConfig>;
}

// Numbers, typed arrays of numbers and objects of those; anything else (configs, references) is
// not a counter. `latency` is left out of a server's traffic: it is the pool's, walked once.
function tree(o: object): CounterTree {
  const out: CounterTree = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === "number") out[k] = v;
    else if (v instanceof Float64Array || v instanceof Int32Array || v instanceof Uint32Array) out[k] = Array.from(v);
    else if (v && typeof v === "object" && !Array.isArray(v) && k !== "latency" && k !== "config" && Object.getPrototypeOf(v) !== Map.prototype) out[k] = tree(v);
  }
  return out;
}

export function collectCounters(source: CounterSource): CounterTree {
  const listeners: CounterTree = {}, servers: CounterTree = {}, pools: CounterTree = {}, routes: CounterTree = {}, overload: CounterTree = {};
  for (const l of source.edge?.listeners ?? []) {
    listeners[l.config.name] = tree(l.stats);
    if (l.overload) overload[l.config.name] = { ...l.overload.shed };
  }
  [...source.edge?.routeStats.values() ?? []].forEach((r, i) => { routes[i] = tree(r); });
  for (const p of source.balancer.all()) {
    pools[p.name] = { latency: tree(p.latency), queueServed: Array.from(p.queueServed), queueShed: Array.from(p.queueShed) };
    for (const s of [...p.servers, ...(p.sorry ? [p.sorry] : [])]) {
      servers[`${p.name}/${formatHostPort(s.config.address)}`] = { requests: s.requests, failures: s.failures, traffic: tree(s.traffic) };
    }
  }
  return { listeners, routes, servers, pools, overload, l4: source.l4 ? tree(source.l4.stats) : {}, open: { listeners: openListeners(source), l4: openL4(source) } };
}

// Each HTTP listener's open connections, by name.
function openListeners(source: CounterSource): CounterTree {
  const out: CounterTree = {};
  for (const l of source.edge?.listeners ?? []) out[l.config.name] = { connections: l.connections };
  return out;
}

// Each L4 listener's open connections (udp: sessions), by name.
function openL4(source: CounterSource): CounterTree {
  const out: CounterTree = {};
  for (const l of source.l4?.listening ?? []) out[l.config.name] = { connections: l.connections };
  return out;
}

/** A worker's tree without its gauges: what an exited worker leaves in the totals. */
export function withoutGauges(t: CounterTree): CounterTree {
  const { open: _, ...counters } = t;
  return counters;
}

/** Adds `from` into `into` (a counter tree or the live objects it was read from); keys `into`
 * lacks are copied when `into` is a plain tree, and skipped on live objects. */
export function addCounters(into: Record<string, unknown>, from: CounterTree, plain = false): void {
  for (const [k, v] of Object.entries(from)) {
    const t = into[k];
    if (typeof v === "number") {
      if (typeof t === "number" || (t === undefined && (plain || isRecordOfNumbers(into)))) into[k] = ((t as number | undefined) ?? 0) + v;
    } else if (Array.isArray(v)) {
      if (ArrayLike(t)) for (let i = 0; i < v.length && i < t.length; i++) t[i] += v[i];
      else if (t === undefined && plain) into[k] = [...v];
    } else if (t && typeof t === "object") addCounters(t as Record<string, unknown>, v, plain);
    else if (t === undefined && plain) { const c: Record<string, unknown> = {}; addCounters(c, v, true); into[k] = c; }
  }
}

// A record that only holds counts (H2Stats.goaway's codes), so a new key is a new counter.
function isRecordOfNumbers(o: Record<string, unknown>): boolean {
  return Object.getPrototypeOf(o) === Object.prototype && Object.values(o).every((x) => typeof x === "number");
}

function ArrayLike(t: unknown): t is number[] | Float64Array {
  return Array.isArray(t) || t instanceof Float64Array || t instanceof Int32Array || t instanceof Uint32Array;
}

/** Sets every counter of the live objects `into` walks to zero (before the workers' sum is added). */
export function zeroCounters(into: Record<string, unknown>, shape: CounterTree): void {
  for (const [k, v] of Object.entries(shape)) {
    const t = into[k];
    if (typeof v === "number" && typeof t === "number") into[k] = 0;
    else if (Array.isArray(v) && ArrayLike(t)) t.fill(0);
    else if (t && typeof t === "object" && typeof v === "object" && !Array.isArray(v)) zeroCounters(t as Record<string, unknown>, v);
  }
}

/** The live objects of `target` laid out as collectCounters lays out a tree, to zero and add into. */
export function counterTargets(target: CounterSource): Record<string, unknown> {
  const listeners: Record<string, unknown> = {}, servers: Record<string, unknown> = {}, pools: Record<string, unknown> = {}, routes: Record<string, unknown> = {}, overload: Record<string, unknown> = {};
  for (const l of target.edge?.listeners ?? []) {
    listeners[l.config.name] = l.stats;
    if (l.overload) overload[l.config.name] = l.overload.shed;
  }
  [...target.edge?.routeStats.values() ?? []].forEach((r, i) => { routes[i] = r; });
  for (const p of target.balancer.all()) {
    pools[p.name] = { latency: p.latency, queueServed: p.queueServed, queueShed: p.queueShed };
    for (const s of [...p.servers, ...(p.sorry ? [p.sorry] : [])]) servers[`${p.name}/${formatHostPort(s.config.address)}`] = s;
  }
  const openListeners: Record<string, unknown> = {}, openL4: Record<string, unknown> = {};
  for (const l of target.edge?.listeners ?? []) if (l.mirrored) openListeners[l.config.name] = l.mirrored;
  for (const l of target.l4?.mirrored ?? []) openL4[l.config.name] = l;
  return { listeners, routes, servers, pools, overload, l4: target.l4?.stats ?? {}, open: { listeners: openListeners, l4: openL4 } };
}
