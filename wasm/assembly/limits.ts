// Per-client limits over fixed-capacity tables (HAProxy's stick tables): a rate limit keeps
// nginx limit_req's excess per key (rate and burst, nodelay: past the burst a request is refused
// at once), a conn limit a count of requests in flight per key (nginx limit_conn). The caller
// writes the key's bytes at KEYBUF_OFF; one call hashes, looks up and decides.
import {
  KEYBUF_OFF, LT_HEADER, LT_SETS, LT_LIMIT, LT_BURST, LT_USED, LT_EVICTED, LT_REJECTED, LT_FULL, LT_RECLAIMED,
  LT_HASH_KEY, LT_WAYS, LE_SIZE, LE_KEY0, LE_KEY1, LE_SEEN, LE_VALUE, LIMIT_FULL, LIMIT_OVER,
} from "./layout";
import { halfSipHash64, hashHigh } from "./hash";
import { reduce } from "./mem";

@inline function bump(t: i32, field: i32): void {
  store<u32>(t + field, load<u32>(t + field) + 1);
}

// Milliseconds since an entry's time; a negative difference is a clock that wrapped past it
// (over 24 days idle): as good as forever.
@inline function age(now: i32, seen: i32): i32 {
  const d = now - seen;
  return d < 0 ? 0x7fffffff : d;
}

// nginx's excess for the key's next request: the stored one, drained for `ms` at `rate`
// milli-requests per second, plus this request's 1000, at least 0. 0 means a new key's state:
// the entry holds nothing worth keeping. In f64 (exact enough; the TS twin does the same IEEE
// operations).
@inline function nextExcess(excess: i32, ms: i32, rate: u32): i32 {
  const v = <f64>(excess + 1000) - Math.floor(<f64>ms * <f64>rate / 1000.0);
  return v <= 0 ? 0 : <i32>v;
}

// A key may sit in either of two sets (two-choice hashing: a table fills to ~95% before a set
// overflows, against ~80% with one choice); its hash words are left in key0/key1 and the sets'
// first entries in setA/setB (equal when both choices fall on one set).
let key0: u32 = 0, key1: u32 = 0, setA: i32 = 0, setB: i32 = 0;
@inline function locate(t: i32, len: i32): void {
  key0 = halfSipHash64(KEYBUF_OFF, len, t + LT_HASH_KEY);
  key1 = hashHigh;
  if ((key0 | key1) == 0) key1 = 1; // 0/0 marks an empty entry
  const sets = load<i32>(t + LT_SETS), first = t + LT_HEADER;
  setA = first + reduce(key1, sets) * (LT_WAYS * LE_SIZE);
  setB = first + reduce(key0, sets) * (LT_WAYS * LE_SIZE);
}

// The w-th entry of the key's window (0..LT_WAYS-1 in set A, then set B); -1 past its end.
@inline function windowEntry(w: i32): i32 {
  if (w < LT_WAYS) return setA + w * LE_SIZE;
  return setB == setA ? -1 : setB + (w - LT_WAYS) * LE_SIZE;
}

@inline function claim(e: i32, now: i32): void {
  store<u32>(e + LE_KEY0, key0);
  store<u32>(e + LE_KEY1, key1);
  store<i32>(e + LE_SEEN, now);
  store<i32>(e + LE_VALUE, 0);
}

// One request of the key in KEYBUF_OFF[0, len) at `now` (ms) against rate table t: 0 when it is
// admitted, else the milliseconds until one would be. A new key takes an empty entry of the
// emptier of its two sets, else the entry of its window whose next request would have the least
// excess (one at 0 is as good as new: reclaimed at no loss; otherwise it is an eviction, ties to
// the oldest).
export function rateAdmit(t: i32, len: i32, now: i32): i32 {
  locate(t, len);
  const rate = load<u32>(t + LT_LIMIT), burst = load<i32>(t + LT_BURST);
  let freeA = -1, freeB = -1, emptyA = 0, emptyB = 0;
  let victim = -1, victimExcess = 0x7fffffff, victimAge = -1;
  for (let w = 0; w < 2 * LT_WAYS; w++) {
    const e = windowEntry(w);
    if (e < 0) break;
    const k0 = load<u32>(e + LE_KEY0), k1 = load<u32>(e + LE_KEY1);
    if (k0 == key0 && k1 == key1) {
      const excess = nextExcess(load<i32>(e + LE_VALUE), age(now, load<i32>(e + LE_SEEN)), rate);
      if (excess > burst) {
        // Refused: the entry keeps its time, so a flood cannot stall its own draining.
        bump(t, LT_REJECTED);
        return <i32>Math.ceil(<f64>(excess - burst) * 1000.0 / <f64>rate);
      }
      store<i32>(e + LE_SEEN, now);
      store<i32>(e + LE_VALUE, excess);
      return 0;
    }
    if ((k0 | k1) == 0) {
      if (w < LT_WAYS) { emptyA++; if (freeA < 0) freeA = e; } else { emptyB++; if (freeB < 0) freeB = e; }
      continue;
    }
    const a = age(now, load<i32>(e + LE_SEEN));
    const left = nextExcess(load<i32>(e + LE_VALUE), a, rate);
    if (left < victimExcess || (left == victimExcess && a > victimAge)) { victim = e; victimExcess = left; victimAge = a; }
  }
  const free = emptyB > emptyA ? freeB : freeA >= 0 ? freeA : freeB;
  if (free >= 0) { bump(t, LT_USED); claim(free, now); return 0; }
  bump(t, victimExcess == 0 ? LT_RECLAIMED : LT_EVICTED);
  claim(victim, now);
  return 0;
}

// One more request in flight for the key at `now` against conn table t: the entry's offset (pass
// it to connRelease when the request ends), LIMIT_OVER at the limit, LIMIT_FULL when the key is
// new and every entry of its window has requests in flight (those are never evicted). An entry
// whose count falls to 0 is emptied at once, so nothing else is kept.
export function connAdmit(t: i32, len: i32, now: i32): i32 {
  locate(t, len);
  let freeA = -1, freeB = -1, emptyA = 0, emptyB = 0;
  for (let w = 0; w < 2 * LT_WAYS; w++) {
    const e = windowEntry(w);
    if (e < 0) break;
    const k0 = load<u32>(e + LE_KEY0), k1 = load<u32>(e + LE_KEY1);
    if (k0 == key0 && k1 == key1) {
      const n = load<i32>(e + LE_VALUE);
      if (n >= load<i32>(t + LT_LIMIT)) { bump(t, LT_REJECTED); return LIMIT_OVER; }
      store<i32>(e + LE_VALUE, n + 1);
      store<i32>(e + LE_SEEN, now);
      return e;
    }
    if ((k0 | k1) == 0) {
      if (w < LT_WAYS) { emptyA++; if (freeA < 0) freeA = e; } else { emptyB++; if (freeB < 0) freeB = e; }
    }
  }
  const free = emptyB > emptyA ? freeB : freeA >= 0 ? freeA : freeB;
  if (free < 0) { bump(t, LT_FULL); return LIMIT_FULL; }
  bump(t, LT_USED);
  claim(free, now);
  store<i32>(free + LE_VALUE, 1);
  return free;
}

// A request connAdmit admitted (entry e of table t) ended.
export function connRelease(t: i32, e: i32): void {
  const n = load<i32>(e + LE_VALUE) - 1;
  if (n > 0) { store<i32>(e + LE_VALUE, n); return; }
  store<u64>(e + LE_KEY0, 0);
  store<u64>(e + LE_SEEN, 0);
  store<u32>(t + LT_USED, load<u32>(t + LT_USED) - 1);
}
