import { test } from "node:test";
import assert from "node:assert/strict";
import { RiseFall } from "./rise-fall.ts";

test("rise/fall: the first result gives the first verdict; then rise and fall results in a row change it", () => {
  const rf = new RiseFall(2, 3);
  assert.deepEqual(rf.record(false), { from: null, to: false, streak: 1, needed: 1 });
  assert.equal(rf.record(true), null);
  assert.equal(rf.record(false), null, "a failure resets the success streak");
  assert.equal(rf.record(true), null);
  assert.deepEqual(rf.record(true), { from: false, to: true, streak: 2, needed: 2 });
  assert.equal(rf.record(false), null);
  assert.equal(rf.record(false), null);
  assert.equal(rf.record(true), null, "a success resets the failure streak");
  assert.equal(rf.record(false), null);
  assert.equal(rf.record(false), null);
  assert.deepEqual(rf.record(false), { from: true, to: false, streak: 3, needed: 3 });
  assert.equal(rf.verdict, false);
});

test("rise/fall: streaks that agree with the verdict are capped, so a change needs a full streak", () => {
  const rf = new RiseFall(2, 2, true);
  for (let i = 0; i < 10; i++) assert.equal(rf.record(true), null);
  assert.equal(rf.successes, 2);
  assert.equal(rf.record(false), null);
  assert.equal(rf.record(false)?.to, false);
  for (let i = 0; i < 10; i++) rf.record(false);
  assert.equal(rf.failures, 2);
  assert.equal(rf.record(true), null);
  assert.equal(rf.record(true)?.to, true);
});
