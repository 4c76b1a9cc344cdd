// A token bucket per kind of frame a client may send in floods (RFC 9113 §10.5): each costs a
// token, tokens come back at a steady rate, and a client that empties one is told to calm down.
export class Budget {
  private tokens: number;
  private last: number;

  /** `burst` frames at once, `perSecond` sustained. */
  constructor(private readonly burst: number, private readonly perSecond: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }

  /** Spends one token; false when none is left. */
  take(now: number): boolean {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perSecond / 1000);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
