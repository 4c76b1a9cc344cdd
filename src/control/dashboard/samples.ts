// The dashboard's charts: one sample a second per pool (requests a second, mean response time,
// active, queued) and per server (requests a second, active), kept in a ring of fixed length, so
// memory is bounded by membership times HISTORY_SECONDS. Series of pools and servers that are gone
// are dropped at the next sample. Servers are keyed by "pool/host:port", so a reload (new Server
// objects) continues their charts.
import type { Pool, Server } from "../../balancer/pool.ts";
import { formatHostPort } from "../../config/address.ts";
import type { Generation } from "../generation.ts";
import type { PoolConfig } from "../schema.ts";

export const HISTORY_SECONDS = 300;

/** Fields of each series kind, in the order samples carry them. */
export const POOL_FIELDS = ["rps", "latency_ms", "active", "queued"] as const;
export const SERVER_FIELDS = ["rps", "active"] as const;

/** One second's values: key ("pool:NAME" or "server:POOL/HOST:PORT") to its fields (null: no data). */
export type SampleRow = Record<string, (number | null)[]>;

export class SampleRing {
  /** ms since the epoch of each slot. */
  private readonly times: Float64Array;
  private readonly series = new Map<string, Float64Array[]>();
  private head = 0;
  private size = 0;

  constructor(readonly length = HISTORY_SECONDS) {
    this.times = new Float64Array(length);
  }

  get keys(): number {
    return this.series.size;
  }

  /** Appends one second; keys missing from `row` are dropped, new ones start with gaps. */
  push(t: number, row: Map<string, number[]>): void {
    const i = this.head;
    this.times[i] = t;
    for (const key of this.series.keys()) if (!row.has(key)) this.series.delete(key);
    for (const [key, values] of row) {
      let fields = this.series.get(key);
      if (fields === undefined || fields.length !== values.length) {
        fields = values.map(() => new Float64Array(this.length).fill(NaN));
        this.series.set(key, fields);
      }
      for (let f = 0; f < values.length; f++) fields[f][i] = values[f];
    }
    this.head = (i + 1) % this.length;
    this.size = Math.min(this.size + 1, this.length);
  }

  /** Everything kept, oldest first: times and each key's fields (NaN as null). */
  history(): { times: number[]; series: Record<string, (number | null)[][]> } {
    const order: number[] = [];
    for (let k = 0; k < this.size; k++) order.push((this.head - this.size + k + this.length) % this.length);
    const series: Record<string, (number | null)[][]> = {};
    for (const [key, fields] of this.series) series[key] = fields.map((f) => order.map((i) => (Number.isNaN(f[i]) ? null : f[i])));
    return { times: order.map((i) => this.times[i]), series };
  }

  /** The newest second: its time and each key's fields, or null before the first. */
  latest(): { t: number; values: SampleRow } | null {
    if (this.size === 0) return null;
    const i = (this.head - 1 + this.length) % this.length;
    const values: SampleRow = {};
    for (const [key, fields] of this.series) values[key] = fields.map((f) => (Number.isNaN(f[i]) ? null : f[i]));
    return { t: this.times[i], values };
  }
}

/** Turns the counters of a generation into per-second rows (deltas since the last call). */
export class Sampler {
  private readonly requests = new WeakMap<Server, number>();
  private readonly latency = new WeakMap<Pool<PoolConfig>, { sum: number; count: number }>();
  private lastAt = 0;

  constructor(readonly ring = new SampleRing()) {}

  sample(g: Generation, now = Date.now()): void {
    const seconds = this.lastAt > 0 ? Math.max((now - this.lastAt) / 1000, 0.001) : 1;
    this.lastAt = now;
    const row = new Map<string, number[]>();
    for (const pool of g.balancer.all()) {
      let requests = 0, active = 0;
      const servers = pool.sorry ? [...pool.servers, pool.sorry] : pool.servers;
      for (const s of servers) {
        // A server first seen now (started, added, or new after a reload) counts from zero.
        const delta = s.requests - (this.requests.get(s) ?? 0);
        this.requests.set(s, s.requests);
        const a = pool.active(s);
        requests += delta;
        active += a;
        row.set(`server:${pool.name}/${formatHostPort(s.config.address)}`, [delta / seconds, a]);
      }
      const h = pool.latency.responseTime;
      const last = this.latency.get(pool) ?? { sum: 0, count: 0 };
      const n = h.count - last.count;
      this.latency.set(pool, { sum: h.sum, count: h.count });
      row.set(`pool:${pool.name}`, [requests / seconds, n > 0 ? (h.sum - last.sum) / n : NaN, active, pool.queued]);
    }
    this.ring.push(now, row);
  }
}
