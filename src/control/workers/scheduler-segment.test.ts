import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { LB_BUCKETS, LB_ENTRY_WORDS } from "../../core/layout.ts";
import { openSchedulerSegment, SchedulerSegment } from "./scheduler-segment.ts";
import { segmentPath } from "./session-segment.ts";
import { SharedIndex } from "./pool-state.ts";
import { PASSIVE_WORDS } from "../../balancer/shared-passive.ts";

test("scheduler segment: a worker's mapping sees the supervisor's words, tables and estimates; none overlap", () => {
  const segment = new SchedulerSegment(16, 3, segmentPath("schedulers-test"));
  try {
    const worker = openSchedulerSegment(segment.place);
    segment.views.words[5] = 42;
    assert.equal(worker.words[5], 42);
    assert.equal(worker.words.length, 16);
    const last = LB_BUCKETS * LB_ENTRY_WORDS - 1;
    worker.table(0)![last] = 7;
    worker.table(1)![0] = 8;
    assert.equal(segment.views.table(0)![last], 7);
    assert.equal(segment.views.table(1)![0], 8);
    assert.equal(segment.views.table(2)![0], 0);
    assert.equal(worker.words[15], 0, "the tables start after the words");
    assert.equal(worker.table(-1), null);
    assert.equal(worker.table(3), null, "past the last table: none (kept per worker)");
    assert.equal(worker.estimates.length, 32, "two words of estimates per word");
    worker.estimates[31] = 9;
    assert.equal(segment.views.estimates[31], 9);
    assert.equal(segment.views.table(2)![last], 0, "the estimates start after the tables");
    worker.passive[0] = 5;
    worker.passive[16 * PASSIVE_WORDS - 1] = 6;
    assert.equal(segment.views.passive[0], 5);
    assert.equal(segment.views.passive[16 * PASSIVE_WORDS - 1], 6);
    assert.equal(segment.views.estimates[31], 9, "the passive words start after the estimates");
  } finally {
    segment.remove();
  }
  assert.equal(existsSync(segment.place.path), false);
});

test("SharedIndex: a table per pool for its lifetime, -1 past the capacity", () => {
  const index = new SharedIndex(8, 2);
  assert.equal(index.tableOf("a"), 0);
  assert.equal(index.tableOf("b"), 1);
  assert.equal(index.tableOf("a"), 0);
  assert.equal(index.tableOf("c"), -1);
});
