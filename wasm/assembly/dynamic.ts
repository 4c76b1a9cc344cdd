// Schedulers that decide from live counters at pick time. Each takes a tier (0 = primaries,
// FLAG_BACKUP = backups) and returns a server slot or -1.
import { S_EFFW, S_CW, S_ACTIVE, P_BASE, P_COUNT, P_CURSOR } from "./layout";
import { sget, sset, pget, pset, eligible, rngNext, reduce } from "./mem";

// LVS rr: next usable server after the last one picked; weight only matters when 0.
export function pickRr(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p), c = pget(P_CURSOR, p);
  for (let k = 1; k <= n; k++) {
    let j = c + k;
    if (j >= n) j -= n;
    if (eligible(base + j, tier)) { pset(P_CURSOR, p, j); return base + j; }
  }
  return -1;
}

// nginx smooth weighted round robin.
export function pickWrr(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  let total = 0, best = -1, bestCw = 0;
  for (let i = base; i < base + n; i++) {
    if (!eligible(i, tier)) continue;
    const w = sget(S_EFFW, i);
    const cw = sget(S_CW, i) + w;
    sset(S_CW, i, cw);
    total += w;
    if (best < 0 || cw > bestCw) { best = i; bestCw = cw; }
  }
  if (best >= 0) sset(S_CW, best, bestCw - total);
  return best;
}

export function pickLc(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  let best = -1, bestA = 0;
  for (let i = base; i < base + n; i++) {
    if (!eligible(i, tier)) continue;
    const a = sget(S_ACTIVE, i);
    if (best < 0 || a < bestA) { best = i; bestA = a; }
  }
  return best;
}

// Least (active + extra) / weight, first on ties: wlc with extra 0, sed with extra 1.
export function pickByRatio(p: i32, tier: i32, extra: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  let best = -1;
  let bestA: i64 = 0, bestW: i64 = 1;
  for (let i = base; i < base + n; i++) {
    if (!eligible(i, tier)) continue;
    const a = <i64>(sget(S_ACTIVE, i) + extra), w = <i64>sget(S_EFFW, i);
    if (best < 0 || a * bestW < bestA * w) { best = i; bestA = a; bestW = w; }
  }
  return best;
}

// LVS nq: an idle server if there is one, else sed.
export function pickNq(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  for (let i = base; i < base + n; i++) {
    if (eligible(i, tier) && sget(S_ACTIVE, i) == 0) return i;
  }
  return pickByRatio(p, tier, 1);
}

// Weighted random draw from the pool's own PRNG.
export function pickRandom(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  let total: u32 = 0;
  for (let i = base; i < base + n; i++) if (eligible(i, tier)) total += <u32>sget(S_EFFW, i);
  if (total == 0) return -1;
  let r = <u32>reduce(rngNext(p), <i32>total);
  for (let i = base; i < base + n; i++) {
    if (!eligible(i, tier)) continue;
    const w = <u32>sget(S_EFFW, i);
    if (r < w) return i;
    r -= w;
  }
  return -1;
}

// Power of two choices: two weighted draws, the one with fewer active per weight wins.
export function pickTwo(p: i32, tier: i32): i32 {
  const a = pickRandom(p, tier);
  if (a < 0) return -1;
  const b = pickRandom(p, tier);
  if (b == a) return a;
  const la = <i64>sget(S_ACTIVE, a) * <i64>sget(S_EFFW, b);
  const lb = <i64>sget(S_ACTIVE, b) * <i64>sget(S_EFFW, a);
  return lb < la ? b : a;
}

// HAProxy first: the first server, in configured order, with a free connection slot.
export function pickFirst(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  for (let i = base; i < base + n; i++) if (eligible(i, tier)) return i;
  return -1;
}
