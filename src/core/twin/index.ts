// TS twin of wasm/assembly/index.ts: the same kernels, same signatures, over a given memory.
import {
  P_SCHED, KEYBUF_OFF, KEYBUF_SIZE, FLAG_BACKUP, GLOBALS_OFF, G_HASH_K0, G_HASH_K1, SCHED_RR, SCHED_WRR,
  SCHED_LC, SCHED_WLC, SCHED_SED, SCHED_NQ, SCHED_DH, SCHED_SH, SCHED_LBLC, SCHED_LBLCR, SCHED_MH,
  SCHED_KETAMA, SCHED_RANDOM, SCHED_TWO, SCHED_FIRST, SCHED_LEAST_TIME,
} from "../layout.ts";
import { pget } from "./mem.ts";
import { halfSipHashBytes } from "../hash.ts";
import { pickRr, pickWrr, pickLc, pickByRatio, pickNq, pickRandom, pickTwo, pickFirst } from "./dynamic.ts";
import { observeTime, pickLeastTime } from "./least-time.ts";
import {
  buildBuckets, pickBucket, buildMaglev, pickMaglev, buildKetama, pickKetama, pickLblc, pickLblcr,
} from "./tables.ts";
import type { Kernels } from "../kernels.ts";

function pickTier(m: Int32Array, p: number, sched: number, tier: number): number {
  switch (sched) {
    case SCHED_RR: return pickRr(m, p, tier);
    case SCHED_WRR: return pickWrr(m, p, tier);
    case SCHED_LC: return pickLc(m, p, tier);
    case SCHED_WLC: return pickByRatio(m, p, tier, 0);
    case SCHED_SED: return pickByRatio(m, p, tier, 1);
    case SCHED_NQ: return pickNq(m, p, tier);
    case SCHED_RANDOM: return pickRandom(m, p, tier);
    case SCHED_TWO: return pickTwo(m, p, tier);
    case SCHED_FIRST: return pickFirst(m, p, tier);
    case SCHED_LEAST_TIME: return pickLeastTime(m, p, tier);
  }
  return -1;
}

export function pick(m: Int32Array, p: number, key: number): number {
  const sched = pget(m, P_SCHED, p);
  switch (sched) {
    case SCHED_DH: case SCHED_SH: return pickBucket(m, p, key);
    case SCHED_MH: return pickMaglev(m, p, key);
    case SCHED_KETAMA: return pickKetama(m, p, key);
    case SCHED_LBLC: return pickLblc(m, p, key);
    case SCHED_LBLCR: return pickLblcr(m, p, key);
  }
  const d = pickTier(m, p, sched, 0);
  return d >= 0 ? d : pickTier(m, p, sched, FLAG_BACKUP);
}

export function rebuild(m: Int32Array, p: number): void {
  const sched = pget(m, P_SCHED, p);
  if (sched === SCHED_DH || sched === SCHED_SH) buildBuckets(m, p, sched);
  else if (sched === SCHED_MH) buildMaglev(m, p);
  else if (sched === SCHED_KETAMA) buildKetama(m, p);
}

/** The twin kernels bound to one memory, with the same shape as the WASM exports. */
export function twinKernels(memory: ArrayBuffer): Kernels {
  const m = new Int32Array(memory), keyBytes = new Uint8Array(memory, KEYBUF_OFF, KEYBUF_SIZE);
  const hashKey = (len: number) =>
    halfSipHashBytes(keyBytes, len, m[(GLOBALS_OFF + G_HASH_K0) >> 2], m[(GLOBALS_OFF + G_HASH_K1) >> 2]);
  return {
    pick: (p, key) => pick(m, p, key),
    pickBatch: (p, keys, out, n) => {
      for (let k = 0; k < n; k++) m[(out >> 2) + k] = pick(m, p, m[(keys >> 2) + k]);
    },
    rebuild: (p) => rebuild(m, p),
    hashKey,
    pickKey: (p, len) => pick(m, p, hashKey(len)),
    observeTime: (p, slot, us) => observeTime(m, p, slot, us),
  };
}
