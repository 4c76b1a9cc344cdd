// The shared scheduler on an injected clock and timer, so wake-up times are exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineSweep, Scheduler, type TimerHost } from "./timer.ts";

/** A host whose time moves only when the test says; runs its timers when their time comes. */
class ManualHost implements TimerHost {
  t = 0;
  /** Runtime timers armed now: one-shots (period 0) and periodic ones. */
  readonly timers = new Set<{ run: () => void; at: number; period: number }>();
  /** The times the scheduler asked a one-shot timer to wake it at. */
  wakes: number[] = [];
  now(): number { return this.t; }
  setTimer(run: () => void, ms: number): unknown {
    this.wakes.push(this.t + ms);
    return this.add(run, ms, 0);
  }
  clearTimer(handle: unknown): void { this.timers.delete(handle as never); }
  setRepeating(run: () => void, ms: number): unknown { return this.add(run, ms, ms); }
  clearRepeating(handle: unknown): void { this.timers.delete(handle as never); }
  get armed(): number { return this.timers.size; }
  advance(to: number): void {
    for (;;) {
      let next: { run: () => void; at: number; period: number } | null = null;
      for (const timer of this.timers) if (timer.at <= to && (next === null || timer.at < next.at)) next = timer;
      if (next === null) break;
      this.t = next.at;
      if (next.period > 0) next.at += next.period;
      else this.timers.delete(next);
      next.run();
    }
    this.t = to;
  }
  private add(run: () => void, ms: number, period: number) {
    const timer = { run, at: this.t + ms, period };
    this.timers.add(timer);
    return timer;
  }
}

test("timer: entries run in due order, on their grid when they ask for one, never early", () => {
  const host = new ManualHost();
  const s = new Scheduler(host);
  const ran: [string, number][] = [];
  s.at(23, () => ran.push(["coarse", host.t]), 10);
  s.at(21, () => ran.push(["coarse-same-step", host.t]), 10);
  s.at(25, () => ran.push(["exact", host.t]));
  host.advance(100);
  assert.deepEqual(ran[0], ["exact", 25]);
  assert.deepEqual(ran.slice(1).sort(), [["coarse", 30], ["coarse-same-step", 30]], "due 21 and 23 share the wake-up at 30");
  assert.deepEqual(host.wakes, [30, 25, 30], "an exact entry due before the coarse wake-up re-arms the timer earlier");
});

test("timer: a cancelled entry never runs, and nothing left means no timer armed", () => {
  const host = new ManualHost();
  const s = new Scheduler(host);
  let ran = false;
  const e = s.at(10, () => { ran = true; });
  s.cancel(e);
  host.advance(50);
  assert.equal(ran, false);
  assert.equal(host.armed, 0);
  assert.equal(s.size, 0);
});

test("timer: periodic work of one period shares one runtime interval, and stops with its last member", () => {
  const host = new ManualHost();
  const s = new Scheduler(host);
  const at: [string, number][] = [];
  const a = s.every(5, () => at.push(["a", host.t]));
  const b = s.every(5, () => at.push(["b", host.t]));
  const c = s.every(7, () => at.push(["c", host.t]));
  assert.equal(host.armed, 2, "one interval for period 5, one for period 7");
  host.advance(10);
  assert.deepEqual(at, [["a", 5], ["b", 5], ["c", 7], ["a", 10], ["b", 10]]);
  a.stop();
  a.stop(); // twice is harmless
  host.advance(15);
  assert.deepEqual(at.slice(5), [["c", 14], ["b", 15]]);
  b.stop();
  c.stop();
  assert.equal(host.armed, 0, "no member left: no interval");
  host.advance(100);
  assert.equal(at.length, 7);
});

test("timer: a failing callback is logged and the others still run", () => {
  const host = new ManualHost();
  const s = new Scheduler(host);
  let ran = false;
  const error = console.error;
  const logged: string[] = [];
  console.error = (line: string) => logged.push(line);
  try {
    s.at(1, () => { throw new Error("boom"); });
    s.at(1, () => { ran = true; });
    host.advance(5);
  } finally {
    console.error = error;
  }
  assert.equal(ran, true);
  assert.deepEqual(logged, ["fulcrum: timer callback failed: boom"]);
});

test("timer: the deadline sweep expires armed deadlines on its period and leaves unarmed ones", () => {
  const host = new ManualHost();
  const s = new Scheduler(host);
  const sweep = new DeadlineSweep(50, s, () => 1_000_000 + host.t);
  const expired: [string, number][] = [];
  const item = (name: string, deadline: number) => ({ deadline, expire: () => expired.push([name, host.t]) });
  const a = item("a", 1_000_070), b = item("b", 0), c = item("c", 1_000_120);
  for (const i of [a, b, c]) sweep.watch(i);
  host.advance(60);
  assert.equal(sweep.now, 1_000_050, "now is the clock of the last sweep");
  host.advance(200);
  assert.deepEqual(expired, [["a", 100], ["c", 150]]);
  assert.equal(a.deadline, 0, "an expired deadline is disarmed");
  sweep.stop();
  assert.equal(host.armed, 0, "a stopped sweep leaves no timer");
});
