// TS twin of wasm/assembly/tables.ts. Tables live in the same memory layout, so a table built by
// either side can be read by the other.
import {
  S_EFFW, S_ID, S_ACTIVE, S_GATE, S_FLAGS, P_BASE, P_COUNT, P_TABLE, P_TABLELEN, P_TABLECAP, P_SCRATCH,
  HASH_BUCKETS, LB_BUCKETS, LB_ENTRY_WORDS, LB_SET_MAX, KETAMA_POINTS, KETAMA_PROBES,
  MAGLEV_PROBES, FLAG_BACKUP, SCHED_DH, SCRATCH_WORDS,
} from "../layout.ts";
import { sget, pget, pset, usable, reduce } from "./mem.ts";
import { fmix32 } from "../hash.ts";
import { pickByRatio } from "./dynamic.ts";

// Word index of scratch word w of entry k.
const scratchWord = (m: Int32Array, p: number, k: number, w: number) =>
  (pget(m, P_SCRATCH, p) >> 2) + k * SCRATCH_WORDS + w;

function collectTier(m: Int32Array, p: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  for (let tier = 0; tier <= FLAG_BACKUP; tier += FLAG_BACKUP) {
    let k = 0;
    for (let i = base; i < base + n; i++) {
      if (sget(m, S_GATE, i) === tier) { m[scratchWord(m, p, k, 0)] = i; k++; }
    }
    if (k > 0) return k;
  }
  return 0;
}

function collectDealt(m: Int32Array, p: number): number {
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  let tier = -1;
  for (let i = base; i < base + n; i++) {
    const g = sget(m, S_GATE, i);
    if (g >= 0 && (tier < 0 || g < tier)) tier = g;
  }
  if (tier < 0) return 0;
  let k = 0;
  for (let i = base; i < base + n; i++) {
    if ((sget(m, S_FLAGS, i) & FLAG_BACKUP) === tier && sget(m, S_EFFW, i) > 0) { m[scratchWord(m, p, k, 0)] = i; k++; }
  }
  return k;
}

export function buildBuckets(m: Int32Array, p: number, sched: number): void {
  const table = pget(m, P_TABLE, p) >> 2, n = collectDealt(m, p);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const w = sched === SCHED_DH ? 1 : sget(m, S_EFFW, m[scratchWord(m, p, k, 0)]);
    m[scratchWord(m, p, k, 1)] = w;
    m[scratchWord(m, p, k, 2)] = 0;
    total += w;
  }
  for (let b = 0; b < HASH_BUCKETS; b++) {
    let best = -1, bestCw = 0;
    for (let k = 0; k < n; k++) {
      const cw = m[scratchWord(m, p, k, 2)] + m[scratchWord(m, p, k, 1)];
      m[scratchWord(m, p, k, 2)] = cw;
      if (best < 0 || cw > bestCw) { best = k; bestCw = cw; }
    }
    if (best < 0) { m[table + b] = -1; continue; }
    m[scratchWord(m, p, best, 2)] = bestCw - total;
    m[table + b] = m[scratchWord(m, p, best, 0)];
  }
  pset(m, P_TABLELEN, p, HASH_BUCKETS);
}

export function pickBucket(m: Int32Array, p: number, key: number): number {
  const table = pget(m, P_TABLE, p) >> 2;
  const b = key & (HASH_BUCKETS - 1);
  for (let k = 0; k < HASH_BUCKETS; k++) {
    const i = m[table + ((b + k) & (HASH_BUCKETS - 1))];
    if (i >= 0 && usable(m, i)) return i;
  }
  return -1;
}

export function buildMaglev(m: Int32Array, p: number): void {
  const table = pget(m, P_TABLE, p) >> 2, size = pget(m, P_TABLECAP, p), n = collectTier(m, p);
  m.fill(-1, table, table + size);
  pset(m, P_TABLELEN, p, size);
  if (n === 0) return;
  let wmax = 0;
  for (let k = 0; k < n; k++) {
    const i = m[scratchWord(m, p, k, 0)];
    const id = sget(m, S_ID, i);
    m[scratchWord(m, p, k, 1)] = fmix32(id ^ 0x5bd1e995) % size;
    m[scratchWord(m, p, k, 2)] = (fmix32(id ^ 0x27d4eb2f) % (size - 1)) + 1;
    const w = sget(m, S_EFFW, i);
    m[scratchWord(m, p, k, 3)] = w;
    m[scratchWord(m, p, k, 4)] = 0;
    if (w > wmax) wmax = w;
  }
  let filled = 0;
  for (;;) {
    for (let k = 0; k < n; k++) {
      const acc = m[scratchWord(m, p, k, 4)] + m[scratchWord(m, p, k, 3)];
      if (acc < wmax) { m[scratchWord(m, p, k, 4)] = acc; continue; }
      m[scratchWord(m, p, k, 4)] = acc - wmax;
      let pos = m[scratchWord(m, p, k, 1)];
      const skip = m[scratchWord(m, p, k, 2)];
      while (m[table + pos] >= 0) { pos += skip; if (pos >= size) pos -= size; }
      m[table + pos] = m[scratchWord(m, p, k, 0)];
      pos += skip; if (pos >= size) pos -= size;
      m[scratchWord(m, p, k, 1)] = pos;
      if (++filled === size) return;
    }
  }
}

export function pickMaglev(m: Int32Array, p: number, key: number): number {
  const table = pget(m, P_TABLE, p) >> 2, size = pget(m, P_TABLELEN, p);
  if (size === 0) return -1;
  let e = reduce(key, size);
  for (let k = 0; k < MAGLEV_PROBES; k++) {
    const i = m[table + e];
    if (i >= 0 && usable(m, i)) return i;
    if (++e === size) e = 0;
  }
  return -1;
}

export function ketamaPoint(id: number, j: number): number {
  return fmix32(id ^ fmix32(Math.imul(j + 1, 0x9e3779b1)));
}

// Entries are u64 (hash << 32 | slot), little-endian: word 2k is the slot, 2k+1 the hash.
export function buildKetama(m: Int32Array, p: number): void {
  const table = pget(m, P_TABLE, p) >> 2, cap = pget(m, P_TABLECAP, p), n = collectTier(m, p);
  const hashes: number[] = [], slots: number[] = [];
  for (let k = 0; k < n && hashes.length < cap; k++) {
    const i = m[scratchWord(m, p, k, 0)];
    const id = sget(m, S_ID, i), pts = KETAMA_POINTS * sget(m, S_EFFW, i);
    for (let j = 0; j < pts && hashes.length < cap; j++) { hashes.push(ketamaPoint(id, j)); slots.push(i); }
  }
  const order = hashes.map((_, k) => k).sort((a, b) => hashes[a] - hashes[b] || slots[a] - slots[b]);
  order.forEach((k, at) => { m[table + 2 * at] = slots[k]; m[table + 2 * at + 1] = hashes[k]; });
  pset(m, P_TABLELEN, p, order.length);
}

export function pickKetama(m: Int32Array, p: number, key: number): number {
  const table = pget(m, P_TABLE, p) >> 2, n = pget(m, P_TABLELEN, p);
  if (n === 0) return -1;
  key >>>= 0;
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (m[table + 2 * mid + 1] >>> 0 < key) lo = mid + 1; else hi = mid;
  }
  if (lo === n) lo = 0;
  const tries = n < KETAMA_PROBES ? n : KETAMA_PROBES;
  for (let k = 0; k < tries; k++) {
    const i = m[table + 2 * lo];
    if (usable(m, i)) return i;
    if (++lo === n) lo = 0;
  }
  return -1;
}

const lbEntry = (m: Int32Array, p: number, key: number) =>
  (pget(m, P_TABLE, p) >> 2) + (key & (LB_BUCKETS - 1)) * LB_ENTRY_WORDS;

function overloaded(m: Int32Array, p: number, d: number): boolean {
  if (sget(m, S_ACTIVE, d) <= sget(m, S_EFFW, d)) return false;
  const base = pget(m, P_BASE, p), n = pget(m, P_COUNT, p);
  for (let i = base; i < base + n; i++) {
    if (usable(m, i) && sget(m, S_ACTIVE, i) * 2 < sget(m, S_EFFW, i)) return true;
  }
  return false;
}

function wlcAnyTier(m: Int32Array, p: number): number {
  const d = pickByRatio(m, p, 0, 0);
  return d >= 0 ? d : pickByRatio(m, p, FLAG_BACKUP, 0);
}

const lessLoaded = (m: Int32Array, a: number, b: number) =>
  sget(m, S_ACTIVE, a) * sget(m, S_EFFW, b) < sget(m, S_ACTIVE, b) * sget(m, S_EFFW, a);

export function pickLblc(m: Int32Array, p: number, key: number): number {
  const e = lbEntry(m, p, key);
  if (m[e + 1] > 0 && m[e] === (key | 0)) {
    const d = m[e + 2];
    if (usable(m, d) && !overloaded(m, p, d)) return d;
  }
  const d = wlcAnyTier(m, p);
  if (d < 0) return -1;
  m[e] = key; m[e + 1] = 1; m[e + 2] = d;
  return d;
}

export function pickLblcr(m: Int32Array, p: number, key: number): number {
  const e = lbEntry(m, p, key);
  if (m[e + 1] === 0 || m[e] !== (key | 0)) {
    const d = wlcAnyTier(m, p);
    if (d < 0) return -1;
    m[e] = key; m[e + 1] = 1; m[e + 2] = d;
    return d;
  }
  const n = m[e + 1];
  let least = -1, most = 0;
  for (let k = 0; k < n; k++) {
    const d = m[e + 2 + k];
    if (usable(m, d) && (least < 0 || lessLoaded(m, d, least))) least = d;
    if (k > 0 && lessLoaded(m, m[e + 2 + most], d)) most = k;
  }
  if (least >= 0 && !overloaded(m, p, least)) return least;
  const d = wlcAnyTier(m, p);
  if (d < 0) return least;
  for (let k = 0; k < n; k++) if (m[e + 2 + k] === d) return d;
  if (n < LB_SET_MAX) { m[e + 2 + n] = d; m[e + 1] = n + 1; }
  else m[e + 2 + most] = d;
  return d;
}
