import { test } from "node:test";
import assert from "node:assert/strict";
import { RangeAllocator } from "./ranges.ts";

test("ranges: first fit, freed ranges merge with both neighbours and are reused", () => {
  const r = new RangeAllocator(0, 100);
  const a = r.alloc(30), b = r.alloc(30), c = r.alloc(30);
  assert.deepEqual([a, b, c], [0, 30, 60]);
  assert.equal(r.alloc(20), -1, "only 10 left");
  r.release(a, 30);
  r.release(c, 30);
  assert.equal(r.alloc(40), 60, "60..100 merged with the tail");
  r.release(60, 40);
  r.release(b, 30);
  assert.equal(r.available, 100);
  assert.equal(r.alloc(100), 0, "everything merged back into one range");
});

test("ranges: sizes round up to the alignment", () => {
  const r = new RangeAllocator(8, 72, 8);
  assert.equal(r.alloc(3), 8);
  assert.equal(r.alloc(9), 16);
  assert.equal(r.available, 40);
});
