// The shared scheduler on an injected clock and timer, so wake-up times are exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineSweep, Scheduler, type TimerHost } from "./timer.ts";

/** A host whose time moves only when the test says; runs the armed timer when its time comes. */
class ManualHost implements TimerHost {
  t = 0;
  armed: { run: () => void; at: number } | null = null;
  /** The times the scheduler asked to be woken at. */
  wakes: number[] = [];
  now(): number { return this.t; }
  setTimer(run: () => void, ms: number): unknown {
    this.armed = { run, at: this.t + ms };
    this.wakes.push(this.t + ms);
    return this.armed;
  }
  clearTimer(handle: unknown): void { if (this.armed === handle) this.armed = null; }
  advance(to: number): void {
    while (this.armed !== null && this.armed.at <= to) {
      const { run, at } = this.armed;
      this.armed = null;
      this.t = at;
      run();
    }
    this.t = to;
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
  assert.equal(host.armed, null);
  assert.equal(s.size, 0);
});

test("timer: a repeating entry keeps to its period when woken late, and stops", () => {
  const host = new ManualHost();
  const s = new Scheduler(host);
  const at: number[] = [];
  const r = s.every(5, () => at.push(host.t));
  host.advance(12);
  assert.deepEqual(at, [5, 10]);
  host.t = 17; // the event loop was busy past the planned 15
  host.armed!.run();
  host.advance(30);
  assert.deepEqual(at, [5, 10, 17, 20, 25, 30], "a late run does not shift the next ones");
  host.t = 48; // a stall past the planned 35 and 40
  host.armed!.run();
  host.advance(60);
  assert.deepEqual(at.slice(6), [48, 53, 58], "after a long stall: one run, then the period from there");
  r.stop();
  host.advance(100);
  assert.equal(at.length, 9);
  assert.equal(host.armed, null);
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
  host.advance(400);
  assert.equal(host.armed, null, "a stopped sweep leaves no timer");
});
