// The state of one check, with no timers in it: results go in, transitions and the delay before
// the next check come out. keepalived's core/check split: checkers only report; this is the one
// place that turns results into UP and DOWN (counting with the shared rise/fall).
import { RiseFall } from "../core/rise-fall.ts";
import type { CheckTiming } from "./config.ts";
import type { CheckResult, WeightRequest } from "./result.ts";

export interface Transition {
  up: boolean;
  /** The result that tipped it, e.g. "HTTP 503, expected 200-399". */
  detail: string;
  /** Results in a row that led here, and how many were needed: the "(3/3)" in the log line. */
  streak: number;
  needed: number;
}

export class CheckState {
  /** `initial: down` starts with no verdict, which counts as down: the first success brings the
   * server up (it was never seen failing), the first failure makes it proven down. */
  readonly count: RiseFall;
  /** The weight the check last asked for. */
  weight: WeightRequest = "configured";
  lastResult: CheckResult | null = null;

  constructor(readonly timing: CheckTiming) {
    this.count = new RiseFall(timing.rise, timing.fall, timing.initial === "up" ? true : null);
  }

  get up(): boolean {
    return this.count.verdict === true;
  }

  /** Takes one result; returns the transition it caused, if any. */
  record(result: CheckResult): Transition | null {
    this.lastResult = result;
    if (result.weight !== undefined) this.weight = result.weight;
    const change = this.count.record(result.ok);
    // A first failure of a server that started down confirms it; it is no transition.
    if (change === null || change.from === null && !change.to) return null;
    return { up: change.to, detail: result.detail, streak: change.streak, needed: change.needed };
  }

  /** Milliseconds from the start of the last check to the start of the next: fastinter while the
   * verdict is changing, downinter while down, interval while up. */
  nextDelay(): number {
    if (this.up) return this.count.failures === 0 ? this.timing.intervalMs : this.timing.fastinterMs;
    return this.count.successes === 0 ? this.timing.downinterMs : this.timing.fastinterMs;
  }
}
