// How much linear memory a connection table of a given capacity needs, from the one layout.
import {
  CONN_OFF, CT_SIZE, DIR_FIXED_END, DIR_WHEEL_OFF, WHEEL_SLOTS, HEAP_END, DIR_OFF,
} from "../../core/layout.ts";
import { SYNC_SHADOW_OFF, SYNC_SHADOW_STRIDE } from "../../../wasm/assembly/sync-layout.ts";
import { adviseHugePages } from "../../ffi/libc.ts";

// The fixed director tables must end before AssemblyScript's data page (wasm/build.ts).
if (DIR_WHEEL_OFF + WHEEL_SLOTS * 4 > DIR_FIXED_END || DIR_OFF !== HEAP_END) {
  throw new Error("layout: the director's fixed tables overrun DIR_FIXED_END");
}

/** Hash buckets for a capacity: a power of two, at least twice the entries (each holds two keys). */
export function bucketsFor(capacity: number): number {
  let b = 1;
  while (b < capacity * 2) b *= 2;
  return b;
}

/** Bytes the sync region needs past the entries for `capacity` connections. */
export function syncRegionBytes(capacity: number): number {
  return SYNC_SHADOW_OFF + capacity * SYNC_SHADOW_STRIDE;
}

/** Bytes of memory the data plane needs for `capacity` connections: the table, then the sync
 * region (wasm/assembly/sync-layout.ts; always there, so a reload that turns sync on keeps the
 * table; its pages are only touched when sync runs). */
export function directorMemoryBytes(capacity: number): number {
  return CONN_OFF + bucketsFor(capacity) * 4 + capacity * CT_SIZE + syncRegionBytes(capacity);
}

/** Bytes of table per connection: the entry and its share of the buckets. */
export function bytesPerConnection(capacity: number): number {
  return CT_SIZE + (bucketsFor(capacity) * 4) / capacity;
}

/** The most connections a 4 GiB wasm32 memory holds. */
export function maxCapacity(): number {
  let lo = 1, hi = 2 ** 26;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (directorMemoryBytes(mid) <= 2 ** 32) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/** Advises huge pages for the director's region of `memory` (fixed tables, buckets, entries) before
 * it is first written, so a random lookup in a big table misses the TLB far less: 4 KiB pages put
 * every packet's bucket and entry on a page of its own. Returns the bytes advised (0 where the
 * kernel or the runtime's FFI says no: the table then works on small pages). */
export function adviseDirectorHugePages(memory: ArrayBuffer, capacity: number): number {
  const end = Math.min(memory.byteLength, directorMemoryBytes(capacity));
  if (end <= DIR_OFF) return 0;
  try {
    return adviseHugePages(new Uint8Array(memory, DIR_OFF, end - DIR_OFF));
  } catch {
    return 0; // no FFI (a runtime without permission for it): small pages
  }
}
