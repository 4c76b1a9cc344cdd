// Two SharedPassive over the same words, as two workers have them: failures either sees count
// toward one max_fails, and both see the server out until the same time; then two workers' pools.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SharedLock } from "../control/workers/shared-lock.ts";
import { createDataPlane } from "../core/wasm.ts";
import { SERVER_DEFAULTS } from "./config.ts";
import { Pool } from "./pool.ts";
import { PASSIVE_WORDS, SharedPassive } from "./shared-passive.ts";

const POOL = 7, LOCK = 7;

function workers() {
  const words = new Int32Array(new SharedArrayBuffer(8 * PASSIVE_WORDS * 4)), locks = new Int32Array(new SharedArrayBuffer(8 * 4));
  const make = () => new SharedPassive(words, POOL, new SharedLock(locks, LOCK));
  return { a: make(), b: make(), words };
}

test("shared passive: failures in two workers make one max_fails; both see the server out until fail_timeout", () => {
  const { a, b } = workers();
  assert.equal(a.anyOut, false);
  assert.equal(a.fail(2, 3, 1000, 100), null);
  assert.equal(b.fail(2, 3, 1000, 200), null);
  assert.equal(a.anyOut, false, "not out before max_fails");
  assert.equal(b.fail(2, 3, 1000, 300), 1300, "the third failure, in the other worker, takes it out");
  assert.equal(a.anyOut, true);
  assert.equal(a.isOut(2, 301), true);
  assert.equal(b.isOut(2, 1299), true);
  assert.equal(a.isOut(1, 301), false, "another server of the pool stays in");
  assert.equal(a.fail(2, 3, 1000, 400), null);
  assert.equal(a.fail(2, 3, 1000, 500), null);
  assert.equal(b.fail(2, 3, 1000, 600), null, "while out, failures do not take it out again");
  assert.equal(a.remaining(2, 1000), 300);
  assert.equal(a.remaining(1, 1000), 0);
  assert.equal(a.isOut(2, 1300), false, "back after fail_timeout");
  a.settle(1300);
  assert.equal(b.anyOut, false, "the pool's word is cleared once the latest time passed");
});

test("shared passive: the window expires, and a success starts the count over", () => {
  const { a, b } = workers();
  a.fail(1, 2, 1000, 0);
  assert.equal(b.fail(1, 2, 1000, 1001), null, "the first failure's window expired: this one opens a new one");
  b.succeed(1);
  assert.equal(a.fail(1, 2, 1000, 1100), null, "the success reset the count");
  assert.equal(a.fail(1, 2, 1000, 1200), 2200);
});

test("shared passive: the pool's word holds the latest server's time; settle leaves a later one", () => {
  const { a, b, words } = workers();
  assert.equal(a.fail(1, 1, 1000, 0), 1000);
  assert.equal(b.fail(2, 1, 500, 100), 600);
  assert.equal(words[POOL * PASSIVE_WORDS + 2], 1000, "an earlier time does not replace the latest");
  a.settle(700);
  assert.equal(a.anyOut, true);
  assert.equal(a.isOut(2, 700), false);
  assert.equal(a.isOut(1, 700), true);
  a.settle(1000);
  assert.equal(a.anyOut, false);
});

test("shared passive: times compare across the i32 wrap", () => {
  const { a } = workers();
  const now = 0x7fffff00;
  const until = a.fail(3, 1, 1000, now)!;
  assert.ok(until < 0, "the time wrapped");
  assert.equal(a.isOut(3, now + 10), true);
  assert.equal(a.isOut(3, (now + 1000) | 0), false);
});

test("shared passive in pools: a failure through one worker's pool takes the server out of the other's next pick; back after fail_timeout", async () => {
  const { words } = workers();
  const counts = new Int32Array(new SharedArrayBuffer(8 * 4)), locks = new Int32Array(new SharedArrayBuffer(8 * 4));
  const make = async () => {
    const pool = new Pool({
      name: "web", scheduler: "rr", hashKey: null,
      servers: [0, 1].map((k) => ({ address: { host: "127.0.0.1", port: 9001 + k }, ...SERVER_DEFAULTS, maxFails: 2, failTimeoutMs: 150 })),
      sorryServer: null, queue: { size: 0, timeoutMs: 1000 }, persistenceMs: 0, connectTimeoutMs: 1000,
    }, await createDataPlane({ seed: 7 }));
    pool.servers.forEach((s, k) => { s.shared = k; });
    pool.setSharedCounts(counts);
    pool.setSharedPassive(new SharedPassive(words, POOL, new SharedLock(locks, LOCK)));
    return pool;
  };
  const a = await make(), b = await make();
  const out: string[] = [];
  a.setFailureSink((s, until) => out.push(`a ${s.port} ${until !== null}`));
  b.setFailureSink((s, until) => out.push(`b ${s.port} ${until !== null}`));
  const [first] = a.servers, req = { key: null, client: "10.0.0.1" };
  b.reportFailure(b.servers[0]);
  assert.deepEqual(out, [], "one failure of two: still in");
  a.reportFailure(first);
  assert.deepEqual(out, ["a 9001 true"], "max_fails reached over both: out, and the supervisor told until when");
  assert.equal(a.isAvailable(first), false, "out here at once");
  for (let i = 0; i < 4; i++) {
    const s = b.pick(req)!;
    assert.equal(s.port, 9002, "the other worker's picks avoid it");
    b.release(s);
  }
  assert.equal(b.isAvailable(b.servers[0]), false);
  b.reportFailure(b.servers[0]);
  b.reportFailure(b.servers[0]);
  assert.equal(out.length, 1, "while out, failures take it out no second time");
  await new Promise((r) => setTimeout(r, 200));
  const picked = new Set<number>();
  for (const p of [a, b]) for (let i = 0; i < 2; i++) { const s = p.pick(req)!; picked.add(s.port); p.release(s); }
  assert.deepEqual([...picked].sort(), [9001, 9002], "back in both after fail_timeout");
  assert.equal(a.isAvailable(first), true);
  // A reload's pool in the supervisor takes over what the words have out, quietly, until its time.
  b.reportFailure(b.servers[1]);
  b.reportFailure(b.servers[1]);
  const next = await make();
  next.adoptPassive(new SharedPassive(words, POOL, new SharedLock(locks, LOCK)));
  assert.deepEqual(next.servers.map((s) => next.isAvailable(s)), [true, false]);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(next.isAvailable(next.servers[1]), true, "back after the time the words held");
  for (const p of [a, b, next]) p.stop();
});
