import { test } from "node:test";
import assert from "node:assert/strict";
import { SharedCount } from "./shared-count.ts";

test("SharedCount: two processes' counts add up in the total; each keeps its own part", () => {
  const total = new Int32Array(4), ownA = new Int32Array(4), ownB = new Int32Array(4);
  const a = new SharedCount(total, ownA, 2), b = new SharedCount(total, ownB, 2), alone = new SharedCount(total, null, 2);
  a.add(1);
  b.add(2);
  b.add(-1);
  alone.add(1);
  assert.deepEqual([a.value, b.value, total[2], ownA[2], ownB[2]], [3, 3, 3, 1, 1]);
});
