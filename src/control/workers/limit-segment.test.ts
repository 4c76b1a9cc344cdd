import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createDataPlane } from "../../core/wasm.ts";
import { LIMIT_OVER, LimitTable } from "../../core/limits.ts";
import { LimitSegment } from "./limit-segment.ts";

// Two data planes stand for the supervisor and a worker; both map the segment file.
test("LimitSegment: the supervisor's tables move into the segment, a worker's attach to them, decisions are one table's; close keeps the counters and removes the file", async () => {
  const make = async () => {
    const dp = await createDataPlane();
    return [new LimitTable(dp, { kind: "rate", size: 64, rate: 1, burst: 0 }), new LimitTable(dp, { kind: "conn", size: 64, max: 1 })];
  };
  const [mine, theirs] = [await make(), await make()];
  const segment = LimitSegment.share(mine, `limits-test-${crypto.randomUUID().slice(0, 8)}`)!;
  try {
    assert.ok(existsSync(segment.place.path));
    LimitSegment.attach(theirs, segment.place);
    assert.equal(theirs[0].rate("k", 0), 0);
    assert.equal(theirs[0].rate("k", 0), 1000, "the same key's second request within the second");
    const handle = theirs[1].acquire("k", 0);
    assert.ok(handle >= 0);
    assert.equal(theirs[1].acquire("k", 0), LIMIT_OVER);
    assert.deepEqual([mine[0].stats().entries, mine[0].stats().rejected, mine[1].stats().entries, mine[1].stats().rejected], [1, 1, 1, 1]);
    theirs[1].release(handle);
    assert.throws(() => LimitSegment.attach([theirs[0]], segment.place), /bytes/);
  } finally {
    segment.close();
  }
  assert.ok(!existsSync(segment.place.path));
  assert.deepEqual([mine[0].stats().rejected, mine[1].stats().entries], [1, 0]);
  assert.equal(LimitSegment.share([], "limits-none"), null);
});
