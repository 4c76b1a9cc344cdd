// Health checking for a balancer: the shared monitors, one PoolHealth per pool that has any
// health setting (following pools added and removed at run time), the log lines, and the event
// stream other parts subscribe to (`service.subscribe(listener)`; `service.snapshot()`).
import type { PoolSet } from "../balancer/balancer.ts";
import type { Pool } from "../balancer/pool.ts";
import type { HealthPoolConfig } from "./config.ts";
import { HealthEvents, type HealthListener } from "./events.ts";
import { MonitorRegistry } from "./registry.ts";
import { PoolHealth, type PoolHealthSnapshot } from "./pool-health.ts";
import { closeIcmp, openIcmp } from "./checkers/icmp.ts";

export interface HealthOptions {
  /** The health of the generation a reload replaces: verdicts and slow-start ramps carry over. */
  previous?: HealthService;
  /** Where transition lines go; console.log with the "fulcrum: " prefix by default. */
  log?: (line: string) => void;
}

export class HealthService {
  readonly events = new HealthEvents();
  readonly registry: MonitorRegistry;
  readonly pools: PoolHealth[] = [];
  private unsubscribe: (() => void)[] = [];
  private readonly log: (line: string) => void;
  /** The generation a reload replaced, until this one starts (then it is let go). */
  private previous: HealthService | null;
  private icmp = false;

  constructor(balancer: PoolSet<HealthPoolConfig>, options: HealthOptions = {}) {
    this.log = options.log ?? ((line: string) => console.log(`fulcrum: ${line}`));
    // One "check" event per shared check, however many pools use it, published before the pools'
    // own events about the same transition.
    this.previous = options.previous ?? null;
    this.registry = new MonitorRegistry((monitor) => {
      this.unsubscribe.push(monitor.subscribe((m, change) => {
        const t = change.transition;
        if (!t) return;
        this.events.publish({
          type: "check", at: Date.now(), key: m.key, address: m.address, check: m.check.type,
          up: t.up, detail: t.detail, streak: t.streak, needed: t.needed,
        });
      }));
    }, this.previous?.registry ?? null);
    for (const pool of balancer.all()) this.follow(pool);
    this.unsubscribe.push(balancer.onPools(({ type, pool }) => {
      if (type === "added") { this.follow(pool); return; }
      const i = this.pools.findIndex((p) => p.pool === pool);
      if (i >= 0) this.pools.splice(i, 1)[0].stop();
    }));
  }

  private follow(pool: Pool<HealthPoolConfig>): void {
    const h = pool.config.health;
    if (h.checks.length === 0 && !h.outlier && !pool.sorry && h.panicThreshold === 0) return;
    const before = this.previous?.pools.find((p) => p.pool.name === pool.name) ?? null;
    this.pools.push(new PoolHealth(pool, this.registry, this.events, this.log, before));
  }

  /** Starts the checks. Throws when a check cannot run at all here (ICMP without CAP_NET_RAW). */
  start(): void {
    if (this.registry.all().some((m) => m.check.type === "icmp")) { openIcmp(); this.icmp = true; }
    this.registry.start();
    this.previous = null;
  }

  stop(): void {
    this.registry.stop();
    for (const p of this.pools) p.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    if (this.icmp) closeIcmp();
    this.icmp = false;
  }

  subscribe(listener: HealthListener): () => void {
    return this.events.subscribe(listener);
  }

  snapshot(): PoolHealthSnapshot[] {
    return this.pools.map((p) => p.snapshot());
  }
}

/** Builds and starts health checking for the balancer's pools. */
export function startHealth(balancer: PoolSet<HealthPoolConfig>, options: HealthOptions = {}): HealthService {
  const service = new HealthService(balancer, options);
  service.start();
  return service;
}
