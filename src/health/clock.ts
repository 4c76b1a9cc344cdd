// One timer for every check in the process. A thousand monitors each holding a setTimeout for
// their next run and another for their timeout cost more CPU than the checks' own work (measured:
// about 60 µs per check on Bun and Deno); here they share one min-heap and one runtime timer.
// Wake-ups are rounded up to a 10 ms grid, so everything due in the same 10 ms runs on one
// wake-up (a wake-up costs more than the work it does): checks and timeouts run up to 10 ms
// late, never early.

export const TICK_MS = 10;

export interface ClockEntry {
  due: number;
  run: () => void;
  cancelled: boolean;
}

export class CheckClock {
  private readonly heap: ClockEntry[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedFor = Infinity;

  /** Runs `run` at `due` (performance.now() time); a due time in the past runs on the next tick. */
  at(due: number, run: () => void): ClockEntry {
    const entry = { due, run, cancelled: false };
    this.push(entry);
    if (Math.ceil(due / TICK_MS) * TICK_MS < this.armedFor) this.arm();
    return entry;
  }

  /** Cancelled entries stay in the heap and are dropped when they come up. */
  cancel(entry: ClockEntry | null): void {
    if (entry) entry.cancelled = true;
  }

  /** Entries waiting, cancelled ones included (for tests and the bench). */
  get size(): number {
    return this.heap.length;
  }

  private arm(): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    if (this.heap.length === 0) return; // nothing left: the process may exit
    const wake = Math.ceil(this.heap[0].due / TICK_MS) * TICK_MS;
    this.armedFor = wake;
    this.timer = setTimeout(() => this.fire(), Math.max(0, wake - performance.now()));
  }

  private fire(): void {
    // Timers may fire a hair before their time: everything due by the planned wake-up runs now.
    const until = Math.max(performance.now(), this.armedFor);
    this.timer = null;
    this.armedFor = Infinity;
    while (this.heap.length > 0 && this.heap[0].due <= until) {
      const entry = this.pop();
      if (entry.cancelled) continue;
      try {
        entry.run();
      } catch (e) {
        console.error(`fulcrum: health timer failed: ${(e as Error).message}`);
      }
    }
    if (this.timer === null) this.arm();
  }

  private push(entry: ClockEntry): void {
    const h = this.heap;
    let i = h.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].due <= entry.due) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): ClockEntry {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let smallest = i;
      let dueOf = last.due;
      if (l < h.length && h[l].due < dueOf) { smallest = l; dueOf = h[l].due; }
      if (r < h.length && h[r].due < dueOf) smallest = r;
      if (smallest === i) break;
      h[i] = h[smallest];
      i = smallest;
    }
    h[i] = last;
    return top;
  }
}

/** The process's clock for health checks. */
export const clock = new CheckClock();
