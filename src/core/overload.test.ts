// The overload guard on an injected clock and timer: the sampler's lag is how late its periodic
// run came; a guard sheds (and counts) while a sample is over its bound and lifts by itself on
// a second of samples under it; memory the same; one periodic timer however many guards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Scheduler, type TimerHost } from "./timer.ts";
import { LoadSampler, OverloadGuard } from "./overload.ts";

/** A host whose periodic timers run only when the test fires them, at the time it says. */
class LateHost implements TimerHost {
  t = 0;
  readonly repeating = new Set<() => void>();
  now(): number { return this.t; }
  setTimer(): unknown { throw new Error("not used"); }
  clearTimer(): void {}
  setRepeating(run: () => void): unknown { this.repeating.add(run); return run; }
  clearRepeating(handle: unknown): void { this.repeating.delete(handle as () => void); }
  fire(at: number): void { this.t = at; for (const r of this.repeating) r(); }
}

function setup() {
  const host = new LateHost();
  const memory = { rss: 100 << 20 };
  const sampler = new LoadSampler(new Scheduler(host), 100, () => memory.rss);
  return { host, memory, sampler };
}

test("overload: lag over the bound sheds new work with a reason until a second of samples is under it", () => {
  const { host, sampler } = setup();
  const guard = new OverloadGuard({ maxEventLoopLagMs: 50, maxMemoryBytes: 0, retryAfterMs: 2500 }, sampler);
  guard.start();
  assert.equal(guard.retryAfter, "3", "Retry-After in whole seconds, rounded up");
  host.fire(100);
  host.fire(230); // 30 ms late: under the bound
  assert.equal(sampler.lagMs, 30);
  assert.equal(guard.admit(), null);
  host.fire(900); // a 570 ms stall
  assert.equal(sampler.lagMs, 570);
  assert.equal(guard.admit(), "overloaded: event loop lag 570 ms > 50 ms");
  assert.equal(guard.admit(), "overloaded: event loop lag 570 ms > 50 ms");
  assert.equal(guard.shed.event_loop_lag, 2);
  host.fire(1001); // on time again, but the stall is within the last second
  assert.ok(guard.admit() !== null, "still shedding a sample later");
  for (let t = 1101; t <= 1801; t += 100) host.fire(t);
  assert.ok(guard.admit() !== null, "the stall's sample is 9 samples old");
  host.fire(1901); // a second of samples on time: lifted by itself
  assert.equal(guard.admit(), null);
  assert.equal(guard.shed.event_loop_lag, 4, "admitted work is not counted");
  guard.stop();
});

test("overload: resident memory over the bound sheds until it is back under", () => {
  const { host, memory, sampler } = setup();
  const guard = new OverloadGuard({ maxEventLoopLagMs: 0, maxMemoryBytes: 200 << 20, retryAfterMs: 5000 }, sampler);
  guard.start();
  assert.equal(guard.admit(), null);
  memory.rss = 300 << 20;
  assert.equal(guard.admit(), null, "read on the sample, not on each request");
  host.fire(100);
  assert.equal(guard.admit(), "overloaded: resident memory 300 MB > 200 MB");
  assert.equal(guard.shed.memory, 1);
  memory.rss = 150 << 20;
  host.fire(200);
  assert.equal(guard.admit(), null);
  guard.stop();
});

test("overload: guards share one periodic timer, released with the last; a stopped sampler reads no lag", () => {
  const { host, sampler } = setup();
  const a = new OverloadGuard({ maxEventLoopLagMs: 10, maxMemoryBytes: 0, retryAfterMs: 1000 }, sampler);
  const b = new OverloadGuard({ maxEventLoopLagMs: 1000, maxMemoryBytes: 0, retryAfterMs: 1000 }, sampler);
  a.start(); b.start(); a.start();
  assert.equal(host.repeating.size, 1);
  host.fire(300);
  assert.ok(a.admit() !== null && b.admit() === null, "each guard its own bound over the same sample");
  a.stop();
  assert.equal(host.repeating.size, 1, "b still uses it");
  b.stop();
  assert.equal(host.repeating.size, 0);
  assert.equal(sampler.lagMs, 0);
});
