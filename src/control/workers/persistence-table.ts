// Source persistence shared by the workers: one open-addressed table in a segment every process
// maps, so a client's next connection finds its server whichever worker accepts it. An entry is
// (client key, server word, expiry): the key is 64 bits of a keyed hash of the pool and the
// client address, the server its word in the shared session counts (the same in every worker).
// A key lives in a window of PROBE slots from its hash; a new key takes an empty slot there, else
// the one that expires first (expired ones first of all: the least recently used of a pool), so
// the table stays bounded. Updates and reads hold a SharedLock over the header's first word.
import { unlinkSync } from "node:fs";
import { mapShared } from "../../ffi/shm.ts";
import { halfSipHashString } from "../../core/hash.ts";
import type { SharedPersistenceTable } from "../../balancer/persistence.ts";
import { SharedLock } from "./shared-lock.ts";
import { removeStaleSegments, segmentPath } from "./session-segment.ts";

/** As SourcePersistence: at most this many clients (rounded up to a power of two of slots). */
export const PERSISTENCE_CAPACITY = 100_000;
/** Slots a key may sit in, from its hash on. */
const PROBE = 16;
/** Header: the lock, the slot count, the hash keys (k0, k1). */
const HEADER_WORDS = 4;
const LOCK = 0, SLOTS = 1, K0 = 2, K1 = 3;
/** An entry: key low, key high, server word + 1 (0: empty), unused, then the expiry (ms since
 * the epoch) as a float64. */
const ENTRY_WORDS = 6;
const KEY_LO = 0, KEY_HI = 1, SERVER = 2, EXPIRES_AT = 4;

/** Where a worker finds the table. */
export interface PersistencePlace {
  path: string;
  bytes: number;
}

function slotsFor(capacity: number): number {
  let n = PROBE;
  while (n < capacity) n *= 2;
  return n;
}

function bytesFor(slots: number): number {
  return (HEADER_WORDS + slots * ENTRY_WORDS) * 4;
}

export class PersistenceTable implements SharedPersistenceTable {
  private readonly words: Int32Array;
  private readonly times: Float64Array;
  private readonly lock: SharedLock;
  private readonly mask: number;
  private readonly k0: number;
  private readonly k1: number;

  /** Over `buffer`, laid out already (`init` false: a worker's) or laid out now for `capacity`. */
  constructor(buffer: ArrayBuffer, init: { capacity: number } | null = null) {
    this.words = new Int32Array(buffer);
    this.times = new Float64Array(buffer);
    if (init) {
      const keys = crypto.getRandomValues(new Int32Array(2));
      this.words[SLOTS] = slotsFor(init.capacity);
      this.words[K0] = keys[0];
      this.words[K1] = keys[1];
    }
    const slots = this.words[SLOTS];
    if (slots < PROBE || (slots & (slots - 1)) !== 0 || bytesFor(slots) > buffer.byteLength) {
      throw new Error(`persistence table: ${slots} slots do not fit its ${buffer.byteLength} bytes`);
    }
    this.mask = slots - 1;
    this.k0 = this.words[K0];
    this.k1 = this.words[K1];
    this.lock = new SharedLock(this.words, LOCK);
  }

  /** The bytes a table for `capacity` clients takes. */
  static bytes(capacity = PERSISTENCE_CAPACITY): number {
    return bytesFor(slotsFor(capacity));
  }

  lookup(poolKey: number, client: string, now: number): number {
    const lo = halfSipHashString(client, this.k0 ^ poolKey, this.k1);
    const hi = halfSipHashString(client, this.k1, this.k0 ^ poolKey);
    const w = this.words;
    return this.lock.with(() => {
      for (let i = 0; i < PROBE; i++) {
        const e = this.entry(lo + i);
        if (w[e + SERVER] === 0 || w[e + KEY_LO] !== lo || w[e + KEY_HI] !== hi) continue;
        if (this.times[(e + EXPIRES_AT) >> 1] <= now) { w[e + SERVER] = 0; return -1; }
        return w[e + SERVER] - 1;
      }
      return -1;
    });
  }

  remember(poolKey: number, client: string, server: number, expires: number): void {
    const lo = halfSipHashString(client, this.k0 ^ poolKey, this.k1);
    const hi = halfSipHashString(client, this.k1, this.k0 ^ poolKey);
    const w = this.words;
    this.lock.with(() => {
      // The key's own slot if it has one, else an empty one, else the one expiring first.
      let victim = -1, victimExpires = Infinity;
      for (let i = 0; i < PROBE; i++) {
        const e = this.entry(lo + i);
        if (w[e + SERVER] === 0) {
          if (victimExpires > -Infinity) { victim = e; victimExpires = -Infinity; }
          continue;
        }
        if (w[e + KEY_LO] === lo && w[e + KEY_HI] === hi) { victim = e; break; }
        const at = this.times[(e + EXPIRES_AT) >> 1];
        if (at < victimExpires) { victim = e; victimExpires = at; }
      }
      w[victim + KEY_LO] = lo;
      w[victim + KEY_HI] = hi;
      this.times[(victim + EXPIRES_AT) >> 1] = expires;
      w[victim + SERVER] = server + 1;
    });
  }

  /** The first word of the entry in slot `slot` (wrapped). */
  private entry(slot: number): number {
    return HEADER_WORDS + (slot & this.mask) * ENTRY_WORDS;
  }
}

/** The supervisor's table: a segment file of its own, which its workers open. */
export class PersistenceSegment {
  readonly table: PersistenceTable;
  readonly bytes: number;

  constructor(capacity = PERSISTENCE_CAPACITY, readonly path = segmentPath("persistence")) {
    removeStaleSegments();
    this.bytes = PersistenceTable.bytes(capacity);
    this.table = new PersistenceTable(mapShared(path, this.bytes, true), { capacity });
  }

  get place(): PersistencePlace {
    return { path: this.path, bytes: this.bytes };
  }

  /** Removes the file (at exit; the mappings stay valid while they last). */
  remove(): void {
    try { unlinkSync(this.path); } catch { /* gone already */ }
  }
}

/** A worker's view of its supervisor's table. */
export function openPersistenceTable(place: PersistencePlace): PersistenceTable {
  return new PersistenceTable(mapShared(place.path, place.bytes, false));
}
