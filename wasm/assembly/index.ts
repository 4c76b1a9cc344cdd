// The Fulcrum data-plane module: exports the pick, rebuild and hash kernels.
import {
  P_SCHED, KEYBUF_OFF, FLAG_BACKUP, SCHED_RR, SCHED_WRR, SCHED_LC, SCHED_WLC, SCHED_SED, SCHED_NQ,
  SCHED_DH, SCHED_SH, SCHED_LBLC, SCHED_LBLCR, SCHED_MH, SCHED_KETAMA, SCHED_RANDOM, SCHED_TWO,
  SCHED_FIRST, SCHED_LEAST_TIME,
} from "./layout";
import { pget } from "./mem";
import { halfSipHash } from "./hash";
import {
  pickRr, pickWrr, pickLc, pickByRatio, pickNq, pickRandom, pickTwo, pickFirst,
} from "./dynamic";
import { pickLeastTime } from "./least-time";
import {
  buildBuckets, pickBucket, buildMaglev, pickMaglev, buildKetama, pickKetama, pickLblc, pickLblcr,
} from "./tables";

function pickTier(p: i32, sched: i32, tier: i32): i32 {
  switch (sched) {
    case SCHED_RR: return pickRr(p, tier);
    case SCHED_WRR: return pickWrr(p, tier);
    case SCHED_LC: return pickLc(p, tier);
    case SCHED_WLC: return pickByRatio(p, tier, 0);
    case SCHED_SED: return pickByRatio(p, tier, 1);
    case SCHED_NQ: return pickNq(p, tier);
    case SCHED_RANDOM: return pickRandom(p, tier);
    case SCHED_TWO: return pickTwo(p, tier);
    case SCHED_FIRST: return pickFirst(p, tier);
    case SCHED_LEAST_TIME: return pickLeastTime(p, tier);
  }
  return -1;
}

// A server slot for a new session in pool p (key: the request's key hash, for keyed
// schedulers), or -1 when no server can take it.
export function pick(p: i32, key: u32): i32 {
  const sched = pget(P_SCHED, p);
  switch (sched) {
    case SCHED_DH: case SCHED_SH: return pickBucket(p, key);
    case SCHED_MH: return pickMaglev(p, key);
    case SCHED_KETAMA: return pickKetama(p, key);
    case SCHED_LBLC: return pickLblc(p, key);
    case SCHED_LBLCR: return pickLblcr(p, key);
  }
  const d = pickTier(p, sched, 0);
  return d >= 0 ? d : pickTier(p, sched, FLAG_BACKUP);
}

// Picks for n keys at keys (u32 each) into out (i32 each): one call for a batch.
export function pickBatch(p: i32, keys: i32, out: i32, n: i32): void {
  for (let k = 0; k < n; k++) store<i32>(out + (k << 2), pick(p, load<u32>(keys + (k << 2))));
}

// Rebuilds pool p's lookup table after its servers' state or weights changed.
export function rebuild(p: i32): void {
  const sched = pget(P_SCHED, p);
  if (sched == SCHED_DH || sched == SCHED_SH) buildBuckets(p, sched);
  else if (sched == SCHED_MH) buildMaglev(p);
  else if (sched == SCHED_KETAMA) buildKetama(p);
}

// Keyed hash of len bytes the caller wrote at KEYBUF_OFF.
export function hashKey(len: i32): u32 {
  return halfSipHash(KEYBUF_OFF, len);
}

// Hash and pick in one call.
export function pickKey(p: i32, len: i32): i32 {
  return pick(p, halfSipHash(KEYBUF_OFF, len));
}

export { observeTime } from "./least-time";
export { huffDecode } from "./huffman";
// The L4 packet director (wasm/assembly/director*.ts, conntrack.ts).
export { directorInit, vsRebuild, processBatch, directorTick, ctDelete } from "./director";
// Connection sync between directors (wasm/assembly/director-sync.ts).
export { syncInit, syncExport, syncImport } from "./director-sync";
// Per-client rate and connection limits (wasm/assembly/limits.ts).
export { rateAdmit, connAdmit, connRelease } from "./limits";
// Longest-prefix match for access rules (allow/deny by CIDR).
export { lpm4, lpm6 } from "./lpm";
