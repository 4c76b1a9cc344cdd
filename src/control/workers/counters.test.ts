import { test } from "node:test";
import assert from "node:assert/strict";
import { addCounters, type CounterTree, withoutGauges, zeroCounters } from "./counters.ts";

const worker = (requests: number, open: number): CounterTree => ({
  listeners: { web: { requests } },
  open: { listeners: { web: { connections: open } }, l4: { tcp: { connections: open } } },
});

test("counters: the open connections of the workers serving are summed into the mirror's rows", () => {
  const row = { config: { name: "tcp" }, connections: 7 };
  const mirror = { connections: 0 };
  const targets = { listeners: { web: { requests: 0 } }, open: { listeners: { web: mirror }, l4: { tcp: row } } };
  const sum: CounterTree = {};
  addCounters(sum, worker(3, 1), true);
  addCounters(sum, worker(4, 2), true);
  zeroCounters(targets, sum);
  addCounters(targets, sum);
  assert.equal(targets.listeners.web.requests, 7);
  assert.equal(mirror.connections, 3);
  assert.equal(row.connections, 3);
  assert.deepEqual(row.config, { name: "tcp" }, "what is not a counter is left alone");
});

test("counters: a worker that exited leaves its counters in the totals, not its open connections", () => {
  const departed: CounterTree = {};
  addCounters(departed, withoutGauges(worker(5, 2)), true);
  assert.deepEqual(departed, { listeners: { web: { requests: 5 } } });
});
