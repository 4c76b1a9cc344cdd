// The overload guard of a listener: while the process's event loop lags or its resident memory
// passes a bound, new work is shed (HTTP: 503 with Retry-After; L4: the connection is closed)
// instead of slowing everyone, and counted; it lifts by itself once a sample is back under.
// One sampler for the process, on the process's one timer (core/timer.ts): the lag is how late
// its periodic run came, the worst over the last second (a loop that stalled once is likely to
// again soon: shedding lasts that long at least). Each listener's guard compares the samples
// with its own bounds.
import { parseSize } from "../config/size.ts";
import { type Checker, duration, type Mapping, type PathSegment, type Read } from "../config/checker.ts";
import { type Repeating, type Scheduler, timers } from "./timer.ts";

export interface OverloadConfig {
  /** 0: no bound. */
  maxEventLoopLagMs: number;
  /** Resident set size, bytes; 0: no bound. */
  maxMemoryBytes: number;
  retryAfterMs: number;
}

export type OverloadReason = "event_loop_lag" | "memory";

const WINDOW_MS = 1000;

/** Samples the event loop's lag and the resident memory every `periodMs` while anyone uses it. */
export class LoadSampler {
  /** How late the periodic run came, ms: the worst of the last WINDOW_MS. */
  lagMs = 0;
  rssBytes = 0;
  private readonly recent: Float64Array;
  private next = 0;
  private repeating: Repeating | null = null;
  private last = 0;
  private users = 0;

  constructor(
    private readonly scheduler: Scheduler = timers,
    readonly periodMs = 100,
    private readonly readRss: () => number = () => process.memoryUsage.rss(),
  ) {
    this.recent = new Float64Array(Math.max(1, Math.round(WINDOW_MS / periodMs)));
  }

  acquire(): void {
    if (this.users++ > 0) return;
    this.last = this.scheduler.now();
    this.rssBytes = this.readRss();
    this.repeating = this.scheduler.every(this.periodMs, () => this.sample());
  }

  release(): void {
    if (--this.users > 0) return;
    this.repeating?.stop();
    this.repeating = null;
    this.lagMs = 0;
    this.recent.fill(0);
  }

  sample(): void {
    const now = this.scheduler.now();
    // A shared interval may run this early the first time: never a negative lag.
    this.recent[this.next] = Math.max(0, now - this.last - this.periodMs);
    this.next = (this.next + 1) % this.recent.length;
    let worst = 0;
    for (const lag of this.recent) if (lag > worst) worst = lag;
    this.lagMs = worst;
    this.last = now;
    this.rssBytes = this.readRss();
  }
}

/** The process's sampler, shared by every listener's guard. */
export const loadSampler = new LoadSampler();

export class OverloadGuard {
  /** Work shed, by reason (metrics). */
  readonly shed: Record<OverloadReason, number> = { event_loop_lag: 0, memory: 0 };
  /** Retry-After, seconds, as sent. */
  readonly retryAfter: string;
  private started = false;

  constructor(readonly config: OverloadConfig, private readonly sampler: LoadSampler = loadSampler) {
    this.retryAfter = String(Math.max(1, Math.ceil(config.retryAfterMs / 1000)));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.sampler.acquire();
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.sampler.release();
  }

  /** Why new work is shed now, or null: it may go on. */
  get reason(): OverloadReason | null {
    const c = this.config, s = this.sampler;
    if (c.maxEventLoopLagMs > 0 && s.lagMs > c.maxEventLoopLagMs) return "event_loop_lag";
    if (c.maxMemoryBytes > 0 && s.rssBytes > c.maxMemoryBytes) return "memory";
    return null;
  }

  /** Null when new work may go on; else counts it shed and says why, for the answer. */
  admit(): string | null {
    const reason = this.reason;
    if (reason === null) return null;
    this.shed[reason]++;
    const s = this.sampler;
    return reason === "event_loop_lag"
      ? `overloaded: event loop lag ${Math.round(s.lagMs)} ms > ${this.config.maxEventLoopLagMs} ms`
      : `overloaded: resident memory ${Math.round(s.rssBytes / 1048576)} MB > ${Math.round(this.config.maxMemoryBytes / 1048576)} MB`;
  }
}

/** Listener key, for every protocol's listener reader. */
export const OVERLOAD_KEY = "overload";
const OVERLOAD_KEYS = ["max_event_loop_lag", "max_memory", "retry_after"] as const;

/** "1GB", "512MB", "800m", "2g", or a byte count. */
const memorySize: Read<number> = (c, value, path) => {
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  const n = typeof value === "string" ? parseSize(value) : null;
  if (n !== null && n > 0) return n;
  return c.expected(path, `a memory size like 512MB or 1GB`, value);
};

/** A listener's `overload` mapping, or null when it has none. */
export function readOverload(c: Checker, m: Mapping, p: PathSegment[]): OverloadConfig | null {
  if (m[OVERLOAD_KEY] === undefined || m[OVERLOAD_KEY] === null) return null;
  const op = [...p, OVERLOAD_KEY];
  const om = c.mapping(m[OVERLOAD_KEY], op, "a mapping with max_event_loop_lag and/or max_memory (and retry_after)");
  if (!om) return null;
  c.checkKeys(om, op, OVERLOAD_KEYS);
  if (om.max_event_loop_lag === undefined && om.max_memory === undefined) {
    c.fail(op, "expected max_event_loop_lag or max_memory (a guard with no bound sheds nothing)");
  }
  return {
    maxEventLoopLagMs: c.optional(om, op, "max_event_loop_lag", duration({ zeroAllowed: false }), 0),
    maxMemoryBytes: c.optional(om, op, "max_memory", memorySize, 0),
    retryAfterMs: c.optional(om, op, "retry_after", duration({ zeroAllowed: false }), 5_000),
  };
}
