// The one place health state lives: a Monitor per (address, check definition), shared by every
// pool that uses that server with the same check, so two pools never disagree about a server and
// it is checked once, not once per pool.
import { formatHostPort, type HostPort } from "../config/address.ts";
import type { CheckConfig } from "./config.ts";
import { Monitor } from "./monitor.ts";
import { probeFor } from "./checkers/index.ts";

export class MonitorRegistry {
  private readonly monitors = new Map<string, Monitor>();
  /** Users of each monitor: a monitor nobody uses any more (its server left every pool) stops. */
  private readonly users = new Map<Monitor, number>();
  private started = false;

  /** `onCreate` sees each monitor before anything else subscribes to it; `previous` is the
   * registry of the generation a reload replaces: a monitor for the same (address, check)
   * starts from its verdict, so a reload neither flaps a server nor waits for rise again. */
  constructor(private readonly onCreate: (monitor: Monitor) => void = () => {}, private readonly previous: MonitorRegistry | null = null) {}

  /** The shared monitor for this address and check, made on first use. */
  acquire(address: HostPort, check: CheckConfig): Monitor {
    const key = monitorKey(address, check);
    let monitor = this.monitors.get(key);
    if (!monitor) {
      const { target, probe } = probeFor(check, address);
      monitor = new Monitor(key, formatHostPort(address), check, target, probe);
      const old = this.previous?.monitors.get(key);
      if (old) monitor.carryFrom(old);
      this.monitors.set(key, monitor);
      this.onCreate(monitor);
      if (this.started) monitor.start(Math.random() * check.intervalMs);
    }
    this.users.set(monitor, (this.users.get(monitor) ?? 0) + 1);
    return monitor;
  }

  /** One user of the monitor is done with it. */
  release(monitor: Monitor): void {
    const left = (this.users.get(monitor) ?? 1) - 1;
    if (left > 0) { this.users.set(monitor, left); return; }
    this.users.delete(monitor);
    this.monitors.delete(monitor.key);
    monitor.stop();
  }

  all(): Monitor[] {
    return [...this.monitors.values()];
  }

  /** Starts every monitor, their first checks spread evenly over their interval, never all at once. */
  start(): void {
    this.started = true;
    const monitors = this.all();
    monitors.forEach((m, i) => m.start((m.check.intervalMs * i) / monitors.length));
  }

  stop(): void {
    this.started = false;
    for (const m of this.monitors.values()) m.stop();
  }
}

/** The identity of a shared check: the server's address and the whole definition (type, timing,
 * expectations), so pools that check one server differently keep separate verdicts. */
export function monitorKey(address: HostPort, check: CheckConfig): string {
  return `${formatHostPort(address).toLowerCase()} ${JSON.stringify(check)}`;
}
