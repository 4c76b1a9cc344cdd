// Rise/fall: consecutive results turned into an up/down verdict, as keepalived's checkers and
// vrrp_script do. `rise` passing results in a row bring a down subject up, `fall` failing ones
// take an up subject down. A subject not yet known (verdict null) takes its first verdict from
// its first result: nothing has been seen failing it, so one success is enough. Health checks
// and VRRP track scripts both count here; neither holds a timer in it.

export interface RiseFallChange {
  /** The verdict before: null when this is the first. */
  from: boolean | null;
  to: boolean;
  /** Results in a row that led here, and how many were needed: the "(3/3)" in a log line. */
  streak: number;
  needed: number;
}

export class RiseFall {
  /** Passing results in a row (counted while not up, capped at rise while up). */
  successes = 0;
  /** Failing results in a row (counted while up, capped at fall while down). */
  failures = 0;

  constructor(readonly rise: number, readonly fall: number, public verdict: boolean | null = null) {}

  /** Takes one result; returns the change of verdict it caused, if any. */
  record(ok: boolean): RiseFallChange | null {
    const from = this.verdict;
    if (ok) {
      this.failures = 0;
      if (from === true) {
        this.successes = Math.min(this.successes + 1, this.rise);
        return null;
      }
      this.successes++;
      const needed = from === null ? 1 : this.rise;
      if (this.successes < needed) return null;
      this.verdict = true;
      return { from, to: true, streak: this.successes, needed };
    }
    this.successes = 0;
    if (from === false) {
      this.failures = Math.min(this.failures + 1, this.fall);
      return null;
    }
    this.failures++;
    const needed = from === null ? 1 : this.fall;
    if (this.failures < needed) return null;
    this.verdict = false;
    return { from, to: false, streak: this.failures, needed };
  }
}
