import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { SharedLock } from "./shared-lock.ts";

test("SharedLock: one holder at a time; a lock held by a dead pid is taken over", () => {
  const words = new Int32Array(2);
  const lock = new SharedLock(words, 1);
  assert.equal(lock.with(() => words[1]), process.pid);
  assert.equal(words[1], 0);
  assert.throws(() => lock.with(() => lock.acquire()), /twice/);
  assert.equal(words[1], 0);
  // A pid far above pid_max is never alive: the lock it holds is taken over.
  words[1] = 0x3fffffff;
  assert.equal(lock.with(() => words[1]), process.pid);
  assert.equal(words[1], 0);
});
