// Two SharedPassive over the same words, as two workers have them: failures either sees count
// toward one max_fails, and both see the server out until the same time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SharedLock } from "../control/workers/shared-lock.ts";
import { PASSIVE_WORDS, SharedPassive } from "./shared-passive.ts";

const POOL = 7, LOCK = 7;

function workers() {
  const words = new Int32Array(new SharedArrayBuffer(8 * PASSIVE_WORDS * 4)), locks = new Int32Array(new SharedArrayBuffer(8 * 4));
  const make = () => new SharedPassive(words, POOL, new SharedLock(locks, LOCK));
  return { a: make(), b: make(), words };
}

test("shared passive: failures in two workers make one max_fails; both see the server out until fail_timeout", () => {
  const { a, b } = workers();
  assert.equal(a.anyOut, false);
  assert.equal(a.fail(2, 3, 1000, 100), null);
  assert.equal(b.fail(2, 3, 1000, 200), null);
  assert.equal(a.anyOut, false, "not out before max_fails");
  assert.equal(b.fail(2, 3, 1000, 300), 1300, "the third failure, in the other worker, takes it out");
  assert.equal(a.anyOut, true);
  assert.equal(a.isOut(2, 301), true);
  assert.equal(b.isOut(2, 1299), true);
  assert.equal(a.isOut(1, 301), false, "another server of the pool stays in");
  assert.equal(a.fail(2, 3, 1000, 400), null);
  assert.equal(a.fail(2, 3, 1000, 500), null);
  assert.equal(b.fail(2, 3, 1000, 600), null, "while out, failures do not take it out again");
  assert.equal(a.isOut(2, 1300), false, "back after fail_timeout");
  a.settle(1300);
  assert.equal(b.anyOut, false, "the pool's word is cleared once the latest time passed");
});

test("shared passive: the window expires, and a success starts the count over", () => {
  const { a, b } = workers();
  a.fail(1, 2, 1000, 0);
  assert.equal(b.fail(1, 2, 1000, 1001), null, "the first failure's window expired: this one opens a new one");
  b.succeed(1);
  assert.equal(a.fail(1, 2, 1000, 1100), null, "the success reset the count");
  assert.equal(a.fail(1, 2, 1000, 1200), 2200);
});

test("shared passive: the pool's word holds the latest server's time; settle leaves a later one", () => {
  const { a, b, words } = workers();
  assert.equal(a.fail(1, 1, 1000, 0), 1000);
  assert.equal(b.fail(2, 1, 500, 100), 600);
  assert.equal(words[POOL * PASSIVE_WORDS + 2], 1000, "an earlier time does not replace the latest");
  a.settle(700);
  assert.equal(a.anyOut, true);
  assert.equal(a.isOut(2, 700), false);
  assert.equal(a.isOut(1, 700), true);
  a.settle(1000);
  assert.equal(a.anyOut, false);
});

test("shared passive: times compare across the i32 wrap", () => {
  const { a } = workers();
  const now = 0x7fffff00;
  const until = a.fail(3, 1, 1000, now)!;
  assert.ok(until < 0, "the time wrapped");
  assert.equal(a.isOut(3, now + 10), true);
  assert.equal(a.isOut(3, (now + 1000) | 0), false);
});
