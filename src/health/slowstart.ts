// Slow start (HAProxy's slowstart): a server that comes back gets its weight back linearly over
// the configured time rather than at once, so a cold cache or JIT is not hit with a full share.
// This only keeps the clock and the ticks; PoolHealth turns the factor into the WASM table's
// effective weight.

export class SlowStart {
  private startedAt = -1;
  private timer: ReturnType<typeof setInterval> | null = null;

  /** `onStep` runs on every tick while ramping, and once more when the ramp ends. */
  constructor(readonly durationMs: number, private readonly onStep: () => void) {}

  get ramping(): boolean {
    return this.startedAt >= 0;
  }

  /** When the ramp began (performance.now()), or -1: a reload carries it to the next generation. */
  get since(): number {
    return this.startedAt;
  }

  /** Starts (or restarts) the ramp; `now` may lie in the past (a ramp carried over a reload). */
  begin(now = performance.now()): void {
    if (this.durationMs <= 0) return;
    this.startedAt = now;
    // About a hundred steps over the ramp: each moves a weight of 100 by about one.
    const stepMs = Math.max(20, Math.min(1000, this.durationMs / 100));
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.onStep(), stepMs);
  }

  /** The share of its weight the server gets now: (0, 1], 1 when not ramping. */
  factor(now = performance.now()): number {
    if (this.startedAt < 0) return 1;
    const f = (now - this.startedAt) / this.durationMs;
    if (f < 1) return Math.max(f, 0);
    this.cancel();
    return 1;
  }

  cancel(): void {
    this.startedAt = -1;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** The weight a ramp allows: at least 1 while ramping a non-zero weight, never above it. */
export function rampedWeight(weight: number, factor: number): number {
  if (weight <= 0 || factor >= 1) return weight;
  return Math.max(1, Math.min(weight, Math.ceil(weight * factor)));
}
