// Outlier detection from live traffic (Envoy's consecutive_5xx): a server whose requests end in
// a 5xx or in no response at all so many times in a row is ejected for base_ejection_time × the
// number of times it was ejected (capped at max_ejection_time), while at most
// max_ejection_percent of the pool is ejected at once. The count of ejections decays by one for
// every base_ejection_time a server spends back in the pool without being ejected.
import type { OutlierConfig } from "./config.ts";
import type { Outcome } from "../balancer/pool.ts";

export interface EjectionChange {
  index: number;
  ejected: boolean;
  /** Ejections counted for this server, this one included. */
  ejections: number;
  durationMs: number;
  detail: string;
}

interface ServerRecord {
  consecutive: number;
  ejected: boolean;
  ejections: number;
  returnedAt: number;
}

/** Servers are named by an index the caller keeps stable for a server's life in the pool;
 * `size` is the pool's member count now, which bounds how many may be out at once. */
export class OutlierDetector {
  private readonly servers = new Map<number, ServerRecord>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private ejectedCount = 0;

  constructor(readonly config: OutlierConfig, private readonly sizeNow: () => number, private readonly onChange: (c: EjectionChange) => void) {}

  get size(): number {
    return this.sizeNow();
  }

  isEjected(index: number): boolean {
    return this.servers.get(index)?.ejected === true;
  }

  /** At most this many servers out at once; at least one may always be (as Envoy). */
  get maxEjected(): number {
    return Math.max(1, Math.floor((this.size * this.config.maxEjectionPercent) / 100));
  }

  /** Forgets a server that left the pool (an ejection of it in progress no longer counts). */
  forget(index: number): void {
    const r = this.servers.get(index);
    if (r?.ejected) this.ejectedCount--;
    this.servers.delete(index);
  }

  observe(index: number, outcome: Outcome, now = performance.now()): void {
    const failed = outcome === "no_response" || outcome >= 500;
    let r = this.servers.get(index);
    if (!failed) {
      if (r) r.consecutive = 0;
      return;
    }
    if (!r) this.servers.set(index, r = { consecutive: 0, ejected: false, ejections: 0, returnedAt: -1 });
    const count = ++r.consecutive;
    if (count < this.config.consecutive5xx || r.ejected) return;
    if (this.ejectedCount >= this.maxEjected) return; // keeps counting; the next failure tries again
    this.eject(index, r, count, now);
  }

  private eject(index: number, r: ServerRecord, count: number, now: number): void {
    const { baseEjectionMs, maxEjectionMs } = this.config;
    if (r.returnedAt >= 0) {
      const decay = Math.floor((now - r.returnedAt) / baseEjectionMs);
      r.ejections = Math.max(0, r.ejections - decay);
    }
    const ejections = ++r.ejections;
    const durationMs = Math.min(baseEjectionMs * ejections, maxEjectionMs);
    r.ejected = true;
    this.ejectedCount++;
    r.consecutive = 0;
    const detail = `${count} consecutive 5xx or failed requests`;
    this.onChange({ index, ejected: true, ejections, durationMs, detail });
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.servers.get(index) !== r) return; // the server left the pool meanwhile
      r.ejected = false;
      this.ejectedCount--;
      r.returnedAt = performance.now();
      this.onChange({ index, ejected: false, ejections, durationMs, detail: "ejection time over" });
    }, durationMs);
    this.timers.add(timer);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
