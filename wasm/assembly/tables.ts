// Table-driven schedulers: the control plane calls rebuild() when membership, state or weight
// changes; a pick is then a lookup. Tables hold only the tier in service at build time
// (primaries, or backups when no primary is available).
import {
  S_EFFW, S_ID, S_ACTIVE, S_GATE, S_FLAGS, P_BASE, P_COUNT, P_TABLE, P_TABLELEN, P_TABLECAP, P_SCRATCH,
  HASH_BUCKETS, LB_BUCKETS, LB_ENTRY_WORDS, LB_SET_MAX, KETAMA_POINTS, KETAMA_PROBES,
  MAGLEV_PROBES, FLAG_BACKUP, SCHED_DH, SCRATCH_WORDS,
} from "./layout";
import { sget, pget, pset, usable, reduce } from "./mem";
import { fmix32 } from "./hash";
import { pickByRatio } from "./dynamic";

// Collects the slots of the tier in service into scratch word 0; returns how many.
function collectTier(p: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p), scratch = pget(P_SCRATCH, p);
  for (let tier = 0; tier <= FLAG_BACKUP; tier += FLAG_BACKUP) {
    let k = 0;
    for (let i = base; i < base + n; i++) {
      if (sget(S_GATE, i) == tier) { store<i32>(scratch + k * (SCRATCH_WORDS << 2), i); k++; }
    }
    if (k > 0) return k;
  }
  return 0;
}

// For dh and sh: the tier in service's servers with a weight, up or not. A down or full server
// keeps its buckets and pickBucket falls through to the next bucket (sh-fallback), so a server
// going down or coming back moves only its own keys.
function collectDealt(p: i32): i32 {
  const base = pget(P_BASE, p), n = pget(P_COUNT, p), scratch = pget(P_SCRATCH, p);
  let tier = -1;
  for (let i = base; i < base + n; i++) {
    const g = sget(S_GATE, i);
    if (g >= 0 && (tier < 0 || g < tier)) tier = g;
  }
  if (tier < 0) return 0;
  let k = 0;
  for (let i = base; i < base + n; i++) {
    if ((sget(S_FLAGS, i) & FLAG_BACKUP) == tier && sget(S_EFFW, i) > 0) {
      store<i32>(scratch + k * (SCRATCH_WORDS << 2), i); k++;
    }
  }
  return k;
}

@inline function scratchWord(p: i32, k: i32, w: i32): i32 {
  return pget(P_SCRATCH, p) + ((k * SCRATCH_WORDS + w) << 2);
}

// dh and sh: HASH_BUCKETS buckets dealt out by smooth wrr over the servers' weights (sh) or one
// by one (dh), so every server holds buckets in proportion and interleaved.
export function buildBuckets(p: i32, sched: i32): void {
  const table = pget(P_TABLE, p), n = collectDealt(p);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const w = sched == SCHED_DH ? 1 : sget(S_EFFW, load<i32>(scratchWord(p, k, 0)));
    store<i32>(scratchWord(p, k, 1), w);
    store<i32>(scratchWord(p, k, 2), 0);
    total += w;
  }
  for (let b = 0; b < HASH_BUCKETS; b++) {
    let best = -1, bestCw = 0;
    for (let k = 0; k < n; k++) {
      const cw = load<i32>(scratchWord(p, k, 2)) + load<i32>(scratchWord(p, k, 1));
      store<i32>(scratchWord(p, k, 2), cw);
      if (best < 0 || cw > bestCw) { best = k; bestCw = cw; }
    }
    if (best < 0) { store<i32>(table + (b << 2), -1); continue; }
    store<i32>(scratchWord(p, best, 2), bestCw - total);
    store<i32>(table + (b << 2), load<i32>(scratchWord(p, best, 0)));
  }
  pset(P_TABLELEN, p, HASH_BUCKETS);
}

// The key's bucket; if its server cannot take the session, the next buckets (LVS sh-fallback).
export function pickBucket(p: i32, key: u32): i32 {
  const table = pget(P_TABLE, p);
  const b = <i32>(key & (HASH_BUCKETS - 1));
  for (let k = 0; k < HASH_BUCKETS; k++) {
    const i = load<i32>(table + (((b + k) & (HASH_BUCKETS - 1)) << 2));
    if (i >= 0 && usable(i)) return i;
  }
  return -1;
}

// Maglev (Eisenbud et al. 2016) with weights: in round r a server places
// floor((r+1)w/wmax) - floor(r w/wmax) entries, so its share of the M entries follows its weight.
// That count is 1 exactly when (r w mod wmax) + w reaches wmax, so an accumulator per server
// (scratch word 4) replaces the divisions.
export function buildMaglev(p: i32): void {
  const table = pget(P_TABLE, p), m = pget(P_TABLECAP, p), n = collectTier(p);
  memory.fill(table, 0xff, m << 2); // every entry -1
  pset(P_TABLELEN, p, m);
  if (n == 0) return;
  let wmax = 0;
  for (let k = 0; k < n; k++) {
    const i = load<i32>(scratchWord(p, k, 0));
    const id = <u32>sget(S_ID, i);
    store<i32>(scratchWord(p, k, 1), <i32>(fmix32(id ^ 0x5bd1e995) % <u32>m)); // position
    store<i32>(scratchWord(p, k, 2), <i32>(fmix32(id ^ 0x27d4eb2f) % <u32>(m - 1)) + 1); // skip
    const w = sget(S_EFFW, i);
    store<i32>(scratchWord(p, k, 3), w);
    store<i32>(scratchWord(p, k, 4), 0);
    if (w > wmax) wmax = w;
  }
  let filled = 0;
  for (;;) {
    for (let k = 0; k < n; k++) {
      const acc = load<i32>(scratchWord(p, k, 4)) + load<i32>(scratchWord(p, k, 3));
      if (acc < wmax) { store<i32>(scratchWord(p, k, 4), acc); continue; }
      store<i32>(scratchWord(p, k, 4), acc - wmax);
      let pos = load<i32>(scratchWord(p, k, 1));
      const skip = load<i32>(scratchWord(p, k, 2));
      while (load<i32>(table + (pos << 2)) >= 0) { pos += skip; if (pos >= m) pos -= m; }
      store<i32>(table + (pos << 2), load<i32>(scratchWord(p, k, 0)));
      pos += skip; if (pos >= m) pos -= m;
      store<i32>(scratchWord(p, k, 1), pos);
      if (++filled == m) return;
    }
  }
}

export function pickMaglev(p: i32, key: u32): i32 {
  const table = pget(P_TABLE, p), m = pget(P_TABLELEN, p);
  if (m == 0) return -1;
  let e = reduce(key, m);
  for (let k = 0; k < MAGLEV_PROBES; k++) {
    const i = load<i32>(table + (e << 2));
    if (i >= 0 && usable(i)) return i;
    if (++e == m) e = 0;
  }
  return -1;
}

// Ketama ring as nginx `hash … consistent`: KETAMA_POINTS points per unit of weight, stored as
// u64 (hash << 32 | slot) and kept sorted.
@inline export function ketamaPoint(id: u32, j: i32): u32 {
  return fmix32(id ^ fmix32(<u32>(j + 1) * 0x9e3779b1));
}

export function buildKetama(p: i32): void {
  const table = pget(P_TABLE, p), cap = pget(P_TABLECAP, p), n = collectTier(p);
  let len = 0;
  for (let k = 0; k < n && len < cap; k++) {
    const i = load<i32>(scratchWord(p, k, 0));
    const id = <u32>sget(S_ID, i), pts = KETAMA_POINTS * sget(S_EFFW, i);
    for (let j = 0; j < pts && len < cap; j++) {
      store<u64>(table + (len << 3), ((<u64>ketamaPoint(id, j)) << 32) | <u64>(<u32>i));
      len++;
    }
  }
  heapSortU64(table, len);
  pset(P_TABLELEN, p, len);
}

function siftDown(a: i32, start: i32, end: i32): void {
  let root = start;
  for (;;) {
    let child = 2 * root + 1;
    if (child >= end) return;
    if (child + 1 < end && load<u64>(a + ((child + 1) << 3)) > load<u64>(a + (child << 3))) child++;
    const r = load<u64>(a + (root << 3)), c = load<u64>(a + (child << 3));
    if (r >= c) return;
    store<u64>(a + (root << 3), c);
    store<u64>(a + (child << 3), r);
    root = child;
  }
}

function heapSortU64(a: i32, n: i32): void {
  for (let s = (n >> 1) - 1; s >= 0; s--) siftDown(a, s, n);
  for (let end = n - 1; end > 0; end--) {
    const t = load<u64>(a);
    store<u64>(a, load<u64>(a + (end << 3)));
    store<u64>(a + (end << 3), t);
    siftDown(a, 0, end);
  }
}

export function pickKetama(p: i32, key: u32): i32 {
  const table = pget(P_TABLE, p), n = pget(P_TABLELEN, p);
  if (n == 0) return -1;
  let lo = 0, hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (<u32>(load<u64>(table + (mid << 3)) >> 32) < key) lo = mid + 1; else hi = mid;
  }
  if (lo == n) lo = 0;
  const tries = n < KETAMA_PROBES ? n : KETAMA_PROBES;
  for (let k = 0; k < tries; k++) {
    const i = <i32>load<u32>(table + (lo << 3));
    if (usable(i)) return i;
    if (++lo == n) lo = 0;
  }
  return -1;
}

// LVS lblc / lblcr: a direct-mapped cache key -> server (set). An entry whose key differs is a
// miss and is overwritten, so the table stays bounded without timers.
@inline function lbEntry(p: i32, key: u32): i32 {
  return pget(P_TABLE, p) + <i32>(key & (LB_BUCKETS - 1)) * (LB_ENTRY_WORDS << 2);
}

// LVS: a server is overloaded when it has more active than its weight and some other server
// in the pool is below half its weight.
function overloaded(p: i32, d: i32): bool {
  if (sget(S_ACTIVE, d) <= sget(S_EFFW, d)) return false;
  const base = pget(P_BASE, p), n = pget(P_COUNT, p);
  for (let i = base; i < base + n; i++) {
    if (usable(i) && sget(S_ACTIVE, i) * 2 < sget(S_EFFW, i)) return true;
  }
  return false;
}

function wlcAnyTier(p: i32): i32 {
  const d = pickByRatio(p, 0, 0);
  return d >= 0 ? d : pickByRatio(p, FLAG_BACKUP, 0);
}

export function pickLblc(p: i32, key: u32): i32 {
  const e = lbEntry(p, key);
  if (load<i32>(e + 4) > 0 && load<u32>(e) == key) {
    const d = load<i32>(e + 8);
    if (usable(d) && !overloaded(p, d)) return d;
  }
  const d = wlcAnyTier(p);
  if (d < 0) return -1;
  store<u32>(e, key); store<i32>(e + 4, 1); store<i32>(e + 8, d);
  return d;
}

export function pickLblcr(p: i32, key: u32): i32 {
  const e = lbEntry(p, key);
  if (load<i32>(e + 4) == 0 || load<u32>(e) != key) {
    const d = wlcAnyTier(p);
    if (d < 0) return -1;
    store<u32>(e, key); store<i32>(e + 4, 1); store<i32>(e + 8, d);
    return d;
  }
  // Least loaded (active/weight) usable member of the set, and the most loaded member.
  const n = load<i32>(e + 4);
  let least = -1, most = 0;
  for (let k = 0; k < n; k++) {
    const d = load<i32>(e + 8 + (k << 2));
    if (usable(d) && (least < 0 || lessLoaded(d, least))) least = d;
    if (k > 0 && lessLoaded(load<i32>(e + 8 + (most << 2)), d)) most = k;
  }
  if (least >= 0 && !overloaded(p, least)) return least;
  const d = wlcAnyTier(p);
  if (d < 0) return least;
  for (let k = 0; k < n; k++) if (load<i32>(e + 8 + (k << 2)) == d) return d;
  if (n < LB_SET_MAX) { store<i32>(e + 8 + (n << 2), d); store<i32>(e + 4, n + 1); }
  else store<i32>(e + 8 + (most << 2), d); // the set is full: the busiest member makes room
  return d;
}

@inline function lessLoaded(a: i32, b: i32): bool {
  return <i64>sget(S_ACTIVE, a) * <i64>sget(S_EFFW, b) < <i64>sget(S_ACTIVE, b) * <i64>sget(S_EFFW, a);
}
