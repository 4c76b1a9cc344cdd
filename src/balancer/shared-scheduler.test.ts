// Schedulers' state shared between pools in two data planes (as two workers have): picks that
// alternate between them follow the sequence one pool alone picks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../core/wasm.ts";
import { LB_BUCKETS, LB_ENTRY_WORDS } from "../core/layout.ts";
import type { SchedulerName } from "../core/schedulers.ts";
import { SharedLock } from "../control/workers/shared-lock.ts";
import { type BalancerPoolConfig, SERVER_DEFAULTS } from "./config.ts";
import { Pool, type Server } from "./pool.ts";

const WORDS = 64, LOCK = 63;

function config(scheduler: SchedulerName, weights: number[]): BalancerPoolConfig {
  return {
    name: "web", scheduler, hashKey: scheduler.startsWith("lblc") ? { kind: "uri" } : null,
    servers: weights.map((weight, k) => ({ address: { host: "127.0.0.1", port: 9001 + k }, ...SERVER_DEFAULTS, weight })),
    sorryServer: null, queue: { size: 0, timeoutMs: 1000 }, persistenceMs: 0, connectTimeoutMs: 1000,
  };
}

/** Pools like two workers' (their own data planes, the same seed), each server on word k, sharing
 * counts, weights and one locality table; `alone` is the same pool in one process. */
async function workers(scheduler: SchedulerName, weights: number[], ports?: number[][]) {
  const counts = new Int32Array(WORDS), words = new Int32Array(WORDS), table = new Int32Array(LB_BUCKETS * LB_ENTRY_WORDS);
  const make = async (keep?: number[]) => {
    const c = config(scheduler, weights);
    if (keep) c.servers = c.servers.filter((s) => keep.includes(s.address.port));
    const pool = new Pool(c, await createDataPlane({ seed: 7 }));
    for (const s of pool.servers) s.shared = s.port - 9001;
    pool.setSharedCounts(counts, null, { cursor: 62, weights: words, table, estimates: null, lock: new SharedLock(words, LOCK) });
    return pool;
  };
  return { a: await make(ports?.[0]), b: await make(ports?.[1]), alone: new Pool(config(scheduler, weights), await createDataPlane({ seed: 7 })) };
}

const name = (s: Server | null) => s ? String(s.port - 9000) : "-";
const req = (key: string) => ({ key, client: "10.0.0.1" });

test("shared wrr: picks alternating between workers are the one process's smooth sequence", async () => {
  const { a, b, alone } = await workers("wrr", [5, 1, 1]);
  const shared = Array.from({ length: 14 }, (_, i) => name((i % 2 ? b : a).pick(req("x")))).join("");
  const one = Array.from({ length: 14 }, () => name(alone.pick(req("x")))).join("");
  assert.equal(one, "11213111121311");
  assert.equal(shared, one);
});

test("shared wrr: a one-server pool shares nothing, and picks after it grows follow the one process's sequence", async () => {
  const { a, b, alone } = await workers("wrr", [3]);
  const before = Array.from({ length: 5 }, (_, i) => name((i % 2 ? b : a).pick(req("x")))).join("");
  assert.equal(before, Array.from({ length: 5 }, () => name(alone.pick(req("x")))).join(""));
  for (const p of [a, b, alone]) p.addServer({ address: { host: "127.0.0.1", port: 9002 }, ...SERVER_DEFAULTS, weight: 1 });
  for (const p of [a, b]) p.servers[1].shared = 1;
  const shared = Array.from({ length: 12 }, (_, i) => name((i % 2 ? b : a).pick(req("x")))).join("");
  const one = Array.from({ length: 12 }, () => name(alone.pick(req("x")))).join("");
  assert.equal(one, "112111211121");
  assert.equal(shared, one);
});

test("shared wrr: a server another worker took out is skipped as in one process", async () => {
  const { a, b, alone } = await workers("wrr", [2, 1, 1]);
  const seq = (pools: Pool[]) => {
    const out: string[] = [];
    for (let i = 0; i < 12; i++) {
      if (i === 4) for (const p of pools) p.setDown(p.servers[0], "admin", true);
      if (i === 8) for (const p of pools) p.setDown(p.servers[0], "admin", false);
      out.push(name(pools[i % pools.length].pick(req("x"))));
    }
    return out.join("");
  };
  assert.equal(seq([a, b]), seq([alone]));
});

for (const scheduler of ["lblc", "lblcr"] as const) {
  test(`shared ${scheduler}: a key's servers are one table for every worker`, async () => {
    const { a, b, alone } = await workers(scheduler, [1, 1, 1]);
    // Sessions stay open (counted in the shared words), so the overload moves are the same.
    const shared = Array.from({ length: 5 }, (_, i) => name((i % 2 ? b : a).pick(req("/video"))));
    const one = Array.from({ length: 5 }, () => name(alone.pick(req("/video"))));
    assert.deepEqual(one, ["1", "1", "2", "2", "3"]);
    assert.deepEqual(shared, one);
    for (const [pool, server] of [[a, 0], [b, 0]] as const) pool.release(pool.servers[server]);
    for (const server of [alone.servers[0], alone.servers[0]]) alone.release(server);
    assert.equal(name(b.pick(req("/video"))), name(alone.pick(req("/video"))));
  });
}

test("shared lblc: a server the worker does not have leaves the key's entry: the wlc choice serves", async () => {
  const { a, b } = await workers("lblc", [1, 1, 1], [[9001, 9002, 9003], [9002, 9003]]);
  assert.equal(name(a.pick(req("/video"))), "1");
  assert.equal(name(b.pick(req("/video"))), "2", "b has no 9001: a new choice");
  assert.equal(name(a.pick(req("/video"))), "2", "the entry names 9002 now, for both");
});

test("shared rr: one position for every worker", async () => {
  const { a, b } = await workers("rr", [3, 1, 1]);
  assert.equal(Array.from({ length: 6 }, (_, i) => name((i % 2 ? b : a).pick(req("x")))).join(""), "123123");
});

test("shared least_time: what one worker observes moves the one estimate every worker picks by (and reads)", async () => {
  let now = 1000; // one clock for every data plane, as SHARED_CLOCK is for workers
  const clock = () => now;
  const counts = new Int32Array(WORDS), words = new Int32Array(WORDS), estimates = new Int32Array(2 * WORDS);
  const make = async (share: boolean) => {
    const c: BalancerPoolConfig = { ...config("least_time", [1, 1, 1]), leastTime: { measure: "header", decayMs: 500 } };
    const pool = new Pool(c, await createDataPlane({ seed: 7, clock }));
    if (!share) return pool;
    for (const s of pool.servers) s.shared = s.port - 9001;
    pool.setSharedCounts(counts, null, { cursor: 62, weights: null, table: null, estimates, lock: new SharedLock(words, LOCK) });
    return pool;
  };
  const a = await make(true), b = await make(true), alone = await make(false);
  // Observations alternate between the workers; one process sees them all.
  const samples: [number, number, number][] = [[0, 80, 0], [1, 5, 0], [2, 6, 100], [0, 20, 300], [1, 4, 0]];
  samples.forEach(([server, ms, later], i) => {
    now += later;
    const w = i % 2 ? b : a;
    w.observeTime(w.servers[server], ms);
    alone.observeTime(alone.servers[server], ms);
  });
  for (let k = 0; k < 3; k++) {
    assert.equal(a.timeEstimate(a.servers[k]), alone.timeEstimate(alone.servers[k]), `server ${k + 1}'s estimate`);
    assert.equal(b.timeEstimate(b.servers[k]), alone.timeEstimate(alone.servers[k]));
  }
  assert.ok(alone.timeEstimate(alone.servers[0])! >= 20, "the slow server's estimate");
  now += 50;
  const shared = Array.from({ length: 6 }, (_, i) => name((i % 2 ? b : a).pick(req("x")))).join("");
  const one = Array.from({ length: 6 }, () => name(alone.pick(req("x")))).join("");
  assert.equal(shared, one);
  assert.ok(!shared.includes("1"), `the slow server is avoided by both: ${shared}`);
});
