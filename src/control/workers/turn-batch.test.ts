import { test } from "node:test";
import assert from "node:assert/strict";
import { TurnBatch } from "./turn-batch.ts";

test("TurnBatch: what one turn pushes goes out as one batch, in order; the next turn's in the next", async () => {
  const sent: number[][] = [];
  const batch = new TurnBatch<number>((items) => sent.push(items));
  batch.push(1);
  batch.push(2);
  await Promise.resolve();
  batch.push(3);
  assert.deepEqual(sent, [], "nothing before the turn ends");
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(sent, [[1, 2, 3]]);
  batch.push(4);
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(sent, [[1, 2, 3], [4]]);
});

test("TurnBatch: flush sends at once, and sends nothing when empty", () => {
  const sent: string[][] = [];
  const batch = new TurnBatch<string>((items) => sent.push(items));
  batch.flush();
  batch.push("a");
  batch.flush();
  batch.flush();
  assert.deepEqual(sent, [["a"]]);
});
