// The per-client limit tables, on the WASM kernels and on their TS twins: one case suite run
// against both, on a simulated clock (times are passed in), then a random run both must decide
// identically.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "./wasm.ts";
import type { KernelImpl } from "./kernels.ts";
import { LIMIT_FULL, LIMIT_OVER, LimitTable, limitTableBytes, type LimitSpec } from "./limits.ts";
import { LE_SIZE } from "./layout.ts";
import { SharedLock } from "../control/workers/shared-lock.ts";

const IMPLS: KernelImpl[] = ["wasm", "ts"];

async function table(impl: KernelImpl, spec: LimitSpec, seed = 7): Promise<LimitTable> {
  return new LimitTable(await createDataPlane({ impl, seed }), spec, impl);
}

for (const impl of IMPLS) {
  test(`${impl}: a rate limit admits burst + 1 at once, then one per 1/rate, with the wait to the next`, async () => {
    const t = await table(impl, { kind: "rate", size: 1000, rate: 10, burst: 5 });
    const at0 = Array.from({ length: 8 }, () => t.rate("a", 1000));
    assert.deepEqual(at0, [0, 0, 0, 0, 0, 0, 100, 100]); // nginx: excess 0..5000 passes, 6000 > burst
    assert.equal(t.rate("a", 1050), 50); // half the interval drained
    assert.equal(t.rate("a", 1100), 0);
    assert.equal(t.rate("a", 1100), 100);
    assert.equal(t.stats().rejected, 4);
  });

  test(`${impl}: burst 0 admits one request per interval; another key has its own state`, async () => {
    const t = await table(impl, { kind: "rate", size: 1000, rate: 4, burst: 0 });
    assert.equal(t.rate("a", 0), 0);
    assert.equal(t.rate("a", 1), 249);
    assert.equal(t.rate("b", 1), 0);
    assert.equal(t.rate("a", 250), 0);
    assert.equal(t.rate("b", 2), 249);
    assert.equal(t.stats().entries, 2);
  });

  test(`${impl}: a flood of refused requests does not slow its own draining (a fractional rate too)`, async () => {
    // 6 per minute: one every 10 s. Refused requests every millisecond for a minute must not
    // reset the entry's time, or the fractional drain per ms (0.1 milli-requests) would never add up.
    const t = await table(impl, { kind: "rate", size: 1000, rate: 6 / 60, burst: 0 });
    let admitted = 0;
    for (let ms = 0; ms < 60_000; ms++) if (t.rate("slow", ms) === 0) admitted++;
    assert.equal(admitted, 6);
    // 100/s offered 10 requests per ms for 2 s: exactly rate * time + burst + 1 pass.
    const fast = await table(impl, { kind: "rate", size: 1000, rate: 100, burst: 20 });
    let passed = 0;
    for (let ms = 0; ms < 2000; ms++) for (let k = 0; k < 10; k++) if (fast.rate("x", ms) === 0) passed++;
    assert.equal(passed, 200 + 21 - 1); // at ms 0: 21; then one per 10 ms from ms 10 to 1990
  });

  test(`${impl}: a full set reclaims a drained entry first, else evicts the one with least excess`, async () => {
    const t = await table(impl, { kind: "rate", size: 6, rate: 1, burst: 10 }); // one set of 8 entries
    // Keys k0..k7: k(i) spends i + 1 requests at t=0, so k0 holds the least excess.
    for (let i = 0; i < 8; i++) for (let r = 0; r <= i; r++) assert.equal(t.rate(`k${i}`, 0), 0);
    assert.equal(t.stats().entries, 8);
    t.rate("new1", 0);
    let s = t.stats();
    assert.equal(s.evictions, 1);
    assert.equal(s.reclaimed, 0);
    assert.equal(s.entries, 8);
    // k7 kept its excess (7000): only 3 more pass at once; k0 was evicted and starts afresh.
    assert.deepEqual([1, 2, 3, 4].map(() => t.rate("k7", 0)), [0, 0, 0, 1000]);
    // After 20 s every entry has drained: a new key reclaims one, counted as such.
    t.rate("new2", 20_000);
    s = t.stats();
    assert.equal(s.evictions, 1);
    assert.equal(s.reclaimed, 1);
  });

  test(`${impl}: a conn limit counts requests in flight per key and frees an entry at zero`, async () => {
    const t = await table(impl, { kind: "conn", size: 100, max: 2 });
    const a1 = t.acquire("a", 0), a2 = t.acquire("a", 0);
    assert.ok(a1 >= 0 && a2 === a1);
    assert.equal(t.acquire("a", 0), LIMIT_OVER);
    const b = t.acquire("b", 0);
    assert.ok(b >= 0 && b !== a1);
    t.release(a1);
    assert.equal(t.acquire("a", 1), a1);
    t.release(a1); t.release(a1);
    assert.equal(t.stats().entries, 1);
    t.release(b);
    assert.deepEqual({ ...t.stats(), bytes: 0 }, { kind: "conn", size: 100, bytes: 0, entries: 0, evictions: 0, rejected: 1, full: 0, reclaimed: 0 });
  });

  test(`${impl}: a conn entry with requests in flight is never evicted: a new key is refused and counted`, async () => {
    const t = await table(impl, { kind: "conn", size: 6, max: 1 }); // one set of 8 entries
    const held = Array.from({ length: 8 }, (_, i) => t.acquire(`c${i}`, 0));
    assert.ok(held.every((h) => h >= 0));
    assert.equal(t.acquire("late", 5), LIMIT_FULL);
    assert.equal(t.acquire("c3", 5), LIMIT_OVER); // still tracked at its count
    t.release(held[3]);
    assert.ok(t.acquire("late", 6) >= 0);
    const s = t.stats();
    assert.equal(s.full, 1);
    assert.equal(s.rejected, 1);
    assert.equal(s.entries, 8);
  });

  test(`${impl}: tables come from the data plane's heap; a large one grows the memory and the first keeps its entries`, async () => {
    const dp = await createDataPlane({ impl, seed: 3 });
    const small = new LimitTable(dp, { kind: "conn", size: 64, max: 5 }, impl);
    const h = small.acquire("kept", 0);
    const before = dp.memory.byteLength;
    const big = new LimitTable(dp, { kind: "rate", size: 1_000_000, rate: 1, burst: 0 }, impl);
    assert.ok(big.offset >= small.offset + small.bytes);
    if (impl === "wasm") assert.ok(dp.memory.byteLength > before, "the WASM memory grew");
    assert.equal(small.acquire("kept", 1), h);
    assert.equal(big.rate("x", 0), 0);
    assert.equal(big.rate("x", 1), 999);
    big.free();
    const again = new LimitTable(dp, { kind: "rate", size: 1000, rate: 1, burst: 0 }, impl);
    assert.equal(again.offset, big.offset, "freed table memory is reused");
  });

  test(`${impl}: 100,000 keys fit a size-100000 table of ${LE_SIZE * 1.25} bytes per key; the few that overflow are evicted and counted`, async () => {
    const t = await table(impl, { kind: "rate", size: 100_000, rate: 1, burst: 5 });
    assert.equal(t.bytes, limitTableBytes(100_000));
    assert.ok(t.bytes <= 100_000 * LE_SIZE * 1.25 + 64 + 128, `${t.bytes} bytes`);
    for (let i = 0; i < 100_000; i++) t.rate(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 0);
    const s = t.stats();
    // Two choices of a set of 8 at 80% load: a set overflows rarely (0.02% of keys, simulated).
    assert.equal(s.entries + s.evictions, 100_000);
    assert.ok(s.entries > 99_800, `${s.entries} tracked`);
  });
}

test("the WASM kernels and the TS twins decide a random run identically", async () => {
  const specs: LimitSpec[] = [{ kind: "rate", size: 64, rate: 3.5, burst: 4 }, { kind: "conn", size: 64, max: 3 }];
  for (const spec of specs) {
    const [w, s] = [await table("wasm", spec, 99), await table("ts", spec, 99)];
    let seed = 12345;
    const rnd = (n: number) => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return (seed >>> 8) % n; };
    const held: [number, number][] = [];
    const out: number[][] = [[], []];
    for (let step = 0, now = 0; step < 20_000; step++) {
      now += rnd(8);
      const key = `key-${rnd(100)}`;
      if (spec.kind === "rate") { out[0].push(w.rate(key, now)); out[1].push(s.rate(key, now)); continue; }
      if (held.length > 0 && rnd(4) === 0) {
        const [hw, hs] = held.splice(rnd(held.length), 1)[0];
        w.release(hw); s.release(hs);
        continue;
      }
      const hw = w.acquire(key, now), hs = s.acquire(key, now);
      out[0].push(hw - w.offset); out[1].push(hs - s.offset);
      if (hw >= 0) held.push([hw, hs]);
    }
    assert.deepEqual(out[0], out[1]);
    assert.deepEqual(w.stats(), s.stats());
    assert.ok(w.stats().rejected > 0 && w.stats().evictions + w.stats().full > 0, JSON.stringify(w.stats()));
  }
});

// Two data planes stand for two processes; one ArrayBuffer for the segment they both map.
test("a table moved into shared memory is decided there: two planes deciding on it are exact together, its state and counters went with it", async () => {
  const spec: LimitSpec = { kind: "rate", size: 100, rate: 1, burst: 1 };
  const memory = new ArrayBuffer(8 + limitTableBytes(spec.size));
  const lock = new SharedLock(new Int32Array(memory, 0, 1), 0);
  const place = { memory, offset: 8, lock };
  const [a, b] = [await table("wasm", spec, 1), await table("ts", spec, 2)];
  assert.equal(a.rate("k", 0), 0);
  a.moveTo(place);
  b.attachTo(place);
  assert.equal(b.rate("k", 0), 0, "the burst's one");
  assert.equal(a.rate("k", 0), 1000);
  assert.equal(b.rate("k", 0), 1000);
  assert.equal(b.rate("other", 0), 0);
  assert.deepEqual([a.stats().entries, a.stats().rejected], [2, 2]);
  assert.deepEqual(b.stats(), a.stats(), "one table: both read the same counters");
  assert.equal(Atomics.load(new Int32Array(memory, 0, 1), 0), 0, "the lock is free between decisions");
});

test("conn handles of a shared table release across planes; a freed table keeps its last counters", async () => {
  const spec: LimitSpec = { kind: "conn", size: 16, max: 1 };
  const memory = new ArrayBuffer(8 + limitTableBytes(spec.size));
  const place = { memory, offset: 8, lock: new SharedLock(new Int32Array(memory, 0, 1), 0) };
  const [a, b] = [await table("wasm", spec), await table("ts", spec)];
  a.moveTo(place);
  b.attachTo(place);
  const h = a.acquire("k", 0);
  assert.ok(h >= 0);
  assert.equal(b.acquire("k", 0), LIMIT_OVER);
  a.release(h);
  const h2 = b.acquire("k", 1);
  assert.ok(h2 >= 0);
  b.release(h2);
  a.free();
  new Uint8Array(memory).fill(0xff); // the shared memory is gone (another table now)
  assert.deepEqual([a.stats().entries, a.stats().rejected], [0, 1]);
});

test("carryFrom copies a shared rate table's state into another shared one", async () => {
  const spec: LimitSpec = { kind: "rate", size: 64, rate: 1, burst: 0 };
  const bytes = limitTableBytes(spec.size);
  const memory = new ArrayBuffer(16 + 2 * bytes);
  const lockAt = (i: number) => new SharedLock(new Int32Array(memory, 0, 2), i);
  const [old, next] = [await table("ts", spec), await table("ts", spec)];
  old.moveTo({ memory, offset: 16, lock: lockAt(0) });
  next.moveTo({ memory, offset: 16 + bytes, lock: lockAt(1) });
  assert.equal(old.rate("k", 0), 0);
  next.carryFrom(old);
  assert.equal(next.rate("k", 0), 1000);
});
