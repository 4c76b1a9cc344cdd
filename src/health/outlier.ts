// Outlier detection from live traffic (Envoy's consecutive_5xx): a server whose requests end in
// a 5xx or in no response at all so many times in a row is ejected for base_ejection_time × the
// number of times it was ejected (capped at max_ejection_time), while at most
// max_ejection_percent of the pool is ejected at once. The count of ejections decays by one for
// every base_ejection_time a server spends back in the pool without being ejected.
import type { OutlierConfig } from "./config.ts";
import type { Outcome } from "../edge/pools.ts";

export interface EjectionChange {
  index: number;
  ejected: boolean;
  /** Ejections counted for this server, this one included. */
  ejections: number;
  durationMs: number;
  detail: string;
}

export class OutlierDetector {
  private readonly consecutive: Int32Array;
  private readonly ejected: Uint8Array;
  private readonly ejections: Int32Array;
  private readonly returnedAt: Float64Array;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private ejectedCount = 0;

  constructor(readonly config: OutlierConfig, readonly size: number, private readonly onChange: (c: EjectionChange) => void) {
    this.consecutive = new Int32Array(size);
    this.ejected = new Uint8Array(size);
    this.ejections = new Int32Array(size);
    this.returnedAt = new Float64Array(size).fill(-1);
  }

  isEjected(index: number): boolean {
    return this.ejected[index] === 1;
  }

  /** At most this many servers out at once; at least one may always be (as Envoy). */
  get maxEjected(): number {
    return Math.max(1, Math.floor((this.size * this.config.maxEjectionPercent) / 100));
  }

  observe(index: number, outcome: Outcome, now = performance.now()): void {
    const failed = outcome === "no_response" || outcome >= 500;
    if (!failed) {
      this.consecutive[index] = 0;
      return;
    }
    const count = ++this.consecutive[index];
    if (count < this.config.consecutive5xx || this.ejected[index] === 1) return;
    if (this.ejectedCount >= this.maxEjected) return; // keeps counting; the next failure tries again
    this.eject(index, count, now);
  }

  private eject(index: number, count: number, now: number): void {
    const { baseEjectionMs, maxEjectionMs } = this.config;
    if (this.returnedAt[index] >= 0) {
      const decay = Math.floor((now - this.returnedAt[index]) / baseEjectionMs);
      this.ejections[index] = Math.max(0, this.ejections[index] - decay);
    }
    const ejections = ++this.ejections[index];
    const durationMs = Math.min(baseEjectionMs * ejections, maxEjectionMs);
    this.ejected[index] = 1;
    this.ejectedCount++;
    this.consecutive[index] = 0;
    const detail = `${count} consecutive 5xx or failed requests`;
    this.onChange({ index, ejected: true, ejections, durationMs, detail });
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.ejected[index] = 0;
      this.ejectedCount--;
      this.returnedAt[index] = performance.now();
      this.onChange({ index, ejected: false, ejections, durationMs, detail: "ejection time over" });
    }, durationMs);
    this.timers.add(timer);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
