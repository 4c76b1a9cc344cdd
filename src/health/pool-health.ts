// What one pool does with health: the only code that sets a pool's "health", "outlier", "quorum"
// and "standby" down reasons and the effective weights its checks and slow start ask for.
//
// Panic mode and quorum live here rather than in the pool or the schedulers: they are decisions
// about which servers a pool offers, made from health verdicts, and the pool already has the one
// mechanism they need (down reasons, each owned by one part). In panic this module simply stops
// asserting its own reasons, so every server that is not out for another reason (admin, passive)
// takes traffic again; below quorum it takes every server out with "quorum" and lets the sorry
// server, which the pool holds in the data plane as one more slot, out of "standby". The schedulers
// and the WASM table stay unaware of either.
import type { MembershipChange, Pool, Server } from "../balancer/pool.ts";
import type { HealthPoolConfig, PoolHealthConfig } from "./config.ts";
import type { HealthEvents } from "./events.ts";
import type { Monitor, MonitorChange } from "./monitor.ts";
import type { MonitorRegistry } from "./registry.ts";
import type { WeightRequest } from "./result.ts";
import { OutlierDetector } from "./outlier.ts";
import { rampedWeight, SlowStart } from "./slowstart.ts";
import { formatTimeout } from "./result.ts";

/** The data plane's weight limit. */
const MAX_WEIGHT = 256;

interface Member {
  /** Stable for the member's life: the outlier detector's name for it. */
  readonly id: number;
  readonly server: Server;
  readonly unsubscribe: (() => void)[];
  readonly monitors: Monitor[];
  /** Every check up. */
  up: boolean;
  ejected: boolean;
  /** The effective weight last written to the data plane. */
  weight: number;
  readonly slowStart: SlowStart;
}

export interface ServerHealth {
  server: string;
  up: boolean;
  ejected: boolean;
  available: boolean;
  reasons: string[];
  weight: number;
  slowStart: boolean;
  checks: { type: string; up: boolean; detail: string | null; checks: number }[];
}

export interface PoolHealthSnapshot {
  pool: string;
  panic: boolean;
  quorumMet: boolean;
  up: number;
  total: number;
  servers: ServerHealth[];
}

export class PoolHealth {
  private readonly config: PoolHealthConfig;
  private readonly members: Member[];
  private readonly outlier: OutlierDetector | null;
  private readonly unsubscribe: (() => void)[] = [];
  private panic = false;
  private quorumMet = true;
  private up = 0;
  private stopped = false;

  private nextId = 0;

  /** `previous`: this pool's health in the generation a reload replaces (slow-start ramps go on). */
  constructor(readonly pool: Pool<HealthPoolConfig>, private readonly registry: MonitorRegistry,
    private readonly events: HealthEvents, private readonly log: (line: string) => void,
    private previous: PoolHealth | null = null) {
    this.config = pool.config.health;
    this.members = [];
    this.outlier = this.config.outlier
      ? new OutlierDetector(this.config.outlier, () => this.members.length, (c) => this.onEjection(c.index, c))
      : null;
    for (const server of pool.servers) this.members.push(this.newMember(server));
    if (this.outlier) {
      const outlier = this.outlier;
      this.unsubscribe.push(pool.onOutcome((server, outcome) => {
        const member = this.members.find((m) => m.server === server);
        if (member) outlier.observe(member.id, outcome);
      }));
    }
    // Servers added or removed at run time are checked, or no longer, from then on.
    this.unsubscribe.push(pool.onMembership((change) => this.onMembership(change)));
    // A server an operator takes out (maint) or back counts out of, or into, quorum and panic now.
    this.unsubscribe.push(pool.onAdminChange(() => { if (!this.stopped) this.apply(); }));
    this.apply();
    for (const m of this.members) this.applyWeight(m);
    this.previous = null; // only the members made now carry anything over
  }

  private newMember(server: Server): Member {
    const monitors = this.config.checks.map((check) => this.registry.acquire(server.config.address, check));
    const member: Member = {
      id: this.nextId++,
      server,
      monitors,
      unsubscribe: [],
      up: monitors.every((m) => m.up),
      ejected: false,
      weight: server.weight,
      slowStart: new SlowStart(this.config.slowstartMs, () => this.applyWeight(member)),
    };
    for (const m of monitors) member.unsubscribe.push(m.subscribe((mon, change) => this.onCheck(member, mon, change)));
    const rampedSince = this.previous?.rampSince(server.label) ?? -1;
    if (rampedSince >= 0) member.slowStart.begin(rampedSince);
    return member;
  }

  /** When the server's slow-start ramp began, or -1 when it is not ramping. */
  rampSince(label: string): number {
    return this.members.find((m) => m.server.label === label)?.slowStart.since ?? -1;
  }

  private onMembership(change: MembershipChange): void {
    if (this.stopped) return;
    if (change.type === "added") {
      const member = this.newMember(change.server);
      this.members.push(member);
      this.applyWeight(member);
    } else {
      const i = this.members.findIndex((m) => m.server === change.server);
      if (i < 0) return;
      const [member] = this.members.splice(i, 1);
      this.dropMember(member);
    }
    this.apply();
  }

  private dropMember(member: Member): void {
    for (const u of member.unsubscribe) u();
    for (const m of member.monitors) this.registry.release(m);
    member.slowStart.cancel();
    this.outlier?.forget(member.id);
  }

  stop(): void {
    this.stopped = true;
    for (const u of this.unsubscribe) u();
    for (const m of this.members) { for (const u of m.unsubscribe) u(); m.slowStart.cancel(); }
    this.outlier?.stop();
  }

  snapshot(): PoolHealthSnapshot {
    return {
      pool: this.pool.name,
      panic: this.panic,
      quorumMet: this.quorumMet,
      up: this.up,
      total: this.members.length,
      servers: this.members.map((m) => ({
        server: m.server.label,
        up: m.up,
        ejected: m.ejected,
        available: this.pool.isAvailable(m.server),
        reasons: [...m.server.down],
        weight: m.weight,
        slowStart: m.slowStart.ramping,
        checks: m.monitors.map((mon) => ({
          type: mon.check.type, up: mon.up, detail: mon.state.lastResult?.detail ?? null, checks: mon.checks,
        })),
      })),
    };
  }

  private onCheck(member: Member, monitor: Monitor, change: MonitorChange): void {
    const t = change.transition;
    if (t) {
      const up = member.monitors.every((m) => m.up);
      if (up !== member.up) {
        member.up = up;
        this.log(`${member.server.label} ${up ? "UP" : "DOWN"}: ${t.detail} (${t.streak}/${t.needed})`);
        this.events.publish({ type: "server", at: Date.now(), pool: this.pool.name, server: member.server.label, up, detail: t.detail });
        // The ramp starts before the server is offered again, so it never gets a full share first.
        if (up) member.slowStart.begin();
        else member.slowStart.cancel();
        this.applyWeight(member);
        this.apply();
      }
    }
    if (change.weightChanged) {
      const before = member.weight;
      this.applyWeight(member);
      if (member.weight !== before) {
        const detail = monitor.state.lastResult?.detail ?? "";
        this.log(`${member.server.label} weight ${before} -> ${member.weight}: ${detail}`);
        this.events.publish({
          type: "weight", at: Date.now(), pool: this.pool.name, server: member.server.label, weight: member.weight, detail,
        });
      }
    }
  }

  private onEjection(id: number, c: { ejected: boolean; ejections: number; durationMs: number; detail: string }): void {
    const member = this.members.find((m) => m.id === id);
    if (!member) return;
    member.ejected = c.ejected;
    const label = member.server.label;
    if (c.ejected) this.log(`${label} EJECTED: ${c.detail}, for ${formatTimeout(c.durationMs)} (ejection ${c.ejections})`);
    else this.log(`${label} RETURNED: ${c.detail} (${formatTimeout(c.durationMs)})`);
    this.events.publish({ type: "outlier", at: Date.now(), pool: this.pool.name, server: label, ...c });
    if (!c.ejected) member.slowStart.begin();
    this.applyWeight(member);
    this.apply();
  }

  /** Recomputes which servers the pool offers: health and outlier reasons, panic, quorum. */
  private apply(): void {
    const { panicThreshold, quorum } = this.config;
    const sorry = this.pool.sorry;
    const counted = this.members.filter((m) => !m.server.down.has("admin"));
    const up = counted.filter((m) => m.up && !m.ejected).length;
    const quorumMet = up >= quorum;
    const useSorry = !quorumMet && sorry !== null;
    const panic = !useSorry && panicThreshold > 0 && counted.length > 0 && up * 100 < panicThreshold * counted.length;
    for (const m of this.members) {
      this.pool.setDown(m.server, "health", !panic && !m.up);
      this.pool.setDown(m.server, "outlier", !panic && m.ejected);
      this.pool.setDown(m.server, "quorum", useSorry);
    }
    if (sorry) this.pool.setDown(sorry, "standby", !useSorry);
    this.up = up;

    const name = this.pool.name;
    const share = counted.length ? Math.round((up * 100) / counted.length) : 0;
    if (quorumMet !== this.quorumMet) {
      this.quorumMet = quorumMet;
      const where = sorry ? `sorry server ${sorry.label.slice(name.length + 1)}` : null;
      this.log(quorumMet
        ? `pool ${name} QUORUM MET: ${up} of ${counted.length} servers up, quorum ${quorum}${where ? `; ${where} back on standby` : ""}`
        : `pool ${name} QUORUM LOST: ${up} of ${counted.length} servers up, quorum ${quorum}${where ? `; sending traffic to ${where}` : ""}`);
      this.events.publish({
        type: "quorum", at: Date.now(), pool: name, met: quorumMet, up, quorum, sorryServer: sorry?.label ?? null,
      });
    }
    if (panic !== this.panic) {
      this.panic = panic;
      this.log(panic
        ? `pool ${name} PANIC: ${up} of ${counted.length} servers up (${share}%), below panic_threshold ${panicThreshold}%; balancing over all servers`
        : `pool ${name} panic over: ${up} of ${counted.length} servers up (${share}%)`);
      this.events.publish({ type: "panic", at: Date.now(), pool: name, active: panic, up, total: counted.length });
    }
  }

  /** Writes the member's weight: what its checks ask for, scaled by slow start. */
  private applyWeight(member: Member): void {
    const weight = rampedWeight(this.requestedWeight(member), member.slowStart.factor());
    if (weight === member.weight) return;
    member.weight = weight;
    this.pool.setEffectiveWeight(member.server, weight);
  }

  /** The lowest weight any of the member's checks asks for; the configured weight when none does. */
  private requestedWeight(member: Member): number {
    const configured = member.server.weight;
    // ketama's table has room for each server at its configured weight, no more.
    const cap = this.pool.config.scheduler === "ketama" ? configured : MAX_WEIGHT;
    let weight: number | null = null;
    for (const m of member.monitors) {
      const w = resolveWeight(m.state.weight, configured);
      if (w !== null) weight = weight === null ? w : Math.min(weight, w);
    }
    return Math.max(0, Math.min(cap, weight ?? configured));
  }
}

function resolveWeight(request: WeightRequest, configured: number): number | null {
  if (request === "configured") return null;
  if ("percent" in request) return Math.round((configured * request.percent) / 100);
  return request.absolute;
}
