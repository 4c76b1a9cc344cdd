// The process's one timer (keepalived's one scheduler loop): health checks, the VRRP socket
// poller and the edge's deadline sweep all schedule here: one-shot entries on one min-heap and
// one runtime timer, periodic work on one runtime interval per period.
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

/** What the scheduler needs of the host: a clock, a one-shot timer and a periodic one. Tests
 * inject their own. */
export interface TimerHost {
  now(): number;
  setTimer(run: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  setRepeating(run: () => void, ms: number): unknown;
  clearRepeating(handle: unknown): void;
}

const runtimeHost: TimerHost = {
  now: () => performance.now(),
  setTimer: (run, ms) => setTimeout(run, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setRepeating: (run, ms) => setInterval(run, ms),
  clearRepeating: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

/** Periodic work of one period: one runtime interval runs every member. */
interface PeriodGroup {
  readonly runs: Set<() => void>;
  handle: unknown;
}

/** A periodic entry of a Scheduler; stop() ends it. */
export interface Repeating {
  readonly periodMs: number;
  stop(): void;
}

export class Scheduler {
  private readonly heap: Entry[] = [];
  private timer: unknown = null;
  private armedFor = Infinity;
  private readonly periodic = new Map<number, PeriodGroup>();

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

  /** Runs `run` every `periodMs`, the first time within one period. Work of the same period
   * shares one runtime interval: the runtime re-arms a periodic timer cheaper than the heap can
   * re-arm a one-shot on every wake-up (measured: 20 wake-ups a second cost 0.31 % of a core
   * with setInterval, 0.55 % with a setTimeout per wake-up on Bun; 0.51 % and 0.80-0.94 % on
   * Deno). */
  every(periodMs: number, run: () => void): Repeating {
    let group = this.periodic.get(periodMs);
    if (group === undefined) {
      const created: PeriodGroup = { runs: new Set(), handle: null };
      created.handle = this.host.setRepeating(() => {
        for (const r of created.runs) {
          try {
            r();
          } catch (e) {
            console.error(`fulcrum: timer callback failed: ${(e as Error).message}`);
          }
        }
      }, periodMs);
      this.periodic.set(periodMs, created);
      group = created;
    }
    // Each call is its own member, even for the same function.
    const member = () => run();
    group.runs.add(member);
    const g = group;
    return {
      periodMs,
      stop: () => {
        if (!g.runs.delete(member) || g.runs.size > 0) return;
        this.host.clearRepeating(g.handle);
        if (this.periodic.get(periodMs) === g) this.periodic.delete(periodMs);
      },
    };
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
