// One sweeping timer for every deadline of the socket path (header read, upstream read, idle),
// instead of a setTimeout per request: arming a deadline is a field write.
export interface Timed {
  /** ms since epoch (Date.now()) when expire() runs; 0 when unarmed. */
  deadline: number;
  expire(): void;
}

export class Deadlines {
  private readonly items = new Set<Timed>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private clock = Date.now();

  constructor(private readonly periodMs = 50) {}

  /** A clock the sweep advances: deadlines are checked at that granularity anyway, and reading
   * it costs nothing per request. */
  get now(): number {
    return this.timer === null ? Date.now() : this.clock;
  }

  watch(item: Timed): void {
    this.items.add(item);
    this.timer ??= setInterval(() => this.sweep(), this.periodMs);
  }

  unwatch(item: Timed): void {
    this.items.delete(item);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.items.clear();
  }

  private sweep(): void {
    const now = this.clock = Date.now();
    for (const item of this.items) {
      if (item.deadline !== 0 && now >= item.deadline) {
        item.deadline = 0;
        item.expire();
      }
    }
  }
}
