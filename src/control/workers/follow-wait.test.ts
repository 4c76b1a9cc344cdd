import { test } from "node:test";
import assert from "node:assert/strict";
import { FollowWait } from "./follow-wait.ts";

test("FollowWait: runs in order once the slowest serving worker applied the change", () => {
  const applied = [3, 3];
  const ran: string[] = [];
  const wait = new FollowWait(() => Math.min(...applied), 60_000);
  wait.add(3, () => ran.push("now"));
  assert.deepEqual(ran, ["now"], "already followed: at once");
  wait.add(4, () => ran.push("a"));
  wait.add(4, () => ran.push("b"));
  wait.add(5, () => ran.push("c"));
  applied[0] = 5;
  wait.check();
  assert.deepEqual(ran, ["now"], "the other worker has not followed 4 yet");
  applied[1] = 4;
  wait.check();
  assert.deepEqual(ran, ["now", "a", "b"]);
  wait.check(true);
  assert.deepEqual(ran, ["now", "a", "b", "c"], "stopping: everything now");
});

test("FollowWait: with no worker serving nothing waits; a worker that never answers holds a line for timeoutMs", async () => {
  const ran: number[] = [];
  new FollowWait(() => Infinity, 60_000).add(9, () => ran.push(9));
  assert.deepEqual(ran, [9]);
  const hung = new FollowWait(() => 0, 20);
  hung.add(1, () => ran.push(1));
  assert.deepEqual(ran, [9]);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(ran, [9, 1]);
});
