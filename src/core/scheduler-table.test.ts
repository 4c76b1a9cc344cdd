import { test } from "node:test";
import assert from "node:assert/strict";
import * as layout from "./layout.ts";
import { SCHEDULER_TABLE, schedulerId } from "./schedulers.ts";

test("schedulers: the table's ids are the WASM layout's SCHED_* constants", () => {
  for (const s of SCHEDULER_TABLE) {
    const id = (layout as Record<string, unknown>)[`SCHED_${s.name.toUpperCase()}`];
    assert.equal(schedulerId(s.name), id, s.name);
  }
});
