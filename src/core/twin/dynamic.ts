// TS twin of wasm/assembly/dynamic.ts.
import { S_EFFW, S_CW, S_ACTIVE, P_BASE, P_COUNT, P_CURSOR } from "../layout.ts";
import { sget, sset, pget, pset, eligible, rngNext, reduce } from "./mem.ts";

export function pickRr(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p), c = pget(m, P_CURSOR, p);
  for (let k = 1; k <= n; k++) {
    let j = c + k;
    if (j >= n) j -= n;
    if (eligible(m, base + j, tier)) { pset(m, P_CURSOR, p, j); return base + j; }
  }
  return -1;
}

export function pickWrr(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  let total = 0, best = -1, bestCw = 0;
  for (let i = base; i < base + n; i++) {
    if (!eligible(m, i, tier)) continue;
    const w = sget(m, S_EFFW, i);
    const cw = (sget(m, S_CW, i) + w) | 0;
    sset(m, S_CW, i, cw);
    total += w;
    if (best < 0 || cw > bestCw) { best = i; bestCw = cw; }
  }
  if (best >= 0) sset(m, S_CW, best, (bestCw - total) | 0);
  return best;
}

export function pickLc(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  let best = -1, bestA = 0;
  for (let i = base; i < base + n; i++) {
    if (!eligible(m, i, tier)) continue;
    const a = sget(m, S_ACTIVE, i);
    if (best < 0 || a < bestA) { best = i; bestA = a; }
  }
  return best;
}

export function pickByRatio(m: Int32Array, p: number, tier: number, extra: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  let best = -1, bestA = 0, bestW = 1;
  for (let i = base; i < base + n; i++) {
    if (!eligible(m, i, tier)) continue;
    const a = sget(m, S_ACTIVE, i) + extra, w = sget(m, S_EFFW, i);
    if (best < 0 || a * bestW < bestA * w) { best = i; bestA = a; bestW = w; }
  }
  return best;
}

export function pickNq(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  for (let i = base; i < base + n; i++) {
    if (eligible(m, i, tier) && sget(m, S_ACTIVE, i) === 0) return i;
  }
  return pickByRatio(m, p, tier, 1);
}

export function pickRandom(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  let total = 0;
  for (let i = base; i < base + n; i++) if (eligible(m, i, tier)) total += sget(m, S_EFFW, i);
  if (total === 0) return -1;
  let r = reduce(rngNext(m, p), total);
  for (let i = base; i < base + n; i++) {
    if (!eligible(m, i, tier)) continue;
    const w = sget(m, S_EFFW, i);
    if (r < w) return i;
    r -= w;
  }
  return -1;
}

export function pickTwo(m: Int32Array, p: number, tier: number): number {
  const a = pickRandom(m, p, tier);
  if (a < 0) return -1;
  const b = pickRandom(m, p, tier);
  if (b === a) return a;
  const la = sget(m, S_ACTIVE, a) * sget(m, S_EFFW, b);
  const lb = sget(m, S_ACTIVE, b) * sget(m, S_EFFW, a);
  return lb < la ? b : a;
}

export function pickFirst(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  for (let i = base; i < base + n; i++) if (eligible(m, i, tier)) return i;
  return -1;
}
