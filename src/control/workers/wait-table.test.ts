// The shared max_conns queue: the table's order, shedding and clean-up, and two pools that share
// session counts and the table as two workers do (two pids in one process, over plain shared
// memory), over real data planes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../../core/wasm.ts";
import { Balancer } from "../../balancer/balancer.ts";
import { type BalancerPoolConfig, SERVER_DEFAULTS } from "../../balancer/config.ts";
import type { Pool, WaitResult } from "../../balancer/pool.ts";
import { SharedWaitTable, waitTableWords } from "./wait-table.ts";

const A = 1001, B = 1002;

function table(entries = 16): SharedWaitTable {
  return new SharedWaitTable(new Int32Array(new SharedArrayBuffer(waitTableWords(2, entries) * 4)), 2, entries);
}

test("wait table: grants go highest priority first, in arrival order within one, over both processes", () => {
  const t = table();
  const a = t.pool(0, A), b = t.pool(0, B);
  const low = a.add(0, 10)!.mine, high1 = b.add(9, 10)!.mine, mid = a.add(5, 10)!.mine, high2 = a.add(9, 10)!.mine;
  assert.equal(a.length, 4);
  assert.equal(t.pool(1, A).length, 0, "another pool's queue is its own");
  const order = [a.grant(7), b.grant(7), a.grant(7), b.grant(7)];
  assert.deepEqual(order.map((g) => g?.ticket), [high1.ticket, high2.ticket, mid.ticket, low.ticket]);
  assert.equal(a.grant(7), null, "no one waits");
  assert.equal(b.settled(high1), true);
  assert.deepEqual(b.collect(high1), { state: "granted", word: 7 });
  assert.deepEqual(b.collect(high1), { state: "gone", word: -1 }, "collected once");
});

test("wait table: a full queue sheds the newest of its lowest priority for a higher newcomer, else the newcomer", () => {
  const t = table();
  const a = t.pool(0, A), b = t.pool(0, B);
  const low1 = a.add(1, 3)!.mine, low2 = b.add(1, 3)!.mine;
  a.add(5, 3);
  assert.equal(b.add(1, 3), null, "ranks no higher than the lowest waiting: shed");
  const high = b.add(9, 3)!;
  assert.deepEqual(high.displaced, low2, "the newest low goes");
  assert.equal(a.settled(low1), false);
  assert.deepEqual(b.collect(low2), { state: "shed", word: -1 });
  assert.equal(a.length, 3);
  assert.deepEqual(a.collect(low1), { state: "waiting", word: -1 }, "a timeout takes its wait out");
  assert.equal(a.length, 2);
});

test("wait table: a dead process's waits leave, and the slots granted to them are given back; a full table sheds", () => {
  const t = table(3);
  const a = t.pool(0, A), b = t.pool(1, B);
  a.add(5, 10);
  a.add(5, 10);
  const kept = b.add(5, 10)!.mine;
  assert.equal(b.add(9, 10), null, "every entry is taken");
  a.grant(4);
  const given: number[] = [];
  t.releaseOf(A, (word) => given.push(word));
  assert.deepEqual(given, [4]);
  assert.equal(a.length, 0);
  assert.equal(b.length, 1);
  assert.ok(b.add(9, 10), "the dead process's entries are free again");
  assert.equal(b.settled(kept), false);
});

function capped(maxConns: number, size: number, timeoutMs: number): BalancerPoolConfig {
  return {
    name: "web", scheduler: "lc", hashKey: null, sorryServer: null, persistenceMs: 0, connectTimeoutMs: 1000,
    servers: [{ address: { host: "127.0.0.1", port: 9001 }, ...SERVER_DEFAULTS, maxConns }],
    queue: { size, timeoutMs },
  };
}

/** Two pools as two workers' (pids A and B) over one server's shared count and one queue. */
async function twoWorkers(maxConns: number, size: number, timeoutMs = 10_000): Promise<[Pool, Pool, Int32Array]> {
  const t = table();
  const counts = new Int32Array(new SharedArrayBuffer(4 * 4));
  const pools = await Promise.all([A, B].map(async (pid) => {
    const pool = new Balancer(await createDataPlane({ seed: 1 }), [capped(maxConns, size, timeoutMs)]).get("web")!;
    pool.servers[0].shared = 0;
    pool.setSharedCounts(counts, new Int32Array(new SharedArrayBuffer(4 * 4)));
    pool.setSharedQueue(t.pool(0, pid));
    return pool;
  }));
  return [pools[0], pools[1], counts];
}

const turn = () => new Promise((r) => setTimeout(r, 0));
const polled = () => new Promise((r) => setTimeout(r, 20));

test("shared queue: a release in one worker serves the best waiter of either, holding its slot for that waiter's pick", async () => {
  const [a, b, counts] = await twoWorkers(1, 10);
  const held = a.pick({ key: null, client: "c" })!;
  assert.equal(b.pick({ key: null, client: "d" }), null, "full across workers");
  const got: string[] = [];
  const low = a.waitForSlot(1)!.then((r) => { got.push(`low:${r}`); return a.pick({ key: null, client: "low" }); });
  const high = b.waitForSlot(9)!.then((r) => { got.push(`high:${r}`); return b.pick({ key: null, client: "high" }); });
  assert.equal(a.queued, 2);
  assert.equal(b.queued, 2, "one queue: both see its length");
  a.release(held);
  assert.equal(counts[0], 1, "the freed slot stays counted for the waiter it went to");
  assert.equal(a.pick({ key: null, client: "e" }), null, "a newcomer cannot take it");
  await polled();
  assert.deepEqual(got, ["high:slot"], "the other worker's higher priority went first");
  const highServer = await high;
  assert.ok(highServer, "its pick took the granted slot");
  assert.equal(counts[0], 1);
  b.release(highServer);
  assert.ok(await low, "then the low one");
  assert.deepEqual(got, ["high:slot", "low:slot"]);
  assert.equal(b.queueServed[9], 1);
  assert.equal(a.queueServed[1], 1);
  a.stop();
  b.stop();
});

test("shared queue: its size holds over both workers, and a worker's newcomer sheds the other's newest low", async () => {
  const [a, b] = await twoWorkers(1, 2);
  a.pick({ key: null, client: "c" });
  const results = new Map<string, WaitResult>();
  const wait = (pool: Pool, name: string, priority: number) => pool.waitForSlot(priority)!.then((r) => { results.set(name, r); });
  const all = [wait(a, "a-low", 1), wait(b, "b-low", 1)];
  all.push(wait(a, "a-low2", 1)); // full with both workers' waiters
  all.push(wait(a, "a-high", 9)); // sheds b-low, the newest of the lowest
  await polled();
  assert.deepEqual([...results].sort(), [["a-low2", "shed"], ["b-low", "shed"]]);
  assert.equal(b.queueShed[1], 1, "counted by the worker whose session was shed");
  assert.equal(a.queueShed[1], 1);
  assert.equal(a.queued, 2);
  a.stop();
  b.stop();
  await Promise.all(all);
  assert.equal(a.queued, 0, "stop() takes its waits out of the shared queue");
});

test("shared queue: a slot granted to a waiter that does not pick goes on to the next waiter", async () => {
  const [a, b, counts] = await twoWorkers(1, 10);
  const held = a.pick({ key: null, client: "c" })!;
  const gone = b.waitForSlot(9)!; // its client goes away: no pick after the wake
  const next = a.waitForSlot(1)!.then(() => a.pick({ key: null, client: "next" }));
  a.release(held);
  await polled();
  assert.equal(await gone, "slot");
  assert.ok(await next, "the unused slot reached the next waiter");
  assert.equal(counts[0], 1);
  a.stop();
  b.stop();
});

test("shared queue: a slot freed while none waited yet is handed to a waiter by the poll", async () => {
  const [a, b, counts] = await twoWorkers(1, 10);
  a.pick({ key: null, client: "c" });
  const wait = b.waitForSlot(5)!;
  counts[0] = 0; // the session ended without a release here (its worker died; the supervisor took it back)
  assert.equal(await wait, "slot");
  assert.ok(b.pick({ key: null, client: "d" }));
  assert.equal(counts[0], 1);
  await turn();
  a.stop();
  b.stop();
});

test("shared queue: a wait that times out leaves the queue of both workers", async () => {
  const [a, b, counts] = await twoWorkers(1, 10, 30);
  const held = a.pick({ key: null, client: "c" })!;
  const wait = b.waitForSlot(5)!;
  assert.equal(a.queued, 1);
  assert.equal(await wait, "timeout");
  assert.equal(a.queued, 0);
  a.release(held);
  assert.equal(counts[0], 0, "the release found no one waiting: the slot is free");
  a.stop();
  b.stop();
});
