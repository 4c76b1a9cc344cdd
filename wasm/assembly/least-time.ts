// least_time (NGINX Plus's name; Linkerd's peak-EWMA): the server with the lowest expected
// latency, its response-time estimate times (active + 1), per weight. An estimate jumps to a
// sample above it at once (peak) and moves toward one below it with a time constant; with no
// samples it decays toward 0 ("nothing known"), so a server that was slow is tried again, and a
// server never measured is tried first.
import { S_EFFW, S_ACTIVE, S_RTT, S_RTT_AT, P_BASE, P_COUNT, P_DECAY, GLOBALS_OFF, G_NOW } from "./layout";
import { sget, sset, pget, eligible } from "./mem";

// e^-x for x >= 0 from + - * / only, so the TS twin computes the same bits (a runtime's Math.exp
// may differ in the last place): a Taylor polynomial of x/1024, squared ten times.
export function expNeg(x: f64): f64 {
  if (!(x > 0.0)) return 1.0;
  if (x >= 40.0) return 0.0;
  const y = x / 1024.0;
  let r = 1.0 - y * (1.0 - y * (0.5 - y * (1.0 / 6.0 - y * (1.0 / 24.0 - y / 120.0))));
  for (let k = 0; k < 10; k++) r *= r;
  return r;
}

@inline function now(): i32 {
  return load<i32>(GLOBALS_OFF + G_NOW);
}

// How much of server i's estimate is left after the time since it was set.
@inline function kept(i: i32, t: i32, tau: f64): f64 {
  return expNeg(<f64>(t - sget(S_RTT_AT, i)) / tau);
}

// Least estimate * (active + 1) / weight; equal costs go to the less active, then the first.
export function pickLeastTime(p: i32, tier: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p), t = now(), tau = <f64>pget(P_DECAY, p);
  let best = -1, bestA = 0;
  let bestCost: f64 = 0.0, bestW: f64 = 1.0;
  for (let i = base; i < base + n; i++) {
    if (!eligible(i, tier)) continue;
    const a = sget(S_ACTIVE, i), w = <f64>sget(S_EFFW, i), est = sget(S_RTT, i);
    const cost = est == 0 ? 0.0 : <f64>est * kept(i, t, tau) * <f64>(a + 1);
    const mine = cost * bestW, theirs = bestCost * w;
    if (best < 0 || mine < theirs || (mine == theirs && a < bestA)) { best = i; bestA = a; bestCost = cost; bestW = w; }
  }
  return best;
}

// A response time of `us` microseconds from server `slot` of pool p, at the clock in G_NOW.
export function observeTime(p: i32, slot: i32, us: i32): void {
  const t = now(), est = sget(S_RTT, slot);
  const d = est == 0 ? 0.0 : kept(slot, t, <f64>pget(P_DECAY, p));
  const prior = <f64>est * d, sample = <f64>(us < 1 ? 1 : us);
  const next = sample >= prior ? sample : prior + sample * (1.0 - d);
  sset(S_RTT, slot, next >= 2147483647.0 ? 2147483647 : <i32>Math.floor(next + 0.5));
  sset(S_RTT_AT, slot, t);
}
