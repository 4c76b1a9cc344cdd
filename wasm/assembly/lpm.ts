// Longest-prefix match over a table src/core/lpm.ts built (layout: LPM_* in layout.ts): the index
// narrows the search to the intervals starting in the address's top-bits slot, then a binary search
// finds the last interval starting at or below the address; its value is the longest prefix's.
// Bounded: at most log2(intervals) + 1 probes. TS twin: src/core/twin/lpm.ts.
import { LPM_SHIFT, LPM_STARTS, LPM_VALUES, LPM_INDEX } from "./layout";

// The value of the longest prefix holding the IPv4 address (its 32 bits as an i32), 0 for none.
export function lpm4(t: u32, address: i32): u32 {
  const a = <u32>address;
  const slot = a >>> load<u32>(t + LPM_SHIFT);
  let lo = load<u32>(t + LPM_INDEX + (slot << 2));
  let hi = load<u32>(t + LPM_INDEX + ((slot + 1) << 2));
  const starts = t + load<u32>(t + LPM_STARTS);
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (load<u32>(starts + (mid << 2)) <= a) lo = mid;
    else hi = mid - 1;
  }
  return load<u32>(t + load<u32>(t + LPM_VALUES) + (lo << 2));
}

// Whether the 128-bit start at p is at or below (a, b, c, d), most significant word first.
@inline function startAtOrBelow(p: u32, a: u32, b: u32, c: u32, d: u32): bool {
  let x = load<u32>(p);
  if (x != a) return x < a;
  x = load<u32>(p, 4);
  if (x != b) return x < b;
  x = load<u32>(p, 8);
  if (x != c) return x < c;
  return load<u32>(p, 12) <= d;
}

// The same for an IPv6 address given as four i32 words, most significant first.
export function lpm6(t: u32, w0: i32, w1: i32, w2: i32, w3: i32): u32 {
  const a = <u32>w0, b = <u32>w1, c = <u32>w2, d = <u32>w3;
  const slot = a >>> load<u32>(t + LPM_SHIFT);
  let lo = load<u32>(t + LPM_INDEX + (slot << 2));
  let hi = load<u32>(t + LPM_INDEX + ((slot + 1) << 2));
  const starts = t + load<u32>(t + LPM_STARTS);
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (startAtOrBelow(starts + (mid << 4), a, b, c, d)) lo = mid;
    else hi = mid - 1;
  }
  return load<u32>(t + load<u32>(t + LPM_VALUES) + (lo << 2));
}
