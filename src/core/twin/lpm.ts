// TS twin of wasm/assembly/lpm.ts: the same lookups over a Uint32Array of the whole memory.
import { LPM_SHIFT, LPM_STARTS, LPM_VALUES, LPM_INDEX } from "../layout.ts";

/** The value of the longest prefix holding the IPv4 address (its 32 bits, signed or not), 0 for none. */
export function lpm4(m: Uint32Array, t: number, address: number): number {
  const a = address >>> 0, w = t >>> 2;
  const slot = a >>> m[w + (LPM_SHIFT >> 2)];
  let lo = m[w + (LPM_INDEX >> 2) + slot];
  let hi = m[w + (LPM_INDEX >> 2) + slot + 1];
  const starts = w + (m[w + (LPM_STARTS >> 2)] >>> 2);
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (m[starts + mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  return m[w + (m[w + (LPM_VALUES >> 2)] >>> 2) + lo];
}

function startAtOrBelow(m: Uint32Array, p: number, a: number, b: number, c: number, d: number): boolean {
  let x = m[p];
  if (x !== a) return x < a;
  x = m[p + 1];
  if (x !== b) return x < b;
  x = m[p + 2];
  if (x !== c) return x < c;
  return m[p + 3] <= d;
}

/** The same for an IPv6 address as four 32-bit words, most significant first. */
export function lpm6(m: Uint32Array, t: number, w0: number, w1: number, w2: number, w3: number): number {
  const a = w0 >>> 0, b = w1 >>> 0, c = w2 >>> 0, d = w3 >>> 0, w = t >>> 2;
  const slot = a >>> m[w + (LPM_SHIFT >> 2)];
  let lo = m[w + (LPM_INDEX >> 2) + slot];
  let hi = m[w + (LPM_INDEX >> 2) + slot + 1];
  const starts = w + (m[w + (LPM_STARTS >> 2)] >>> 2);
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (startAtOrBelow(m, starts + mid * 4, a, b, c, d)) lo = mid;
    else hi = mid - 1;
  }
  return m[w + (m[w + (LPM_VALUES >> 2)] >>> 2) + lo];
}
