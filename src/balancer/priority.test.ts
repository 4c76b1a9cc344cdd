// The max_conns queue by priority (HAProxy set-priority-class): higher priorities are dequeued
// first, first come first served within one; a full queue sheds its least important, newest
// session, or the newcomer when it ranks no higher. Over a real data plane.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../core/wasm.ts";
import { Balancer } from "./balancer.ts";
import { type BalancerPoolConfig, SERVER_DEFAULTS } from "./config.ts";
import type { WaitResult } from "./pool.ts";

function oneServerPool(queueSize: number): BalancerPoolConfig {
  return {
    name: "web", scheduler: "lc", hashKey: null, sorryServer: null, persistenceMs: 0, connectTimeoutMs: 1000,
    servers: [{ address: { host: "127.0.0.1", port: 9001 }, ...SERVER_DEFAULTS, maxConns: 1 }],
    queue: { size: queueSize, timeoutMs: 10_000 },
  };
}

test("balancer queue: waiters are served highest priority first, in arrival order within a priority", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [oneServerPool(10)]);
  const pool = b.get("web")!;
  let held = pool.pick({ key: null, client: "c" })!;
  const order: string[] = [];
  // A woken waiter picks again, as the edge does: it holds the one slot until the next release.
  const waits = ([["low-a", 0], ["normal-a", 5], ["high-a", 9], ["low-b", 0], ["normal-b", 5], ["high-b", 9]] as const).map(([name, priority]) =>
    pool.waitForSlot(priority)!.then((r) => { order.push(`${name}:${r}`); held = pool.pick({ key: null, client: name })!; }));
  for (let k = 0; k < 6; k++) {
    pool.release(held);
    await new Promise((r) => setTimeout(r, 0));
    assert.ok(held, "the woken waiter got the slot");
  }
  await Promise.all(waits);
  assert.deepEqual(order, ["high-a:slot", "high-b:slot", "normal-a:slot", "normal-b:slot", "low-a:slot", "low-b:slot"]);
  assert.equal(pool.queueServed[9], 2);
  assert.equal(pool.queueServed[0], 2);
  pool.stop();
});

test("balancer queue: a full queue sheds the newest of its lowest priority for a higher one, and a newcomer that ranks no higher", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [oneServerPool(3)]);
  const pool = b.get("web")!;
  pool.pick({ key: null, client: "c" });
  const results = new Map<string, WaitResult>();
  const wait = (name: string, priority: number) => pool.waitForSlot(priority)!.then((r) => { results.set(name, r); });
  const all = [wait("low-1", 0), wait("low-2", 0), wait("normal-1", 5)];
  assert.equal(pool.queued, 3);
  all.push(wait("low-3", 0)); // full, and ranks no higher than the lowest waiting: shed at once
  all.push(wait("high-1", 9)); // sheds low-2, the newest of the lowest
  all.push(wait("normal-2", 5)); // sheds low-1
  all.push(wait("normal-3", 5)); // the lowest now are normal-1 and normal-2: shed at once
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual([...results].sort(), [["low-1", "shed"], ["low-2", "shed"], ["low-3", "shed"], ["normal-3", "shed"]]);
  assert.equal(pool.queued, 3);
  assert.equal(pool.queueShed[0], 3);
  assert.equal(pool.queueShed[5], 1);
  pool.stop();
  await Promise.all(all);
  assert.equal(results.get("high-1"), "timeout", "stop() ends the waits");
});

test("balancer queue: with no room (size 0) or no server merely full, nothing waits", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [oneServerPool(0)]);
  const pool = b.get("web")!;
  pool.pick({ key: null, client: "c" });
  assert.equal(pool.waitForSlot(9), null);
  const open = new Balancer(await createDataPlane({ seed: 1 }), [{ ...oneServerPool(5), servers: [{ address: { host: "127.0.0.1", port: 9001 }, ...SERVER_DEFAULTS }] }]);
  assert.equal(open.get("web")!.waitForSlot(), null, "no max_conns: nothing to wait for");
});
