// The scheduling kernels: WASM and TS twins agree pick for pick, and each scheduler keeps the
// promises operators rely on (weights, backups, consistency).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../src/core/wasm.ts";
import { DataPlane, STATE_DOWN, STATE_DRAIN, STATE_UP, type PoolSpec } from "../src/core/dataplane.ts";
import { SCHEDULERS, type SchedulerName } from "../src/core/schedulers.ts";
import { MAGLEV_M } from "../src/core/layout.ts";

const wasmPlane = (seed: number) => createDataPlane({ impl: "wasm", seed });
const tsPlane = (seed: number) => new DataPlane({ impl: "ts", seed });

// Deterministic PRNG for test event sequences.
function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
}

function servers(n: number, weights?: number[]) {
  return Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}:80`, weight: weights?.[i] ?? 1 }));
}

// The key that lands on Maglev table entry e (picks map a key onto the table by multiply-shift).
const entryKey = (e: number, m: number) => Math.floor(((e + 0.5) * 4294967296) / m) | 0;

const mixedPool = (scheduler: SchedulerName): PoolSpec => ({
  scheduler,
  servers: [
    { address: "10.0.0.1:80", weight: 5 },
    { address: "10.0.0.2:80", weight: 1 },
    { address: "10.0.0.3:80", weight: 3, maxConns: 4 },
    { address: "10.0.0.4:80", weight: 2 },
    { address: "10.0.0.5:80", weight: 0 },
    { address: "10.0.0.6:80", weight: 2, backup: true },
    { address: "10.0.0.7:80", weight: 1, backup: true },
  ],
  maglevSize: 1009,
});

for (const scheduler of SCHEDULERS) {
  test(`twin: ${scheduler} picks the same in WASM and TS over 5000 mixed events`, async () => {
    const a = await wasmPlane(7), b = tsPlane(7);
    const pa = a.addPool(mixedPool(scheduler)), pb = b.addPool(mixedPool(scheduler));
    const rnd = lcg(42);
    const held: number[] = [];
    const states = [STATE_UP, STATE_UP, STATE_DOWN, STATE_DRAIN] as const;
    for (let step = 0; step < 5000; step++) {
      const ev = rnd(100);
      if (ev < 70) {
        const key = rnd(64) * 2654435761 >>> 0;
        const x = a.pick(pa.id, key), y = b.pick(pb.id, key);
        assert.equal(x, y, `step ${step}: wasm picked ${x}, ts picked ${y}`);
        if (x >= 0 && rnd(3) > 0) { a.active[x]++; b.active[y]++; held.push(x); }
      } else if (ev < 85 && held.length) {
        const s = held.splice(rnd(held.length), 1)[0];
        a.active[s]--; b.active[s]--;
      } else if (ev < 95) {
        const slot = pa.base + rnd(pa.count), st = states[rnd(states.length)];
        a.setState(slot, st); b.setState(slot, st);
      } else {
        const slot = pa.base + rnd(pa.count), w = rnd(6);
        a.setEffectiveWeight(slot, w); b.setEffectiveWeight(slot, w);
      }
    }
  });
}

test("twin: the keyed hash is the same in WASM and TS, ASCII and not", async () => {
  const a = await wasmPlane(99);
  const keys = ["", "a", "ab", "abc", "abcd", "abcde", "/api/v1/users?id=7", "10.1.2.3", "ünïcødé ✓", "x".repeat(301)];
  for (const k of keys) assert.equal(a.hashInTs(k), a.hashInWasm(k), JSON.stringify(k));
  assert.notEqual(a.hash("abc"), (await wasmPlane(100)).hash("abc"), "the seed keys the hash");
});

test("wrr: smooth weighted picks are within 1% of the weights over 100k picks", async () => {
  const weights = [5, 3, 1, 1];
  const dp = await wasmPlane(1);
  const pool = dp.addPool({ scheduler: "wrr", servers: servers(4, weights) });
  const counts = new Array(4).fill(0);
  for (let i = 0; i < 100_000; i++) counts[dp.pick(pool.id) - pool.base]++;
  const total = weights.reduce((x, y) => x + y);
  weights.forEach((w, i) => {
    const share = counts[i] / 100_000, want = w / total;
    assert.ok(Math.abs(share - want) <= 0.01 * want, `server ${i}: ${share} vs ${want}`);
  });
  // Smooth: the heavy server never gets more than its share in a row (5 of 10 here).
  const seq = Array.from({ length: 10 }, () => dp.pick(pool.id) - pool.base);
  assert.ok(!seq.join("").includes("000"), `not interleaved: ${seq.join(",")}`);
});

for (const scheduler of SCHEDULERS) {
  test(`${scheduler}: down, draining and weight-0 servers take nothing; backups only when no primary can; then -1`, async () => {
    const dp = await wasmPlane(3);
    const pool = dp.addPool({
      scheduler,
      servers: [
        { address: "10.0.0.1:80", weight: 1 },
        { address: "10.0.0.2:80", weight: 1 },
        { address: "10.0.0.3:80", weight: 0 },
        { address: "10.0.0.4:80", weight: 1, down: true },
        { address: "10.0.0.5:80", weight: 1, backup: true },
      ],
    });
    const seen = (n = 200) => {
      const s = new Set<number>();
      for (let i = 0; i < n; i++) s.add(dp.pick(pool.id, (i * 2654435761) >>> 0) - pool.base);
      return [...s].sort();
    };
    const first = seen();
    assert.ok(first.every((i) => i === 0 || i === 1), `picked ${first}`);
    dp.setState(pool.base + 1, STATE_DRAIN);
    assert.deepEqual(seen(), [0]);
    dp.setState(pool.base, STATE_DOWN);
    assert.deepEqual(seen(), [4], "the backup serves once no primary can");
    dp.setState(pool.base + 4, STATE_DOWN);
    assert.deepEqual(seen(50), [-1 - pool.base], "no server: -1, not a trap");
    dp.setState(pool.base, STATE_UP);
    assert.deepEqual(seen(), [0], "a primary back takes over from the backup");
  });
}

test("mh: Maglev table imbalance is within 1% when M > 100 N", async () => {
  const dp = await wasmPlane(5);
  const n = 50;
  const pool = dp.addPool({ scheduler: "mh", servers: servers(n) });
  const counts = new Array(n).fill(0);
  for (let e = 0; e < MAGLEV_M; e++) counts[dp.pick(pool.id, entryKey(e, MAGLEV_M)) - pool.base]++;
  const ideal = MAGLEV_M / n;
  for (const c of counts) assert.ok(Math.abs(c - ideal) / ideal <= 0.01, `${c} entries vs ${ideal}`);
});

test("mh: weights set each server's share of the table", async () => {
  const dp = await wasmPlane(5);
  const weights = [1, 2, 3, 4];
  const pool = dp.addPool({ scheduler: "mh", servers: servers(4, weights) });
  const counts = new Array(4).fill(0);
  for (let e = 0; e < MAGLEV_M; e++) counts[dp.pick(pool.id, entryKey(e, MAGLEV_M)) - pool.base]++;
  weights.forEach((w, i) => {
    const want = (MAGLEV_M * w) / 10;
    assert.ok(Math.abs(counts[i] - want) / want <= 0.01, `server ${i}: ${counts[i]} vs ${want}`);
  });
});

for (const [scheduler, bound] of [["ketama", 1.25], ["mh", 2]] as const) {
  test(`${scheduler}: removing one of N servers moves at most about ${bound}/N of the keys`, async () => {
    const n = 10, keys = 100_000;
    const dp = await wasmPlane(11);
    const pool = dp.addPool({ scheduler, servers: servers(n) });
    const before = Array.from({ length: keys }, (_, k) => dp.pick(pool.id, dp.hash(`key-${k}`)));
    dp.setState(pool.base + 3, STATE_DOWN);
    let moved = 0;
    for (let k = 0; k < keys; k++) if (dp.pick(pool.id, dp.hash(`key-${k}`)) !== before[k]) moved++;
    assert.ok(moved / keys <= bound / n, `${moved} of ${keys} keys moved`);
    const owned = before.filter((s) => s === pool.base + 3).length;
    assert.ok(moved >= owned, "every key of the removed server moved");
  });
}

test("sh: the same source sticks to the same server; a server down moves only its keys", async () => {
  const dp = await wasmPlane(2);
  const pool = dp.addPool({ scheduler: "sh", servers: servers(4, [1, 2, 1, 1]) });
  const src = Array.from({ length: 2000 }, (_, i) => dp.hash(`192.0.2.${i}`));
  const first = src.map((k) => dp.pick(pool.id, k));
  assert.deepEqual(src.map((k) => dp.pick(pool.id, k)), first);
  const counts = [0, 0, 0, 0];
  for (const s of first) counts[s - pool.base]++;
  assert.ok(counts[1] > counts[0] * 1.5, `weight 2 takes about twice: ${counts}`);
  const downed = pool.base + 1;
  dp.setState(downed, STATE_DOWN);
  src.forEach((k, i) => {
    const now = dp.pick(pool.id, k);
    if (first[i] === downed) assert.notEqual(now, downed, `source ${i} stayed on the down server`);
    else assert.equal(now, first[i], `source ${i} of an up server moved`);
  });
});

test("lc and wlc: least active connections, weighted", async () => {
  const dp = await wasmPlane(4);
  const lc = dp.addPool({ scheduler: "lc", servers: servers(3) });
  dp.active[lc.base] = 3; dp.active[lc.base + 1] = 1; dp.active[lc.base + 2] = 2;
  assert.equal(dp.pick(lc.id) - lc.base, 1);
  const wlc = dp.addPool({ scheduler: "wlc", servers: servers(2, [4, 1]) });
  dp.active[wlc.base] = 6; dp.active[wlc.base + 1] = 2; // 6/4 < 2/1
  assert.equal(dp.pick(wlc.id) - wlc.base, 0);
});

test("first: fills servers in order up to max_conns", async () => {
  const dp = await wasmPlane(4);
  const pool = dp.addPool({
    scheduler: "first",
    servers: [{ address: "a:1", weight: 1, maxConns: 2 }, { address: "b:1", weight: 1, maxConns: 2 }],
  });
  const picks = [];
  for (let i = 0; i < 5; i++) {
    const s = dp.pick(pool.id);
    picks.push(s < 0 ? -1 : s - pool.base);
    if (s >= 0) dp.active[s]++;
  }
  assert.deepEqual(picks, [0, 0, 1, 1, -1]);
});

test("lblc: a key stays on its server until that server is overloaded", async () => {
  const dp = await wasmPlane(4);
  const pool = dp.addPool({ scheduler: "lblc", servers: servers(3, [2, 2, 2]) });
  const key = dp.hash("/video/1");
  const s = dp.pick(pool.id, key);
  for (let i = 0; i < 3; i++) assert.equal(dp.pick(pool.id, key), s);
  dp.active[s] = 5; // above its weight while others are idle
  const t = dp.pick(pool.id, key);
  assert.notEqual(t, s);
  assert.equal(dp.pick(pool.id, key), t, "the key now maps to the new server");
});
