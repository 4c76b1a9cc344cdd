// The rise/fall verdicts of one check, fed results one by one (no timers, no servers), and the
// delay it asks for before the next check in each phase.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { CheckTiming } from "./config.ts";
import { CheckState } from "./state.ts";

function timing(over: Partial<CheckTiming> = {}): CheckTiming {
  return { intervalMs: 2000, fastinterMs: 200, downinterMs: 5000, timeoutMs: 1000, rise: 2, fall: 3, initial: "up", ...over };
}

const ok = { ok: true, detail: "ok" }, bad = { ok: false, detail: "bad" };

test("health state: a failure streak shorter than fall, or a success streak shorter than rise, changes nothing", () => {
  const st = new CheckState(timing({ rise: 3, fall: 2 }));
  assert.equal(st.record(bad), null);
  assert.equal(st.record(ok), null, "a success resets the failure streak");
  assert.equal(st.record(bad), null);
  assert.deepEqual(st.record(bad), { up: false, detail: "bad", streak: 2, needed: 2 });
  assert.equal(st.up, false);
  assert.equal(st.record(ok), null);
  assert.equal(st.record(ok), null);
  assert.equal(st.record(bad), null, "a failure resets the success streak");
  assert.equal(st.record(ok), null);
  assert.equal(st.record(ok), null);
  assert.deepEqual(st.record(ok), { up: true, detail: "ok", streak: 3, needed: 3 });
  assert.equal(st.up, true);
});

test("health state: a transition is reported once; more of the same result reports nothing", () => {
  const st = new CheckState(timing({ fall: 2 }));
  st.record(bad);
  assert.ok(st.record(bad));
  for (let i = 0; i < 5; i++) assert.equal(st.record(bad), null, `failure ${i + 3} while down`);
  assert.equal(st.count.failures, 2, "capped at fall while down");
  assert.equal(st.lastResult, bad);
});

test("health state: initial: down starts down and the first success brings the server up; once seen failing it needs rise", () => {
  const fresh = new CheckState(timing({ rise: 3, initial: "down" }));
  assert.equal(fresh.up, false);
  assert.deepEqual(fresh.record(ok), { up: true, detail: "ok", streak: 1, needed: 1 });
  const failedFirst = new CheckState(timing({ rise: 3, initial: "down" }));
  assert.equal(failedFirst.record(bad), null, "already down: no transition");
  assert.equal(failedFirst.record(ok), null);
  assert.equal(failedFirst.record(ok), null);
  assert.deepEqual(failedFirst.record(ok), { up: true, detail: "ok", streak: 3, needed: 3 });
});

test("health state: the next check comes at interval while up, fastinter while changing, downinter while down", () => {
  const st = new CheckState(timing({ rise: 2, fall: 3 }));
  assert.equal(st.nextDelay(), 2000, "up: interval");
  st.record(ok);
  assert.equal(st.nextDelay(), 2000);
  st.record(bad);
  assert.equal(st.nextDelay(), 200, "one failure while up: fastinter");
  st.record(bad);
  assert.equal(st.nextDelay(), 200);
  st.record(bad);
  assert.equal(st.up, false);
  assert.equal(st.nextDelay(), 5000, "down: downinter");
  st.record(ok);
  assert.equal(st.nextDelay(), 200, "one success while down: fastinter");
  st.record(ok);
  assert.equal(st.up, true);
  assert.equal(st.nextDelay(), 2000, "up again: interval");
});

test("health state: the last weight a check asked for is kept until it asks for another", () => {
  const st = new CheckState(timing());
  assert.equal(st.weight, "configured");
  st.record({ ok: true, detail: "agent says 50%", weight: { percent: 50 } });
  st.record(ok);
  assert.deepEqual(st.weight, { percent: 50 }, "a result without a weight leaves it");
  st.record({ ok: true, detail: "agent says ready", weight: "configured" });
  assert.equal(st.weight, "configured");
});
