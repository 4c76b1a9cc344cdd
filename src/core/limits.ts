// Per-client limit tables in the data plane's memory (HAProxy's stick tables, nginx's limit_req
// and limit_conn zones): the control-plane side of wasm/assembly/limits.ts. A table's memory is
// known up front (LE_SIZE bytes per tracked key, in sets of LT_WAYS) and comes from the data
// plane's heap; one kernel call per admission decision.
import type { DataPlane } from "./dataplane.ts";
import {
  LT_HEADER, LT_SETS, LT_LIMIT, LT_BURST, LT_USED, LT_EVICTED, LT_REJECTED, LT_FULL, LT_RECLAIMED, LT_WAYS, LE_SIZE,
  LIMIT_FULL, LIMIT_OVER, LT_HASH_KEY,
} from "./layout.ts";
import { type LimitKernels, limitTwin } from "./twin/limits.ts";
import type { KernelImpl } from "./kernels.ts";

export { LIMIT_FULL, LIMIT_OVER };

/** The kernel that won bench/limits.bench.ts per runtime (bench/RESULTS.md). */
export const LIMIT_KERNEL: { bun: KernelImpl; deno: KernelImpl } = { bun: "wasm", deno: "wasm" };

export type LimitSpec =
  /** `rate` requests per second (may be fractional: 10/m is 1/6), `burst` requests above it. */
  | { kind: "rate"; size: number; rate: number; burst: number }
  | { kind: "conn"; size: number; max: number };

export interface LimitTableStats {
  kind: "rate" | "conn";
  /** Keys it can track, and the bytes it holds in the data plane. */
  size: number;
  bytes: number;
  entries: number;
  evictions: number;
  rejected: number;
  /** conn: new keys refused because their set held only keys with requests in flight. */
  full: number;
  /** rate: entries drained to nothing and reused for another key. */
  reclaimed: number;
}

let clockBase = Date.now();

/** The clock the tables keep: whole milliseconds since this module loaded (or since the base
 * useLimitClockBase set), as an i32 (the kernels compare times by signed difference, so a wrap
 * after 24 days is harmless). Date.now(), not performance.now(): on Deno that is a call into the
 * runtime costing ~1 us (bench/RESULTS.md), a clock read per decision. A wall clock stepped back
 * reads as "very long ago" (the key's state is as good as new, never stuck); stepped forward, it
 * drains early. */
export function limitClock(): number {
  return (Date.now() - clockBase) | 0;
}

/** The time base of this process's limit clock (workers sharing tables take their supervisor's). */
export function limitClockBase(): number {
  return clockBase;
}

/** Makes this process's limit clock count from `base` (Date.now() of another process), so the
 * processes deciding on one shared table agree on its times. Before any table decides. */
export function useLimitClockBase(base: number): void {
  clockBase = base;
}

/** A lock that processes sharing a table's memory hold around each decision (a SharedLock). */
export interface TableLock {
  acquire(): void;
  release(): void;
}

/** Memory outside the data plane that a table can sit on (a segment shared by processes): its
 * bytes from `offset`, decided by the TS kernels (WASM reads only its own memory) under `lock`. */
export interface SharedPlace {
  memory: ArrayBuffer;
  offset: number;
  lock: TableLock;
}

/** Entries per key a table is made with: with two-choice hashing into sets of LT_WAYS, `size`
 * keys fit with almost no evictions (0.02% for 100,000 random keys), where size entries would
 * overflow ~4% of them. */
const ENTRIES_PER_KEY = 1.25;

/** Sets a table for `size` keys has. */
function setsFor(size: number): number {
  return Math.ceil(size * ENTRIES_PER_KEY / LT_WAYS);
}

/** The bytes a table for `size` keys takes: LE_SIZE * 1.25 per key, and the header. */
export function limitTableBytes(size: number): number {
  return LT_HEADER + setsFor(size) * LT_WAYS * LE_SIZE;
}

/** The tables' hash key: random per process (no hash flooding), the same for every generation
 * so a reload can carry a table's entries over. */
const HASH_KEY = crypto.getRandomValues(new Int32Array(2));

function runtimeChoice(): KernelImpl {
  return "Bun" in globalThis ? LIMIT_KERNEL.bun : LIMIT_KERNEL.deno;
}

export class LimitTable {
  /** Where the table starts in the memory it is in (the data plane's, or a shared place's). */
  offset: number;
  readonly bytes: number;
  private kernels: LimitKernels;
  /** The memory the table is in: the data plane's, or a shared place's. */
  private memory: ArrayBuffer;
  /** The data plane's memory the kernels were made over (the key buffer is there). */
  private keyMemory: ArrayBuffer;
  private words: Int32Array;
  /** Held around each decision while the table is in shared memory; null in the data plane. */
  private lock: TableLock | null = null;
  private released = false;

  /** impl: which kernels decide ("auto": the faster one on this runtime). */
  constructor(private readonly plane: DataPlane, readonly spec: LimitSpec, private readonly impl: KernelImpl | "auto" = "auto") {
    if (!Number.isInteger(spec.size) || spec.size < 1) throw new Error(`limit table: size ${spec.size} is not a positive integer`);
    this.bytes = limitTableBytes(spec.size);
    this.offset = plane.allocTable(this.bytes);
    this.memory = this.keyMemory = plane.memory;
    this.kernels = this.pickKernels();
    this.words = new Int32Array(this.memory);
    const t = this.offset >> 2;
    this.words[t + (LT_SETS >> 2)] = setsFor(spec.size);
    this.words[t + (LT_HASH_KEY >> 2)] = HASH_KEY[0];
    this.words[t + (LT_HASH_KEY >> 2) + 1] = HASH_KEY[1];
    if (spec.kind === "rate") {
      // nginx keeps rates in milli-requests per second and excess in milli-requests.
      this.words[t + (LT_LIMIT >> 2)] = Math.max(1, Math.round(spec.rate * 1000));
      this.words[t + (LT_BURST >> 2)] = spec.burst * 1000;
    } else {
      this.words[t + (LT_LIMIT >> 2)] = spec.max;
    }
  }

  private pickKernels(): LimitKernels {
    if (this.lock) return limitTwin(this.memory, this.keyMemory);
    const choice = this.impl === "auto" ? runtimeChoice() : this.impl;
    const wasm = this.plane.wasmExports as unknown as LimitKernels | null;
    return choice === "wasm" && wasm ? wasm : limitTwin(this.memory);
  }

  // The data plane's memory grew (another table was made): views and the twin's are remade.
  private current(): LimitKernels {
    if (this.plane.memory !== this.keyMemory) {
      this.keyMemory = this.plane.memory;
      if (!this.lock) {
        this.memory = this.plane.memory;
        this.words = new Int32Array(this.memory);
      }
      this.kernels = this.pickKernels();
    }
    return this.kernels;
  }

  /** Moves the table into `place` (memory shared by processes), its state and counters with it;
   * the data plane's memory it had is given back. From now on each decision holds the lock. */
  moveTo(place: SharedPlace): void {
    this.current();
    new Uint8Array(place.memory, place.offset, this.bytes).set(new Uint8Array(this.memory, this.offset, this.bytes));
    this.attachTo(place);
  }

  /** Decides on the table another process moved into `place` (the same spec: its header, hash
   * key and entries are that process's); the data plane's memory this one had is given back. */
  attachTo(place: SharedPlace): void {
    if (this.lock) throw new Error("limit table: already in shared memory");
    this.plane.releaseTable(this.offset, this.bytes);
    this.memory = place.memory;
    this.offset = place.offset;
    this.lock = place.lock;
    this.words = new Int32Array(this.memory);
    this.keyMemory = this.plane.memory;
    this.kernels = this.pickKernels();
  }

  /** A rate table's decision for one request of `key`: 0 admitted, else the milliseconds until
   * the key's next request would be. */
  rate(key: string, now = limitClock()): number {
    const k = this.current();
    if (this.lock === null) return k.rateAdmit(this.offset, this.plane.writeKey(key), now);
    const len = this.plane.writeKey(key);
    this.lock.acquire();
    try {
      return k.rateAdmit(this.offset, len, now);
    } finally {
      this.lock.release();
    }
  }

  /** A conn table's admission of one more request of `key`: a handle for release() (>= 0), or
   * LIMIT_OVER (at its limit) or LIMIT_FULL (not trackable: its set is all in flight). */
  acquire(key: string, now = limitClock()): number {
    const k = this.current();
    if (this.lock === null) return k.connAdmit(this.offset, this.plane.writeKey(key), now);
    const len = this.plane.writeKey(key);
    this.lock.acquire();
    try {
      return k.connAdmit(this.offset, len, now);
    } finally {
      this.lock.release();
    }
  }

  /** The request acquire() admitted with `handle` ended. */
  release(handle: number): void {
    if (this.released) return;
    const k = this.current();
    if (this.lock === null) { k.connRelease(this.offset, handle); return; }
    this.lock.acquire();
    try {
      k.connRelease(this.offset, handle);
    } finally {
      this.lock.release();
    }
  }

  private field(f: number): number {
    this.current();
    return this.words[(this.offset + f) >> 2] >>> 0;
  }

  stats(): LimitTableStats {
    return {
      kind: this.spec.kind, size: this.spec.size, bytes: this.bytes,
      entries: this.field(LT_USED), evictions: this.field(LT_EVICTED), rejected: this.field(LT_REJECTED),
      full: this.field(LT_FULL), reclaimed: this.field(LT_RECLAIMED),
    };
  }

  /** Whether `other` is the same limit (a reload may carry its state over). */
  sameAs(other: LimitTable): boolean {
    return JSON.stringify(this.spec) === JSON.stringify(other.spec);
  }

  /** Takes over a rate table's entries and counters (a reload, the same limit): the clock is the
   * process's (or the supervisor's, shared), so the excess keeps draining as if nothing happened.
   * A table in shared memory is copied holding its lock (other processes may be deciding). */
  carryFrom(other: LimitTable): void {
    if (this.spec.kind !== "rate" || !this.sameAs(other)) return;
    this.current();
    other.current();
    other.lock?.acquire();
    try {
      new Uint8Array(this.memory, this.offset, this.bytes).set(new Uint8Array(other.memory, other.offset, other.bytes));
    } finally {
      other.lock?.release();
    }
  }

  /** Gives the memory back to the data plane; later releases of its handles do nothing. A table
   * in shared memory keeps a copy of its header (its counters stay readable once the shared
   * memory is gone). */
  free(): void {
    if (this.released) return;
    this.released = true;
    if (!this.lock) { this.plane.releaseTable(this.offset, this.bytes); return; }
    this.memory = new Uint8Array(this.memory, this.offset, LT_HEADER).slice().buffer;
    this.words = new Int32Array(this.memory);
    this.offset = 0;
  }
}
