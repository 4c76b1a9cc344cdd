// What each scheduler picks, on the WASM kernels and on their TS twins: each test is built so that
// only the named algorithm passes it (a kernel returning the first server, or another
// scheduler's choice, fails). The active counts are set directly, as the edge does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "./wasm.ts";
import { type DataPlane, type PoolHandle, type ServerSpec, STATE_DOWN, STATE_UP } from "./dataplane.ts";
import type { KernelImpl } from "./kernels.ts";
import type { SchedulerName } from "./schedulers.ts";

const IMPLS: KernelImpl[] = ["wasm", "ts"];

interface Bench {
  dp: DataPlane;
  pool: PoolHandle;
  /** Server index (0-based in spec order) of a pick, -1 for none. */
  pick(key?: number): number;
  /** Picks and counts the pick as active, as the edge does for a request it forwards. */
  take(key?: number): number;
  setActive(...counts: number[]): void;
  down(i: number): void;
  up(i: number): void;
}

async function bench(impl: KernelImpl, scheduler: SchedulerName, servers: (number | Omit<ServerSpec, "address">)[], seed = 1): Promise<Bench> {
  const dp = await createDataPlane({ impl, seed });
  const pool = dp.addPool({
    scheduler,
    servers: servers.map((s, i) => ({ address: `10.0.0.${i + 1}:80`, ...(typeof s === "number" ? { weight: s } : s) })),
  });
  const index = (slot: number) => slot < 0 ? -1 : slot - pool.base;
  return {
    dp, pool,
    pick: (key = 0) => index(dp.pick(pool.id, key)),
    take(key = 0) {
      const slot = dp.pick(pool.id, key);
      if (slot >= 0) dp.active[slot]++;
      return index(slot);
    },
    setActive: (...counts) => counts.forEach((c, i) => { dp.active[pool.base + i] = c; }),
    down: (i) => dp.setState(pool.base + i, STATE_DOWN),
    up: (i) => dp.setState(pool.base + i, STATE_UP),
  };
}

// Deterministic PRNG for the test's own choices (active counts, keys).
function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
}

/** The reference for the least-loaded family: the first server with the smallest score
 * num(active)/weight, compared exactly by cross-multiplying (no float ties). */
function leastBy(active: number[], weights: number[], num: (a: number) => number): number {
  let best = 0;
  for (let i = 1; i < active.length; i++) {
    if (num(active[i]) * weights[best] < num(active[best]) * weights[i]) best = i;
  }
  return best;
}

const REFERENCE: Record<"lc" | "wlc" | "sed" | "nq", (active: number[], weights: number[]) => number> = {
  lc: (a) => leastBy(a, a.map(() => 1), (x) => x),
  wlc: (a, w) => leastBy(a, w, (x) => x),
  sed: (a, w) => leastBy(a, w, (x) => x + 1),
  nq: (a, w) => { const idle = a.indexOf(0); return idle >= 0 ? idle : leastBy(a, w, (x) => x + 1); },
};

/** Shares of `n` picks per server. */
function shares(n: number, servers: number, pick: (i: number) => number): number[] {
  const counts = new Array(servers).fill(0);
  for (let i = 0; i < n; i++) counts[pick(i)]++;
  return counts.map((c) => c / n);
}

const near = (got: number[], want: number[], tolerance: number, what: string) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tolerance, `${what}: server ${i} got ${g.toFixed(4)}, want ${want[i].toFixed(4)} ± ${tolerance} (${got.map((x) => x.toFixed(3))})`));

/** n keys spread evenly over the 32-bit range, in increasing order (as signed ints). */
const sweep = (n: number) => Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) * 4294967296) / n) | 0);

const keys = (n: number, dp: DataPlane, prefix = "key") => Array.from({ length: n }, (_, k) => dp.hash(`${prefix}-${k}`));

for (const impl of IMPLS) {
  test(`rr ${impl}: each server in turn whatever its weight or load; a down server is skipped, its turn not repeated`, async () => {
    const b = await bench(impl, "rr", [3, 1, 1, 1]);
    b.setActive(9, 0, 0, 0); // load does not matter to rr
    assert.deepEqual(Array.from({ length: 8 }, () => b.pick()), [0, 1, 2, 3, 0, 1, 2, 3]);
    b.down(2);
    assert.deepEqual(Array.from({ length: 6 }, () => b.pick()), [0, 1, 3, 0, 1, 3]);
  });

  test(`wrr ${impl}: the exact smooth sequence for weights 5,1,1 is a a b a c a a, period 7`, async () => {
    const b = await bench(impl, "wrr", [5, 1, 1]);
    b.setActive(9, 0, 0); // load does not matter to wrr
    const seq = Array.from({ length: 14 }, () => "abc"[b.pick()]).join("");
    assert.equal(seq, "aabacaa".repeat(2));
    // An effective-weight change takes effect at once: 1,1,1 is plain rotation.
    b.dp.setEffectiveWeight(b.pool.base, 1);
    const rot = Array.from({ length: 6 }, () => b.pick());
    assert.deepEqual([...rot].sort(), [0, 0, 1, 1, 2, 2], `each once per 3: ${rot}`);
  });

  for (const s of ["lc", "wlc", "sed", "nq"] as const) {
    test(`${s} ${impl}: picks what the ${s} formula picks over 2000 random load states`, async () => {
      const weights = [1, 2, 3, 5, 8];
      const b = await bench(impl, s, weights);
      const rnd = lcg(s.length * 31 + 7);
      for (let step = 0; step < 2000; step++) {
        // Small counts make ties and idle servers common: the cases where the formulas differ.
        const active = weights.map(() => rnd(4) === 0 ? 0 : rnd(12));
        b.setActive(...active);
        assert.equal(b.pick(), REFERENCE[s](active, weights), `active ${active}, weights ${weights}`);
      }
    });
  }

  test(`lc, wlc, sed, nq ${impl}: the load states where the four formulas part ways`, async () => {
    const picks = async (s: SchedulerName, active: number[], weights: number[]) => {
      const b = await bench(impl, s, weights);
      b.setActive(...active);
      return b.pick();
    };
    // lc counts requests, wlc requests per weight: active 1, 3, 5 on weights 1, 4, 10.
    assert.equal(await picks("lc", [1, 3, 5], [1, 4, 10]), 0);
    assert.equal(await picks("wlc", [1, 3, 5], [1, 4, 10]), 2);
    // With nothing active wlc takes the first server, sed the heaviest (LVS sed: (0+1)/w).
    assert.equal(await picks("wlc", [0, 0, 0], [1, 4, 10]), 0);
    assert.equal(await picks("sed", [0, 0, 0], [1, 4, 10]), 2);
    // Active 0, 1 on weights 1, 10: wlc takes the idle server (0 < 1/10), sed counts the request
    // about to be added (1/1 > 2/10) and takes the heavy one.
    assert.equal(await picks("wlc", [0, 1], [1, 10]), 0);
    assert.equal(await picks("sed", [0, 1], [1, 10]), 1);
    // nq takes an idle server whatever its weight, where sed takes the heavy busy one.
    assert.equal(await picks("nq", [5, 0], [100, 1]), 1);
    assert.equal(await picks("sed", [5, 0], [100, 1]), 0);
  });

  test(`first ${impl}: fills the first server to max_conns, then the next; a freed slot goes back to the first`, async () => {
    const b = await bench(impl, "first", [{ weight: 1, maxConns: 2 }, { weight: 5, maxConns: 2 }, { weight: 1 }]);
    // Every request with its own key: first ignores keys (a keyed scheduler would spread them).
    let n = 0;
    const take = () => b.take(b.dp.hash(`request-${n++}`));
    assert.deepEqual(Array.from({ length: 7 }, take), [0, 0, 1, 1, 2, 2, 2]);
    b.dp.active[b.pool.base]--; // a request on the first server ends
    assert.equal(take(), 0);
    b.down(0);
    b.dp.active[b.pool.base + 1]--;
    assert.equal(take(), 1, "the first server down: the next below its limit");
  });

  for (const [s, weighted] of [["dh", false], ["sh", true]] as const) {
    test(`${s} ${impl}: a key always maps to one server, keys spread ${weighted ? "by weight" : "evenly, weight aside"}; a server down moves exactly its keys`, async () => {
      const weights = [3, 1, 1, 1];
      const b = await bench(impl, s, weights);
      const ks = keys(8000, b.dp);
      const before = ks.map((k) => b.pick(k));
      assert.deepEqual(ks.map((k) => b.pick(k)), before, "same key, same server");
      b.setActive(50, 0, 0, 0);
      assert.deepEqual(ks.map((k) => b.pick(k)), before, "load does not move a key");
      b.setActive(0, 0, 0, 0);
      const total = weights.reduce((x, y) => x + y);
      const want = weighted ? weights.map((w) => w / total) : weights.map(() => 1 / weights.length);
      near(shares(ks.length, 4, (i) => before[i]), want, 0.03, `${s} shares`);
      b.down(1);
      const after = ks.map((k) => b.pick(k));
      for (let i = 0; i < ks.length; i++) {
        if (before[i] === 1) assert.notEqual(after[i], 1, `key ${i} stayed on the down server`);
        else assert.equal(after[i], before[i], `key ${i} moved from server ${before[i]} to ${after[i]}`);
      }
      b.up(1);
      assert.deepEqual(ks.map((k) => b.pick(k)), before, "back up: every key goes home");
      // The table: 4096 buckets indexed by the key's low 12 bits, dealt out exactly by weight (sh)
      // or one by one (dh); a ring or a Maglev table puts keys 0..4095 all on one server.
      const buckets = Array.from({ length: 4096 }, (_, k) => k);
      const counts = new Array(4).fill(0);
      for (const k of buckets) counts[b.pick(k)]++;
      want.forEach((share, i) => assert.ok(Math.abs(counts[i] - share * 4096) <= 1, `${s} buckets: ${counts}`));
      for (const k of [0, 1, 77, 4095]) assert.equal(b.pick(k + 4096 * 12345), b.pick(k), "only the low 12 bits count");
    });
  }

  test(`ketama ${impl}: same key same server, spread by weight; a server down moves exactly its keys, back up they return`, async () => {
    const weights = [2, 1, 1, 1];
    const b = await bench(impl, "ketama", weights);
    const ks = keys(8000, b.dp);
    const before = ks.map((k) => b.pick(k));
    assert.deepEqual(ks.map((k) => b.pick(k)), before);
    // 160 points per unit of weight: a ring's arcs vary, so a wide tolerance (still far from
    // the 0.25 each an unweighted scheme gives, or the 1.0 of always-first).
    near(shares(ks.length, 4, (i) => before[i]), [0.4, 0.2, 0.2, 0.2], 0.06, "ketama shares");
    b.down(2);
    const after = ks.map((k) => b.pick(k));
    for (let i = 0; i < ks.length; i++) {
      if (before[i] === 2) assert.notEqual(after[i], 2);
      else assert.equal(after[i], before[i], `key ${i} moved from server ${before[i]} to ${after[i]}`);
    }
    b.up(2);
    assert.deepEqual(ks.map((k) => b.pick(k)), before);
    // A ring: swept in key order, the server changes at most once per point (160 per unit of
    // weight, 800 here); a permuted table (Maglev) changes on most of its 65537 entries.
    let changes = 0, prev = -1;
    for (const key of sweep(100_000)) {
      const s = b.pick(key);
      if (s !== prev) changes++;
      prev = s;
    }
    assert.ok(changes <= 800, `${changes} changes of server over the key range`);
  });

  test(`mh ${impl}: same key same server, spread by weight; a server down moves its keys and few others`, async () => {
    const weights = [2, 1, 1, 1];
    const b = await bench(impl, "mh", weights);
    const ks = keys(8000, b.dp);
    const before = ks.map((k) => b.pick(k));
    assert.deepEqual(ks.map((k) => b.pick(k)), before);
    near(shares(ks.length, 4, (i) => before[i]), [0.4, 0.2, 0.2, 0.2], 0.03, "mh shares");
    // A key's entry is its high bits (multiply-shift onto 65537 entries): 60000 consecutive keys
    // from an entry's start share it, and so a server (a 4096-bucket table spreads them).
    const entryStart = Math.ceil((1000 * 4294967296) / 65537) | 0;
    const inEntry = new Set(Array.from({ length: 600 }, (_, i) => b.pick(entryStart + i * 100)));
    assert.equal(inEntry.size, 1, "one entry, one server");
    // Over the whole key range the table's shares follow the weights closely (Maglev's
    // balance; a 160-points-per-weight ring is off by a percent or more).
    const evenly = sweep(100_000);
    near(shares(evenly.length, 4, (i) => b.pick(evenly[i])), [0.4, 0.2, 0.2, 0.2], 0.004, "mh table shares");
    b.down(2);
    const after = ks.map((k) => b.pick(k));
    let others = 0, othersMoved = 0;
    for (let i = 0; i < ks.length; i++) {
      if (before[i] === 2) { assert.notEqual(after[i], 2); continue; }
      others++;
      if (after[i] !== before[i]) othersMoved++;
    }
    // Maglev is not perfectly minimal: a few entries of other servers are re-dealt (the paper
    // measures a few percent); a modulo hash would move about 3/4 of them.
    assert.ok(othersMoved / others < 0.06, `${othersMoved} of ${others} keys of up servers moved`);
  });

  test(`lblc ${impl}: a key stays on its server until it is overloaded (active > weight while another is under half), then goes to the wlc choice and stays there`, async () => {
    const b = await bench(impl, "lblc", [1, 1, 1]);
    const k = b.dp.hash("/video/1");
    // active (0,0,0) -> wlc: 0; (1,0,0) -> 0 (1 <= weight 1); (2,0,0) -> overloaded -> wlc: 1;
    // (2,1,0) -> 1; (2,2,0) -> overloaded -> wlc: 2.
    assert.deepEqual(Array.from({ length: 5 }, () => b.take(k)), [0, 0, 1, 1, 2]);
    b.setActive(0, 2, 1);
    assert.equal(b.pick(k), 2, "lblc remembers only the last server: the idle first one is not taken");
    b.setActive(5, 5, 5);
    assert.equal(b.pick(k), 2, "over its weight but nobody under half: not overloaded, it stays");
    const other = b.dp.hash("/video/2");
    b.setActive(3, 1, 2);
    assert.equal(b.pick(other), 1, "a new key goes to the wlc choice");
  });

  test(`lblcr ${impl}: a key keeps a set of servers, the least loaded of the set serves, an overloaded set grows by the wlc choice`, async () => {
    const b = await bench(impl, "lblcr", [1, 1, 1]);
    const k = b.dp.hash("/video/1");
    // As lblc up to here, but the set keeps {0, 1, 2} ...
    assert.deepEqual(Array.from({ length: 5 }, () => b.take(k)), [0, 0, 1, 1, 2]);
    // ... so when server 0 empties it is the least loaded of the set and serves (lblc: 2).
    b.setActive(0, 2, 1);
    assert.equal(b.pick(k), 0);
    b.setActive(3, 1, 3);
    assert.equal(b.pick(k), 1);
    const other = b.dp.hash("/video/2");
    b.setActive(3, 2, 1);
    assert.equal(b.pick(other), 2, "a new key goes to the wlc choice");
  });

  test(`random ${impl}: weighted shares, and independent draws (repeats and block counts vary as chance says)`, async () => {
    const weights = [3, 1, 1];
    const b = await bench(impl, "random", weights);
    const n = 20_000;
    const seq = Array.from({ length: n }, () => b.pick());
    near(shares(n, 3, (i) => seq[i]), [0.6, 0.2, 0.2], 0.02, "random shares");
    // Load does not matter to random (two would shun the busy server).
    b.setActive(20, 0, 0);
    near(shares(n, 3, () => b.pick()), [0.6, 0.2, 0.2], 0.02, "random shares under load");
    // Same server twice in a row with chance sum(p^2) = .44 (smooth wrr: a a b a c a a ~ .29,
    // rr 0, first 1). SD over 20k pairs is ~.0035; .03 is more than 8 SD.
    let repeats = 0;
    for (let i = 1; i < n; i++) if (seq[i] === seq[i - 1]) repeats++;
    assert.ok(Math.abs(repeats / (n - 1) - 0.44) < 0.03, `repeat rate ${repeats / (n - 1)}`);
    // Server 0's count per block of 5 is binomial(5, .6): variance 1.2 (any periodic scheme: 0).
    const blocks: number[] = [];
    for (let i = 0; i + 5 <= n; i += 5) blocks.push(seq.slice(i, i + 5).filter((x) => x === 0).length);
    const mean = blocks.reduce((x, y) => x + y) / blocks.length;
    const variance = blocks.reduce((x, y) => x + (y - mean) ** 2, 0) / blocks.length;
    assert.ok(variance > 0.9 && variance < 1.5, `block variance ${variance}`);
  });

  test(`two ${impl}: two weighted draws, the less loaded wins: a loaded server is picked only when drawn twice`, async () => {
    const b = await bench(impl, "two", [1, 1, 1]);
    const n = 18_000;
    // Server 0 busy, the others idle: 0 wins only when both draws are 0, chance 1/9 (random
    // gives 1/3, least-loaded 0). SD ~.0023; the tolerance is over 10 SD.
    b.setActive(10, 0, 0);
    near(shares(n, 3, () => b.pick()), [1 / 9, 4 / 9, 4 / 9], 0.03, "one busy");
    // Server 0 idle, the others busy: 0 wins whenever it is drawn, chance 1 - (2/3)^2 = 5/9.
    b.setActive(0, 4, 4);
    near(shares(n, 3, () => b.pick()), [5 / 9, 2 / 9, 2 / 9], 0.03, "one idle");
    // Load is per weight: active 2 on weight 4 is less loaded than active 1 on weight 1.
    const w = await bench(impl, "two", [4, 1]);
    w.setActive(2, 1);
    // 1 wins only when drawn twice: (1/5)^2 = .04.
    near(shares(n, 2, () => w.pick()), [0.96, 0.04], 0.02, "per weight");
  });
}
