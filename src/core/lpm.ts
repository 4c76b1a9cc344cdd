// Longest-prefix-match tables (access rules' allow/deny by CIDR): the control plane's half. A
// prefix list is flattened into sorted, disjoint intervals of the address space, each carrying the
// value of the longest prefix that covers it, and written into the data plane's heap with an index
// by the addresses' top bits; lookups run in WASM (wasm/assembly/lpm.ts) or in the TS twin
// (src/core/twin/lpm.ts), over the same memory. 100,000 prefixes make at most 200,001 intervals:
// at most 1.9 MB for IPv4 and 4.3 MB for IPv6 with the index, and at most 18 probes per lookup.
import { LPM_COUNT, LPM_INDEX, LPM_MAX_INDEX_BITS, LPM_SHIFT, LPM_STARTS, LPM_VALUES } from "./layout.ts";
import type { DataPlane } from "./dataplane.ts";
import type { KernelImpl } from "./kernels.ts";
import { lpm4 as twinLpm4, lpm6 as twinLpm6 } from "./twin/lpm.ts";

/** A prefix of a 4-byte (IPv4) or 16-byte (IPv6) address; `value` is what a lookup inside it returns (> 0). */
export interface LpmPrefix {
  bytes: Uint8Array;
  length: number;
  value: number;
}

/** Sorted disjoint intervals: interval i runs from starts[i] to the next start (the last to the
 * end of the space) and holds values[i]. words: 1 (IPv4) or 4 (IPv6) u32 per start. */
export interface Intervals {
  words: 1 | 4;
  starts: Uint32Array;
  values: Uint32Array;
}

const ONES = 0xffffffff;

/** Flattens prefixes (all of one family) into intervals; of the same prefix given twice, the later
 * one's value stands (callers that must refuse duplicates check before). Host bits are ignored.
 * Addresses are `words` u32 each, most significant first, in typed arrays (objects or BigInt per
 * prefix measured several times slower for 100k prefixes). */
export function flatten(prefixes: readonly LpmPrefix[], words: 1 | 4): Intervals {
  const n = prefixes.length, W = words;
  const first = new Uint32Array(n * W), last = new Uint32Array(n * W), lengths = new Int32Array(n), values = new Uint32Array(n);
  prefixes.forEach((p, i) => {
    lengths[i] = p.length;
    values[i] = p.value;
    for (let k = 0; k < W; k++) {
      const b = p.bytes, w = ((b[4 * k] << 24) | (b[4 * k + 1] << 16) | (b[4 * k + 2] << 8) | b[4 * k + 3]) >>> 0;
      const kept = Math.max(0, Math.min(32, p.length - 32 * k)); // prefix bits in this word
      const host = kept === 0 ? ONES : kept === 32 ? 0 : 2 ** (32 - kept) - 1;
      first[i * W + k] = w - (w % (host + 1));
      last[i * W + k] = first[i * W + k] + host;
    }
  });
  /** a[i] against b[j], as W-word numbers. */
  const compare = (a: Uint32Array, i: number, b: Uint32Array, j: number): number => {
    for (let k = 0; k < W; k++) { const d = a[i * W + k] - b[j * W + k]; if (d !== 0) return d; }
    return 0;
  };
  const order = sortedOrder(first, lengths, W);

  let outStarts = new Uint32Array(Math.max(16, (2 * n + 1) * W)), outValues = new Uint32Array(Math.max(16, 2 * n + 1));
  let count = 1; // interval 0 starts at address 0 with no value
  const emit = (src: Uint32Array, i: number, value: number) => {
    if (compare(outStarts, count - 1, src, i) === 0) { outValues[count - 1] = value; return; }
    for (let k = 0; k < W; k++) outStarts[count * W + k] = src[i * W + k];
    outValues[count++] = value;
  };
  // Prefixes nest or are disjoint: a stack of the ones enclosing the current start. When one
  // ends, the one enclosing it (or none) takes over from the next address.
  const stack: number[] = [];
  const after = new Uint32Array(W);
  const close = (done: number) => {
    let k = W - 1;
    while (k >= 0 && last[done * W + k] === ONES) k--;
    if (k < 0) return; // it ends at the top of the space
    for (let j = 0; j < W; j++) after[j] = j < k ? last[done * W + j] : j === k ? last[done * W + j] + 1 : 0;
    emit(after, 0, stack.length > 0 ? values[stack[stack.length - 1]] : 0);
  };
  for (const i of order) {
    while (stack.length > 0 && compare(last, stack[stack.length - 1], first, i) < 0) close(stack.pop()!);
    emit(first, i, values[i]);
    stack.push(i);
  }
  while (stack.length > 0) close(stack.pop()!);
  // Neighbours with one value are one interval.
  let kept = 0;
  for (let i = 0; i < count; i++) {
    if (kept > 0 && outValues[kept - 1] === outValues[i]) continue;
    if (kept !== i) { outStarts.copyWithin(kept * W, i * W, i * W + W); outValues[kept] = outValues[i]; }
    kept++;
  }
  outStarts = outStarts.slice(0, kept * W);
  outValues = outValues.slice(0, kept);
  return { words, starts: outStarts, values: outValues };
}

/** Prefix indices by start, a wider prefix before the ones inside it, a later duplicate after an
 * earlier one: an LSD radix sort on 16-bit digits (stable), length first, then the start's
 * digits from the least significant (a comparison sort measured ten times slower at 100k). */
function sortedOrder(first: Uint32Array, lengths: Int32Array, W: number): Uint32Array {
  const n = lengths.length;
  let order = Uint32Array.from({ length: n }, (_, i) => i), spare = new Uint32Array(n);
  const counts = new Uint32Array(65537), digits = new Uint16Array(n);
  // One pass: a stable counting sort of `order` by digits[i] (filled just before).
  const pass = () => {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[digits[i] + 1]++;
    for (let d = 1; d <= 65536; d++) counts[d] += counts[d - 1];
    for (let j = 0; j < n; j++) { const i = order[j]; spare[counts[digits[i]]++] = i; }
    const done = order;
    order = spare;
    spare = done;
  };
  digits.set(lengths);
  pass();
  for (let k = W - 1; k >= 0; k--) {
    for (let i = 0; i < n; i++) digits[i] = first[i * W + k] & 0xffff;
    pass();
    for (let i = 0; i < n; i++) digits[i] = first[i * W + k] >>> 16;
    pass();
  }
  return order;
}

/** Bytes a table of these intervals takes, and its index size. */
function tableShape(iv: Intervals): { indexBits: number; bytes: number; startsOff: number; valuesOff: number } {
  const n = iv.values.length;
  const indexBits = Math.max(1, Math.min(LPM_MAX_INDEX_BITS, Math.ceil(Math.log2(n + 1))));
  const startsOff = LPM_INDEX + ((1 << indexBits) + 1) * 4;
  const valuesOff = startsOff + n * iv.words * 4;
  return { indexBits, bytes: valuesOff + n * 4, startsOff, valuesOff };
}

/** Writes the table at byte offset t of `m` (a view of the whole memory). */
function writeTable(m: Uint32Array, t: number, iv: Intervals): void {
  const shape = tableShape(iv), w = t >>> 2, n = iv.values.length, shift = 32 - shape.indexBits;
  m[w + (LPM_COUNT >> 2)] = n;
  m[w + (LPM_SHIFT >> 2)] = shift;
  m[w + (LPM_STARTS >> 2)] = shape.startsOff;
  m[w + (LPM_VALUES >> 2)] = shape.valuesOff;
  m.set(iv.starts, w + (shape.startsOff >> 2));
  m.set(iv.values, w + (shape.valuesOff >> 2));
  // Slot h: the last interval starting at or below h << shift (the first word's top bits; the
  // other words of the slot's first address are 0, so a start whose first word equals it and
  // whose other words are not all 0 lies above).
  const slots = 1 << shape.indexBits, index = w + (LPM_INDEX >> 2);
  const atOrBelow = (i: number, first: number) => {
    const s0 = iv.starts[i * iv.words];
    if (s0 !== first) return s0 < first;
    for (let k = 1; k < iv.words; k++) if (iv.starts[i * iv.words + k] !== 0) return false;
    return true;
  };
  let i = 0;
  for (let h = 0; h < slots; h++) {
    const first = (h * 2 ** shift) >>> 0;
    while (i + 1 < n && atOrBelow(i + 1, first)) i++;
    m[index + h] = i;
  }
  m[index + slots] = n - 1;
}

export type LpmImpl = KernelImpl;

/** One family's table in a data plane's memory. */
export class LpmTable {
  readonly at: number;
  readonly bytes: number;
  readonly intervals: number;
  private view: Uint32Array;
  private readonly wasm4: ((t: number, a: number) => number) | null;
  private readonly wasm6: ((t: number, a: number, b: number, c: number, d: number) => number) | null;

  /** `impl`: which kernel looks up (bench/RESULTS.md, "Access rules"); "wasm" falls back to the
   * twin when the plane has no module. */
  constructor(private readonly dp: DataPlane, iv: Intervals, readonly impl: LpmImpl = "wasm") {
    const shape = tableShape(iv);
    this.bytes = shape.bytes;
    this.intervals = iv.values.length;
    this.at = dp.allocTable(shape.bytes);
    this.view = new Uint32Array(dp.memory);
    writeTable(this.view, this.at, iv);
    const ex = impl === "wasm" ? dp.wasmExports as unknown as { lpm4?: LpmTable["wasm4"]; lpm6?: LpmTable["wasm6"] } | null : null;
    this.wasm4 = ex?.lpm4 ?? null;
    this.wasm6 = ex?.lpm6 ?? null;
  }

  /** The memory view, made again when the plane's memory grew (a new buffer). */
  private mem(): Uint32Array {
    if (this.view.buffer !== this.dp.memory) this.view = new Uint32Array(this.dp.memory);
    return this.view;
  }

  /** IPv4: the value of the longest prefix holding the address (its 32 bits), 0 for none. */
  lookup4(address: number): number {
    return this.wasm4 ? this.wasm4(this.at, address | 0) : twinLpm4(this.mem(), this.at, address);
  }

  /** IPv6, as four 32-bit words, most significant first. */
  lookup6(w0: number, w1: number, w2: number, w3: number): number {
    return this.wasm6 ? this.wasm6(this.at, w0 | 0, w1 | 0, w2 | 0, w3 | 0) : twinLpm6(this.mem(), this.at, w0, w1, w2, w3);
  }

  /** Gives the memory back to the plane. */
  release(): void {
    this.dp.releaseTable(this.at, this.bytes);
  }
}
