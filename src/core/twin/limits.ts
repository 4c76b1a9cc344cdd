// TS twin of wasm/assembly/limits.ts: the same tables, decisions and counters over a given memory.
import {
  KEYBUF_OFF, KEYBUF_SIZE, LT_HASH_KEY, LT_HEADER, LT_SETS, LT_LIMIT, LT_BURST, LT_USED,
  LT_EVICTED, LT_REJECTED, LT_FULL, LT_RECLAIMED, LT_WAYS, LE_SIZE, LE_KEY0, LE_KEY1, LE_SEEN, LE_VALUE, LIMIT_FULL,
  LIMIT_OVER,
} from "../layout.ts";
import { halfSipHash64Bytes } from "../hash.ts";
import { reduce } from "./mem.ts";

/** The limit kernels: the WASM module's exports, or these twins (same signatures). */
export interface LimitKernels {
  /** 0: admitted; else milliseconds until the key's next request would be. */
  rateAdmit(t: number, len: number, now: number): number;
  /** The entry's offset (for connRelease), LIMIT_OVER or LIMIT_FULL. */
  connAdmit(t: number, len: number, now: number): number;
  connRelease(t: number, e: number): void;
}

const age = (now: number, seen: number): number => {
  const d = (now - seen) | 0;
  return d < 0 ? 0x7fffffff : d;
};

const nextExcess = (excess: number, ms: number, rate: number): number => {
  const v = (excess + 1000) - Math.floor(ms * rate / 1000);
  return v <= 0 ? 0 : v;
};

/** `keyMemory`: where the key buffer is (KEYBUF_OFF), when the tables are in other memory (shared
 * by processes) than the data plane's. */
export function limitTwin(memory: ArrayBuffer, keyMemory: ArrayBuffer = memory): LimitKernels {
  const m = new Int32Array(memory), keyBytes = new Uint8Array(keyMemory, KEYBUF_OFF, KEYBUF_SIZE);
  const hash = new Int32Array(2);
  const STEP = LE_SIZE >> 2, K0 = LE_KEY0 >> 2, K1 = LE_KEY1 >> 2, SEEN = LE_SEEN >> 2, VALUE = LE_VALUE >> 2;
  const SET_WORDS = (LT_WAYS * LE_SIZE) >> 2;
  let setA = 0, setB = 0;
  const bump = (t: number, field: number) => { m[(t + field) >> 2] = (m[(t + field) >> 2] + 1) | 0; };
  // The key's hash words into `hash`, its two sets' first entries (word indices) into setA/setB.
  const locate = (t: number, len: number): void => {
    halfSipHash64Bytes(keyBytes, len, m[(t + LT_HASH_KEY) >> 2], m[(t + LT_HASH_KEY + 4) >> 2], hash);
    if ((hash[0] | hash[1]) === 0) hash[1] = 1;
    const sets = m[(t + LT_SETS) >> 2], first = (t + LT_HEADER) >> 2;
    setA = first + reduce(hash[1], sets) * SET_WORDS;
    setB = first + reduce(hash[0], sets) * SET_WORDS;
  };
  const windowEntry = (w: number): number => {
    if (w < LT_WAYS) return setA + w * STEP;
    return setB === setA ? -1 : setB + (w - LT_WAYS) * STEP;
  };
  const claim = (w: number, now: number) => {
    m[w + K0] = hash[0];
    m[w + K1] = hash[1];
    m[w + SEEN] = now;
    m[w + VALUE] = 0;
  };
  return {
    rateAdmit(t, len, now) {
      locate(t, len);
      const h0 = hash[0], h1 = hash[1];
      const rate = m[(t + LT_LIMIT) >> 2] >>> 0, burst = m[(t + LT_BURST) >> 2];
      let freeA = -1, freeB = -1, emptyA = 0, emptyB = 0;
      let victim = -1, victimExcess = 0x7fffffff, victimAge = -1;
      for (let w = 0; w < 2 * LT_WAYS; w++) {
        const e = windowEntry(w);
        if (e < 0) break;
        const k0 = m[e + K0], k1 = m[e + K1];
        if (k0 === h0 && k1 === h1) {
          const excess = nextExcess(m[e + VALUE], age(now, m[e + SEEN]), rate);
          if (excess > burst) {
            bump(t, LT_REJECTED);
            return Math.ceil((excess - burst) * 1000 / rate);
          }
          m[e + SEEN] = now;
          m[e + VALUE] = excess;
          return 0;
        }
        if ((k0 | k1) === 0) {
          if (w < LT_WAYS) { emptyA++; if (freeA < 0) freeA = e; } else { emptyB++; if (freeB < 0) freeB = e; }
          continue;
        }
        const a = age(now, m[e + SEEN]);
        const left = nextExcess(m[e + VALUE], a, rate);
        if (left < victimExcess || (left === victimExcess && a > victimAge)) { victim = e; victimExcess = left; victimAge = a; }
      }
      const free = emptyB > emptyA ? freeB : freeA >= 0 ? freeA : freeB;
      if (free >= 0) { bump(t, LT_USED); claim(free, now); return 0; }
      bump(t, victimExcess === 0 ? LT_RECLAIMED : LT_EVICTED);
      claim(victim, now);
      return 0;
    },
    connAdmit(t, len, now) {
      locate(t, len);
      const h0 = hash[0], h1 = hash[1];
      let freeA = -1, freeB = -1, emptyA = 0, emptyB = 0;
      for (let w = 0; w < 2 * LT_WAYS; w++) {
        const e = windowEntry(w);
        if (e < 0) break;
        const k0 = m[e + K0], k1 = m[e + K1];
        if (k0 === h0 && k1 === h1) {
          const n = m[e + VALUE];
          if (n >= m[(t + LT_LIMIT) >> 2]) { bump(t, LT_REJECTED); return LIMIT_OVER; }
          m[e + VALUE] = n + 1;
          m[e + SEEN] = now;
          return e << 2;
        }
        if ((k0 | k1) === 0) {
          if (w < LT_WAYS) { emptyA++; if (freeA < 0) freeA = e; } else { emptyB++; if (freeB < 0) freeB = e; }
        }
      }
      const free = emptyB > emptyA ? freeB : freeA >= 0 ? freeA : freeB;
      if (free < 0) { bump(t, LT_FULL); return LIMIT_FULL; }
      bump(t, LT_USED);
      claim(free, now);
      m[free + VALUE] = 1;
      return free << 2;
    },
    connRelease(t, e) {
      const w = e >> 2, n = m[w + VALUE] - 1;
      if (n > 0) { m[w + VALUE] = n; return; }
      m[w + K0] = m[w + K1] = m[w + SEEN] = m[w + VALUE] = 0;
      m[(t + LT_USED) >> 2] = (m[(t + LT_USED) >> 2] - 1) | 0;
    },
  };
}
