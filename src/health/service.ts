// Health checking for a running edge: the shared monitors, one PoolHealth per pool that has any
// health setting, the log lines, and the event stream other parts subscribe to
// (`service.subscribe(listener)`; `service.snapshot()` for the current state).
import type { Pool } from "../edge/pools.ts";
import { HealthEvents, type HealthListener } from "./events.ts";
import { MonitorRegistry } from "./registry.ts";
import { PoolHealth, type PoolHealthSnapshot } from "./pool-health.ts";
import { closeIcmp, openIcmp } from "./checkers/icmp.ts";

export interface HealthOptions {
  /** Where transition lines go; console.log with the "fulcrum: " prefix by default. */
  log?: (line: string) => void;
}

export class HealthService {
  readonly events = new HealthEvents();
  readonly registry: MonitorRegistry;
  readonly pools: PoolHealth[] = [];
  private unsubscribe: (() => void)[] = [];

  constructor(pools: Iterable<Pool>, options: HealthOptions = {}) {
    const log = options.log ?? ((line: string) => console.log(`fulcrum: ${line}`));
    // One "check" event per shared check, however many pools use it, published before the pools'
    // own events about the same transition.
    this.registry = new MonitorRegistry((monitor) => {
      this.unsubscribe.push(monitor.subscribe((m, change) => {
        const t = change.transition;
        if (!t) return;
        this.events.publish({
          type: "check", at: Date.now(), key: m.key, address: m.address, check: m.check.type,
          up: t.up, detail: t.detail, streak: t.streak, needed: t.needed,
        });
      }));
    });
    for (const pool of pools) {
      const h = pool.config.health;
      if (h.checks.length === 0 && !h.outlier && !h.sorryServer && h.panicThreshold === 0) continue;
      this.pools.push(new PoolHealth(pool, this.registry, this.events, log));
    }
  }

  /** Starts the checks. Throws when a check cannot run at all here (ICMP without CAP_NET_RAW). */
  start(): void {
    if (this.registry.all().some((m) => m.check.type === "icmp")) openIcmp();
    this.registry.start();
  }

  stop(): void {
    this.registry.stop();
    for (const p of this.pools) p.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    closeIcmp();
  }

  subscribe(listener: HealthListener): () => void {
    return this.events.subscribe(listener);
  }

  snapshot(): PoolHealthSnapshot[] {
    return this.pools.map((p) => p.snapshot());
  }
}

/** Builds and starts health checking for these pools. */
export function startHealth(pools: Iterable<Pool>, options: HealthOptions = {}): HealthService {
  const service = new HealthService(pools, options);
  service.start();
  return service;
}
