// The rise/fall state machine of one check, with no timers in it: results go in, transitions and
// the delay before the next check come out. keepalived's core/check split: checkers only report;
// this is the one place that turns results into UP and DOWN.
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
  up: boolean;
  /** Passing results in a row (counted while down, capped at rise while up). */
  successes = 0;
  /** Failing results in a row (counted while up, capped at fall while down). */
  failures = 0;
  /** The weight the check last asked for. */
  weight: WeightRequest = "configured";
  lastResult: CheckResult | null = null;
  // With `initial: down`, the first success brings the server up (it was never seen failing).
  private provenDown: boolean;

  constructor(readonly timing: CheckTiming) {
    this.up = timing.initial === "up";
    this.provenDown = false;
  }

  /** Takes one result; returns the transition it caused, if any. */
  record(result: CheckResult): Transition | null {
    this.lastResult = result;
    if (result.weight !== undefined) this.weight = result.weight;
    if (result.ok) {
      this.failures = 0;
      if (this.up) {
        this.successes = Math.min(this.successes + 1, this.timing.rise);
        return null;
      }
      this.successes++;
      const needed = this.provenDown ? this.timing.rise : 1;
      if (this.successes < needed) return null;
      this.up = true;
      return { up: true, detail: result.detail, streak: this.successes, needed };
    }
    this.successes = 0;
    if (!this.up) {
      this.provenDown = true;
      this.failures = Math.min(this.failures + 1, this.timing.fall);
      return null;
    }
    this.failures++;
    if (this.failures < this.timing.fall) return null;
    this.up = false;
    this.provenDown = true;
    return { up: false, detail: result.detail, streak: this.failures, needed: this.timing.fall };
  }

  /** Milliseconds from the start of the last check to the start of the next: fastinter while the
   * verdict is changing, downinter while down, interval while up. */
  nextDelay(): number {
    if (this.up) return this.failures === 0 ? this.timing.intervalMs : this.timing.fastinterMs;
    return this.successes === 0 ? this.timing.downinterMs : this.timing.fastinterMs;
  }
}
