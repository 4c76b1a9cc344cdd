// Passive failures (max_fails within fail_timeout) counted in memory shared by the worker
// processes, so a failure any worker sees takes the server out of every worker's picks at once,
// as in one process. Words by shared index (a server's `shared`, the same in every worker), each
// index owning PASSIVE_WORDS of them: a server's failures in the current window, the window's
// start, and the time it is out until; a pool's own index keeps only the latest "out until" of its
// servers, so a pick that finds it 0 (the common case) looks no further. Times are on a clock all
// the processes share (core/limits.ts limitClock: i32 ms, compared by signed difference).
import type { CrossProcessLock } from "./shared-scheduler.ts";

/** Words per shared index. */
export const PASSIVE_WORDS = 3;
const FAILS = 0, WINDOW = 1, UNTIL = 2;

/** Whether `until` (0: none) is still ahead of `now`. */
const ahead = (until: number, now: number) => until !== 0 && ((until - now) | 0) > 0;

export class SharedPassive {
  /** `words`: PASSIVE_WORDS per shared index; `pool`: the pool's own index; `lock`: held while a
   * failure is counted (more than one word changes). */
  constructor(private readonly words: Int32Array, private readonly pool: number, private readonly lock: CrossProcessLock) {}

  /** Counts a failure of the server at `index` at `now`; when it makes max_fails within the
   * window, the server is out for `failTimeoutMs` and that time is returned (null: still in, or
   * out already). A window opens at the first failure after it expired or a success reset it. */
  fail(index: number, maxFails: number, failTimeoutMs: number, now: number): number | null {
    const w = this.words, at = index * PASSIVE_WORDS;
    return this.lock.with(() => {
      if (w[at + FAILS] === 0 || ((now - w[at + WINDOW]) | 0) > failTimeoutMs) { w[at + FAILS] = 0; w[at + WINDOW] = now; }
      if (++w[at + FAILS] < maxFails) return null;
      w[at + FAILS] = 0;
      if (ahead(Atomics.load(w, at + UNTIL), now)) return null;
      const until = ((now + failTimeoutMs) | 0) || 1;
      Atomics.store(w, at + UNTIL, until);
      const p = this.pool * PASSIVE_WORDS + UNTIL, latest = Atomics.load(w, p);
      if (!ahead(latest, until)) Atomics.store(w, p, until);
      return until;
    });
  }

  /** A session on the server at `index` succeeded: its failures start over (nginx's). */
  succeed(index: number): void {
    const at = index * PASSIVE_WORDS + FAILS;
    if (Atomics.load(this.words, at) !== 0) Atomics.store(this.words, at, 0);
  }

  /** Whether some server of the pool may be out (one load: a pick's common path). */
  get anyOut(): boolean {
    return Atomics.load(this.words, this.pool * PASSIVE_WORDS + UNTIL) !== 0;
  }

  /** Whether the server at `index` is out at `now`; a time that passed is cleared. */
  isOut(index: number, now: number): boolean {
    const at = index * PASSIVE_WORDS + UNTIL, until = Atomics.load(this.words, at);
    if (ahead(until, now)) return true;
    if (until !== 0) Atomics.compareExchange(this.words, at, until, 0);
    return false;
  }

  /** How long the server at `index` is still out at `now`, ms (0: it is in). */
  remaining(index: number, now: number): number {
    const until = Atomics.load(this.words, index * PASSIVE_WORDS + UNTIL);
    return ahead(until, now) ? (until - now) | 0 : 0;
  }

  /** Clears the pool's word once its time passed (every server's has: it is the latest). A
   * server that went out meanwhile wrote a later time, which the exchange leaves. */
  settle(now: number): void {
    const at = this.pool * PASSIVE_WORDS + UNTIL, until = Atomics.load(this.words, at);
    if (until !== 0 && !ahead(until, now)) Atomics.compareExchange(this.words, at, until, 0);
  }
}
