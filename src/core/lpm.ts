// Longest-prefix-match tables (access rules' allow/deny by CIDR): the control plane's half. A
// prefix list is flattened into sorted, disjoint intervals of the address space, each carrying the
// value of the longest prefix that covers it, and written into the data plane's heap with an index
// by the addresses' top bits; lookups run in WASM (wasm/assembly/lpm.ts) or in the TS twin
// (src/core/twin/lpm.ts), over the same memory. 100,000 prefixes make at most 200,001 intervals:
// about 2 MB for IPv4 and 5 MB for IPv6 with the index, and at most 18 probes per lookup.
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

/** Address arithmetic for one family: IPv4 as plain numbers, IPv6 as four u32 words (most
 * significant first; BigInt measured ten times slower to build 100k prefixes). */
interface Space<T> {
  words: 1 | 4;
  zero: T;
  top: T;
  /** [start, end] of the prefix, host bits cleared. */
  range(p: LpmPrefix): [T, T];
  compare(a: T, b: T): number;
  next(x: T): T;
  /** x's u32 words, most significant first, into out at `at`. */
  write(x: T, out: Uint32Array, at: number): void;
}

const V4: Space<number> = {
  words: 1,
  zero: 0,
  top: 0xffffffff,
  range(p) {
    const b = p.bytes, a = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    const host = p.length === 0 ? 0xffffffff : p.length === 32 ? 0 : (2 ** (32 - p.length)) - 1;
    const start = a - (a % (host + 1));
    return [start, start + host];
  },
  compare: (a, b) => a - b,
  next: (x) => x + 1,
  write(x, out, at) { out[at] = x; },
};

type Words = [number, number, number, number];
const ONES = 0xffffffff;

const V6: Space<Words> = {
  words: 4,
  zero: [0, 0, 0, 0],
  top: [ONES, ONES, ONES, ONES],
  range(p) {
    const start: Words = [0, 0, 0, 0], end: Words = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      const b = p.bytes, w = ((b[4 * k] << 24) | (b[4 * k + 1] << 16) | (b[4 * k + 2] << 8) | b[4 * k + 3]) >>> 0;
      const kept = Math.max(0, Math.min(32, p.length - 32 * k)); // prefix bits in this word
      const host = kept === 0 ? ONES : kept === 32 ? 0 : (2 ** (32 - kept)) - 1;
      start[k] = w - (w % (host + 1));
      end[k] = start[k] + host;
    }
    return [start, end];
  },
  compare(a, b) {
    for (let k = 0; k < 4; k++) if (a[k] !== b[k]) return a[k] - b[k];
    return 0;
  },
  next(x) {
    const y: Words = [x[0], x[1], x[2], x[3]];
    for (let k = 3; k >= 0; k--) {
      if (y[k] !== ONES) { y[k]++; return y; }
      y[k] = 0;
    }
    return y;
  },
  write(x, out, at) { out.set(x, at); },
};

/** Flattens prefixes (all of one family) into intervals; of the same prefix given twice, the later
 * one's value stands (callers that must refuse duplicates check before). Host bits are ignored. */
export function flatten(prefixes: readonly LpmPrefix[], words: 1 | 4): Intervals {
  return words === 1 ? flattenIn(V4, prefixes) : flattenIn(V6, prefixes);
}

function flattenIn<T>(space: Space<T>, prefixes: readonly LpmPrefix[]): Intervals {
  const cmp = space.compare;
  const items = prefixes.map((p, order) => {
    const [start, end] = space.range(p);
    return { start, end, length: p.length, value: p.value, order };
  });
  items.sort((x, y) => cmp(x.start, y.start) || x.length - y.length || x.order - y.order);
  const outStart: T[] = [space.zero], outValue: number[] = [0];
  const emit = (at: T, value: number) => {
    const last = outStart.length - 1;
    if (cmp(outStart[last], at) === 0) outValue[last] = value;
    else { outStart.push(at); outValue.push(value); }
  };
  // Prefixes nest or are disjoint: a stack of the ones enclosing the current start.
  const stack: { end: T; value: number }[] = [];
  const closeBefore = (at: T | null) => {
    while (stack.length > 0 && (at === null || cmp(stack[stack.length - 1].end, at) < 0)) {
      const done = stack.pop()!;
      if (cmp(done.end, space.top) < 0) emit(space.next(done.end), stack.length > 0 ? stack[stack.length - 1].value : 0);
    }
  };
  for (const p of items) {
    closeBefore(p.start);
    emit(p.start, p.value);
    stack.push({ end: p.end, value: p.value });
  }
  closeBefore(null);
  // Neighbours with one value are one interval.
  const keep: number[] = [];
  for (let i = 0; i < outStart.length; i++) if (keep.length === 0 || outValue[keep[keep.length - 1]] !== outValue[i]) keep.push(i);
  const starts = new Uint32Array(keep.length * space.words), values = new Uint32Array(keep.length);
  keep.forEach((i, k) => { space.write(outStart[i], starts, k * space.words); values[k] = outValue[i]; });
  return { words: space.words, starts, values };
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

  /** `impl`: which kernel looks up (bench/RESULTS.md, "LPM"); "wasm" falls back to the twin
   * when the plane has no module. */
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
