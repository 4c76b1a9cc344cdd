// TS twin of wasm/assembly/least-time.ts: the same arithmetic in the same order, so the same bits.
import { S_EFFW, S_ACTIVE, S_RTT, S_RTT_AT, P_BASE, P_COUNT, P_DECAY, GLOBALS_OFF, G_NOW } from "../layout.ts";
import { sget, sset, pget, eligible } from "./mem.ts";

export function expNeg(x: number): number {
  if (!(x > 0)) return 1;
  if (x >= 40) return 0;
  const y = x / 1024;
  let r = 1 - y * (1 - y * (0.5 - y * (1 / 6 - y * (1 / 24 - y / 120))));
  for (let k = 0; k < 10; k++) r *= r;
  return r;
}

const now = (m: Int32Array): number => m[(GLOBALS_OFF + G_NOW) >> 2];

const kept = (m: Int32Array, i: number, t: number, tau: number): number =>
  expNeg(((t - sget(m, S_RTT_AT, i)) | 0) / tau);

export function pickLeastTime(m: Int32Array, p: number, tier: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p), t = now(m), tau = pget(m, P_DECAY, p);
  let best = -1, bestA = 0, bestCost = 0, bestW = 1;
  for (let i = base; i < base + n; i++) {
    if (!eligible(m, i, tier)) continue;
    const a = sget(m, S_ACTIVE, i), w = sget(m, S_EFFW, i), est = sget(m, S_RTT, i);
    const cost = est === 0 ? 0 : est * kept(m, i, t, tau) * (a + 1);
    const mine = cost * bestW, theirs = bestCost * w;
    if (best < 0 || mine < theirs || (mine === theirs && a < bestA)) { best = i; bestA = a; bestCost = cost; bestW = w; }
  }
  return best;
}

export function observeTime(m: Int32Array, p: number, slot: number, us: number): void {
  const t = now(m), est = sget(m, S_RTT, slot);
  const d = est === 0 ? 0 : kept(m, slot, t, pget(m, P_DECAY, p));
  const prior = est * d, sample = us < 1 ? 1 : us;
  const next = sample >= prior ? sample : prior + sample * (1 - d);
  sset(m, S_RTT, slot, next >= 2147483647 ? 2147483647 : Math.floor(next + 0.5));
  sset(m, S_RTT_AT, slot, t);
}
