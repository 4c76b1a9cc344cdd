// The process's one timer (keepalived's one scheduler loop): health checks, the VRRP socket
// poller and the edge's deadline sweep all schedule here, on one min-heap and one runtime timer.
// A thousand health monitors each holding a setTimeout for their next run and another for their
// timeout cost more CPU than the checks' own work (measured: about 60 µs per check), and every
// separate interval timer is a wake-up of its own (an empty 50 ms setInterval alone costs
// 0.25-0.35 % of a core).
//
// An entry may ask for its wake-up to be rounded up to a grid (`coalesceMs`): everything due in
// the same grid step then runs on one wake-up, up to a step late, never early. Entries that must
// not be late (the VRRP poller) ask for no rounding. Times are in the scheduler's `now()`
// (performance.now() unless a test injects its own), in ms.

export interface TimerEntry {
  /** When it runs: its due time rounded up to its grid. */
  readonly wake: number;
  cancelled: boolean;
}

interface Entry extends TimerEntry {
  wake: number;
  run: () => void;
}

/** What the scheduler needs of the host: a clock and one one-shot timer. Tests inject their own. */
export interface TimerHost {
  now(): number;
  setTimer(run: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const runtimeHost: TimerHost = {
  now: () => performance.now(),
  setTimer: (run, ms) => setTimeout(run, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class Scheduler {
  private readonly heap: Entry[] = [];
  private timer: unknown = null;
  private armedFor = Infinity;

  constructor(private readonly host: TimerHost = runtimeHost) {}

  now(): number {
    return this.host.now();
  }

  /** Runs `run` at `due`, its wake-up rounded up to a multiple of `coalesceMs` (0: exactly).
   * A due time in the past runs on the next wake-up. */
  at(due: number, run: () => void, coalesceMs = 0): TimerEntry {
    const wake = coalesceMs > 0 ? Math.ceil(due / coalesceMs) * coalesceMs : due;
    const entry: Entry = { wake, run, cancelled: false };
    this.push(entry);
    if (wake < this.armedFor) this.arm();
    return entry;
  }

  /** Cancelled entries stay in the heap and are dropped when they come up. */
  cancel(entry: TimerEntry | null): void {
    if (entry) entry.cancelled = true;
  }

  /** Runs `run` every `periodMs`, first at now + periodMs. Planned times keep to the period, so
   * a late wake-up does not shift the ones after it; after a stall longer than a period it runs
   * once, then a period later (missed runs are not caught up in a burst). */
  every(periodMs: number, run: () => void): Repeating {
    return new Repeating(this, periodMs, run);
  }

  /** Entries waiting, cancelled ones included (for tests). */
  get size(): number {
    return this.heap.length;
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    if (this.timer !== null) this.host.clearTimer(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    if (this.heap.length === 0) return; // nothing left: the process may exit
    const wake = this.heap[0].wake;
    this.armedFor = wake;
    this.timer = this.host.setTimer(() => this.fire(), Math.max(0, wake - this.host.now()));
  }

  private fire(): void {
    // Timers may fire a hair before their time: everything due by the planned wake-up runs now.
    const until = Math.max(this.host.now(), this.armedFor);
    this.timer = null;
    this.armedFor = Infinity;
    while (this.heap.length > 0 && this.heap[0].wake <= until) {
      const entry = this.pop();
      if (entry.cancelled) continue;
      try {
        entry.run();
      } catch (e) {
        console.error(`fulcrum: timer callback failed: ${(e as Error).message}`);
      }
    }
    if (this.timer === null) this.arm();
  }

  private push(entry: Entry): void {
    const h = this.heap;
    let i = h.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].wake <= entry.wake) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): Entry {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let smallest = i;
      let wakeOf = last.wake;
      if (l < h.length && h[l].wake < wakeOf) { smallest = l; wakeOf = h[l].wake; }
      if (r < h.length && h[r].wake < wakeOf) smallest = r;
      if (smallest === i) break;
      h[i] = h[smallest];
      i = smallest;
    }
    h[i] = last;
    return top;
  }
}

/** A periodic entry of a Scheduler; stop() ends it. */
export class Repeating {
  private entry: TimerEntry | null;
  private plannedAt: number;
  private readonly tick = () => {
    const now = this.scheduler.now();
    this.plannedAt += this.periodMs;
    if (this.plannedAt <= now) this.plannedAt = now + this.periodMs; // missed runs are skipped, not caught up
    this.entry = this.scheduler.at(this.plannedAt, this.tick);
    this.run();
  };

  constructor(private readonly scheduler: Scheduler, readonly periodMs: number, private readonly run: () => void) {
    this.plannedAt = scheduler.now() + periodMs;
    this.entry = scheduler.at(this.plannedAt, this.tick);
  }

  stop(): void {
    this.scheduler.cancel(this.entry);
    this.entry = null;
  }
}

/** Something with a deadline in a DeadlineSweep. */
export interface Timed {
  /** When expire() runs, in the sweep's clock (Date.now() by default); 0 when unarmed. */
  deadline: number;
  expire(): void;
}

/** A coarse deadline set for many short-lived timeouts (a connection's header, body, idle and
 * upstream read timeouts): arming a deadline is a field write, and one periodic sweep on the
 * scheduler expires what is due, up to a period late. */
export class DeadlineSweep {
  private readonly items = new Set<Timed>();
  private sweeper: Repeating | null = null;
  private clock: number;

  constructor(
    private readonly periodMs = 50,
    private readonly scheduler: Scheduler = timers,
    private readonly wallClock: () => number = Date.now,
  ) {
    this.clock = wallClock();
  }

  /** A clock the sweep advances: deadlines are checked at that granularity anyway, and reading
   * it costs nothing per request. */
  get now(): number {
    return this.sweeper === null ? this.wallClock() : this.clock;
  }

  watch(item: Timed): void {
    this.items.add(item);
    this.sweeper ??= this.scheduler.every(this.periodMs, () => this.sweep());
  }

  unwatch(item: Timed): void {
    this.items.delete(item);
  }

  stop(): void {
    this.sweeper?.stop();
    this.sweeper = null;
    this.items.clear();
  }

  private sweep(): void {
    const now = this.clock = this.wallClock();
    for (const item of this.items) {
      if (item.deadline !== 0 && now >= item.deadline) {
        item.deadline = 0;
        item.expire();
      }
    }
  }
}

/** The process's scheduler. */
export const timers = new Scheduler();
