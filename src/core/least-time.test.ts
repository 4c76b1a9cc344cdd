// least_time on the WASM kernel and its TS twin, on one case suite over a simulated clock: the
// peak-EWMA rules against a reference written with Math.exp, the pick formula, decay bringing a
// slow server back, and a random run where both kernels must pick and estimate the same bits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "./wasm.ts";
import { type DataPlane, type PoolHandle, STATE_DOWN } from "./dataplane.ts";
import type { KernelImpl } from "./kernels.ts";
import { expNeg as expNegTs } from "./twin/least-time.ts";

const IMPLS: KernelImpl[] = ["wasm", "ts"];
const TAU = 1000; // ms

interface Case {
  dp: DataPlane;
  pool: PoolHandle;
  clock: { now: number };
  /** Server index of a pick (-1: none); `take` counts it active as the edge does. */
  pick(take?: boolean): number;
  observe(i: number, ms: number): void;
  estimate(i: number): number;
  setActive(...counts: number[]): void;
}

async function make(impl: KernelImpl, weights: number[], seed = 1): Promise<Case> {
  const clock = { now: 5_000 };
  const dp = await createDataPlane({ impl, seed, clock: () => clock.now });
  const pool = dp.addPool({
    scheduler: "least_time", decayMs: TAU,
    servers: weights.map((weight, i) => ({ address: `10.0.0.${i + 1}:80`, weight })),
  });
  return {
    dp, pool, clock,
    pick(take = false) {
      const slot = dp.pick(pool.id);
      if (slot >= 0 && take) dp.active[slot]++;
      return slot < 0 ? -1 : slot - pool.base;
    },
    observe: (i, ms) => dp.observeTime(pool.base + i, ms),
    estimate: (i) => dp.timeEstimate(pool.base + i),
    setActive: (...counts) => counts.forEach((c, i) => { dp.active[pool.base + i] = c; }),
  };
}

/** The rules in plain floating point with Math.exp: what the kernels approximate. */
function reference(est: number, sinceMs: number, sampleUs: number): number {
  if (est === 0) return sampleUs;
  const d = Math.exp(-sinceMs / TAU), prior = est * d;
  return sampleUs >= prior ? sampleUs : prior + sampleUs * (1 - d);
}

test("least_time: the kernels' e^-x is within 1e-9 of Math.exp over [0, 40]", () => {
  for (let x = 0; x <= 40; x += 0.01) {
    const got = expNegTs(x), want = Math.exp(-x);
    assert.ok(Math.abs(got - want) <= 1e-9 * Math.max(want, 1e-6) + 1e-15, `x=${x}: ${got} vs ${want}`);
  }
  assert.equal(expNegTs(0), 1);
  assert.equal(expNegTs(-5), 1, "a clock that went back keeps the estimate");
  assert.equal(expNegTs(41), 0);
});

for (const impl of IMPLS) {
  test(`least_time ${impl}: servers without a sample are tried first, spread by fewer active`, async () => {
    const c = await make(impl, [1, 1, 1]);
    c.observe(0, 5);
    c.observe(2, 5);
    assert.equal(c.pick(true), 1, "the one server never measured");
    assert.equal(c.pick(true), 1, "still the cheapest: 0 * (active + 1)");
    const fresh = await make(impl, [1, 1, 1]);
    assert.deepEqual([fresh.pick(true), fresh.pick(true), fresh.pick(true), fresh.pick(true)], [0, 1, 2, 0], "equal costs go to the less active");
  });

  test(`least_time ${impl}: a sample above the estimate replaces it at once; below, the estimate moves toward it with the time constant`, async () => {
    const c = await make(impl, [1]);
    c.observe(0, 10);
    assert.equal(c.estimate(0), 10_000, "the first sample is the estimate");
    c.clock.now += 50;
    c.observe(0, 100);
    assert.equal(c.estimate(0), 100_000, "peak: a slower sample at once");
    let est = 100_000;
    for (const [dt, ms] of [[TAU, 10], [100, 10], [3000, 1], [0, 0.5], [250, 40], [20, 39]] as const) {
      c.clock.now += dt;
      c.observe(0, ms);
      est = Math.round(reference(est, dt, Math.round(ms * 1000)));
      assert.ok(Math.abs(c.estimate(0) - est) <= 1, `after ${dt} ms, ${ms} ms: ${c.estimate(0)} µs, reference ${est} µs`);
      est = c.estimate(0);
    }
    // One time constant after 100 ms, a 10 ms sample: 100/e + 10 (1 - 1/e) = 43.109 ms.
    const d = await make(impl, [1]);
    d.observe(0, 100);
    d.clock.now += TAU;
    d.observe(0, 10);
    assert.equal(d.estimate(0), 43_109, "100 e^-1 + 10 (1 - e^-1) ms");
  });

  test(`least_time ${impl}: picks the least estimate * (active + 1) / weight`, async () => {
    const c = await make(impl, [1, 1, 2]);
    c.observe(0, 10);
    c.observe(1, 30);
    c.observe(2, 50);
    c.setActive(0, 0, 0);
    assert.equal(c.pick(), 0, "10 < 30 < 50/2");
    c.setActive(3, 0, 0);
    assert.equal(c.pick(), 2, "10*4 = 40 > 30 > 50/2 = 25");
    c.setActive(3, 0, 1);
    assert.equal(c.pick(), 1, "40, 30, 50*2/2 = 50");
    c.setActive(1, 0, 1);
    assert.equal(c.pick(), 0, "20, 30, 50");
    c.dp.setState(c.pool.base + 0, STATE_DOWN);
    assert.equal(c.pick(), 1, "a down server is never picked");
  });

  test(`least_time ${impl}: a slow server is avoided, its estimate decays, it is tried again, and back to fast it takes its share`, async () => {
    const c = await make(impl, [1, 1, 1]);
    for (const i of [0, 1, 2]) c.observe(i, 2);
    c.observe(1, 200); // server 1 turns slow: 200 ms at once
    // Under load the fast ones carry 3 active each: cost 2 ms * 4 = 8 ms; server 1 costs
    // 200 ms e^(-t/tau) until it falls below that, at t = tau ln 25 = 3.22 tau.
    c.setActive(3, 0, 3);
    const firstTry: number[] = [];
    for (let t = 0; t <= 5 * TAU; t += TAU / 10) {
      c.clock.now += TAU / 10;
      c.observe(0, 2);
      c.observe(2, 2);
      if (c.pick() === 1) { firstTry.push(t + TAU / 10); break; }
    }
    assert.equal(firstTry.length, 1, "server 1 is tried again within 5 time constants");
    assert.ok(firstTry[0] >= 3.1 * TAU && firstTry[0] <= 3.4 * TAU, `tried again at ${firstTry[0]} ms, expected near ${(TAU * Math.log(25)).toFixed(0)}`);
    // Fast again: its samples pull the estimate down with the time constant (the 200 ms still
    // weighs e^-3.3 in the first one), as traffic keeps sampling every server.
    c.observe(1, 2);
    assert.ok(c.estimate(1) > 8_000 && c.estimate(1) < 11_000, `estimate ${c.estimate(1)} µs after one fast sample`);
    for (let k = 0; k < 30; k++) {
      c.clock.now += TAU / 10;
      for (const i of [0, 1, 2]) c.observe(i, 2);
    }
    assert.ok(c.estimate(1) < 2_500, `estimate ${c.estimate(1)} µs after 3 time constants of fast samples`);
    c.setActive(0, 0, 0);
    const counts = [0, 0, 0];
    for (let k = 0; k < 30; k++) counts[c.pick(true)]++;
    assert.ok(counts[1] >= 7, `recovered server's share of 30 picks: ${counts}`);
  });
}

test("least_time: WASM and TS twin pick the same servers and keep the same estimates over a random run", async () => {
  const [w, t] = await Promise.all([make("wasm", [1, 2, 1, 3, 1]), make("ts", [1, 2, 1, 3, 1])]);
  let s = 12345;
  const rand = (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
  let picks = 0;
  for (let step = 0; step < 20_000; step++) {
    const op = rand(10), i = rand(5), dt = rand(400), ms = rand(5000) / 10;
    for (const c of [w, t]) {
      if (op < 4) c.observe(i, ms);
      else if (op < 5) c.clock.now += dt;
      else if (op < 6) c.dp.active[c.pool.base + i] = Math.max(0, c.dp.active[c.pool.base + i] - 1);
    }
    if (op >= 6) {
      const a = w.pick(true), b = t.pick(true);
      assert.equal(a, b, `step ${step}`);
      picks++;
    }
  }
  for (let i = 0; i < 5; i++) assert.equal(w.estimate(i), t.estimate(i), `server ${i}'s estimate`);
  assert.ok(picks > 5000);
});
