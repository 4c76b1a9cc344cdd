// One check of one address, run on its own schedule: the timing half of the scheduler. A Monitor
// runs its probe, feeds results to the CheckState and tells its subscribers about transitions and
// weight requests. Checks of one monitor never overlap; the next is planned `nextDelay` after the
// previous one was planned (or starts as soon as it ends, when it ran longer), so a dead server
// is found within interval × fall + timeout, give or take one 10 ms tick of the shared timer.
import type { CheckConfig } from "./config.ts";
import { Deadline, fail, formatTimeout, type CheckResult, type CheckTarget, type Probe } from "./result.ts";
import { type TimerEntry, timers } from "../core/timer.ts";
import { CheckState, type Transition } from "./state.ts";

export interface MonitorChange {
  transition: Transition | null;
  weightChanged: boolean;
}

export type MonitorListener = (monitor: Monitor, change: MonitorChange) => void;

// How long a probe may take to settle after its timeout fired before the monitor gives up on it
// (a probe should settle at once; this only bounds a misbehaving one).
const SETTLE_GRACE_MS = 200;

// Checks and their timeouts wake on a 10 ms grid of the shared timer: everything due in the same
// 10 ms runs on one wake-up (a wake-up costs more than the work it does), up to 10 ms late.
const CHECK_TICK_MS = 10;

export class Monitor {
  readonly state: CheckState;
  /** Checks completed. */
  checks = 0;
  /** When the last check finished (ms since the epoch), 0 before the first. */
  lastCheckAt = 0;
  /** How long the last check took, in ms, and all checks together (metrics' duration summary). */
  lastDurationMs = 0;
  durationSumMs = 0;
  /** Verdict changes (UP to DOWN or back). */
  transitions = 0;
  private readonly listeners = new Set<MonitorListener>();
  private next: TimerEntry | null = null;
  private stopped = true;
  private readonly timeoutReason: string;
  /** When the check now running (or next) was planned to start: the schedule keeps to planned
   * times, so the clock's rounding and event-loop delays do not add up from one check to the next. */
  private plannedAt = 0;
  private readonly runNext = () => { this.next = null; this.run(); };

  /** `key` names the shared state: (address, check definition). */
  constructor(readonly key: string, readonly address: string, readonly check: CheckConfig,
    readonly target: CheckTarget, private readonly probe: Probe) {
    this.state = new CheckState(check);
    this.timeoutReason = `after ${formatTimeout(check.timeoutMs)}`;
  }

  get up(): boolean {
    return this.state.up;
  }

  /** A reload: the same (address, check) in the next generation goes on from this verdict. */
  carryFrom(old: Monitor): void {
    const from = old.state, to = this.state;
    to.count.verdict = from.count.verdict;
    to.count.successes = from.count.successes;
    to.count.failures = from.count.failures;
    to.weight = from.weight;
    to.lastResult = from.lastResult;
    this.checks = old.checks;
    this.lastCheckAt = old.lastCheckAt;
    this.lastDurationMs = old.lastDurationMs;
  }

  subscribe(listener: MonitorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts checking; the first check runs after `firstDelayMs` (the spread). */
  start(firstDelayMs: number): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.plannedAt = timers.now() + firstDelayMs;
    this.next = timers.at(this.plannedAt, this.runNext, CHECK_TICK_MS);
  }

  stop(): void {
    this.stopped = true;
    timers.cancel(this.next);
    this.next = null;
    // A check in flight finishes unheard (its late answer is ignored).
    this.inFlight?.expire();
    this.inFlight = null;
    timers.cancel(this.timeoutEntry);
    timers.cancel(this.graceEntry);
  }

  /** Runs one check now and returns its result (also fed to the state machine). */
  runOnce(): Promise<CheckResult> {
    return new Promise((resolve) => this.begin(resolve));
  }

  private run(): void {
    this.begin(null);
  }

  // One check in flight at a time; its state lives on the monitor rather than in closures and
  // promises, which is most of what a check costs at a thousand a second.
  private inFlight: Deadline | null = null;
  private startedAt = 0;
  private timeoutEntry: TimerEntry | null = null;
  private graceEntry: TimerEntry | null = null;
  private onSettled: ((r: CheckResult) => void) | null = null;
  private readonly onTimeout = () => {
    this.timeoutEntry = null;
    const deadline = this.inFlight;
    if (!deadline) return;
    deadline.expire();
    // The probe settles in its expiry handler; if it did not, it gets a moment, then is given up on.
    if (this.inFlight === deadline) {
      this.graceEntry = timers.at(timers.now() + SETTLE_GRACE_MS, () => this.settle(deadline, fail(`timed out ${this.timeoutReason}`)), CHECK_TICK_MS);
    }
  };

  private begin(onSettled: ((r: CheckResult) => void) | null): void {
    const deadline = new Deadline(this.timeoutReason);
    this.inFlight = deadline;
    this.onSettled = onSettled;
    this.startedAt = timers.now();
    this.timeoutEntry = timers.at(this.startedAt + this.check.timeoutMs, this.onTimeout, CHECK_TICK_MS);
    this.probe(deadline).then(
      (r) => this.settle(deadline, r),
      (e) => this.settle(deadline, fail(`check failed: ${(e as Error)?.message ?? e}`)),
    );
  }

  private settle(deadline: Deadline, result: CheckResult): void {
    if (this.inFlight !== deadline) return; // a late answer to a check already given up on
    this.inFlight = null;
    timers.cancel(this.timeoutEntry);
    timers.cancel(this.graceEntry);
    this.timeoutEntry = this.graceEntry = null;
    const onSettled = this.onSettled;
    this.onSettled = null;
    this.lastDurationMs = timers.now() - this.startedAt;
    this.durationSumMs += this.lastDurationMs;
    if (onSettled) {
      this.take(result);
      onSettled(result);
      return;
    }
    if (this.stopped) return;
    this.take(result);
    if (this.stopped) return; // a subscriber may have stopped it
    // A check that ran past its successor's planned start is followed at once, not by a burst.
    this.plannedAt = Math.max(this.plannedAt + this.state.nextDelay(), timers.now());
    this.next = timers.at(this.plannedAt, this.runNext, CHECK_TICK_MS);
  }

  private take(result: CheckResult): void {
    this.checks++;
    this.lastCheckAt = Date.now();
    const before = this.state.weight;
    const transition = this.state.record(result);
    if (transition) this.transitions++;
    const weightChanged = !sameWeight(before, this.state.weight);
    if (!transition && !weightChanged) return;
    for (const listener of this.listeners) {
      try {
        listener(this, { transition, weightChanged });
      } catch (e) {
        console.error(`fulcrum: health subscriber failed: ${(e as Error).message}`);
      }
    }
  }
}

function sameWeight(a: CheckState["weight"], b: CheckState["weight"]): boolean {
  if (a === b) return true;
  if (typeof a === "string" || typeof b === "string") return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
