// The workers' rate_limit and conn_limit tables, shared (nginx's limit_req zone in shared memory,
// HAProxy's stick tables): one segment per generation holds every table its config declares, each
// after its lock word. The supervisor makes the segment and moves its own (never deciding) tables
// in, so their headers (hash key, rate) are one process's and /metrics reads the tables once;
// each worker decides on the same bytes (core/limits.ts moveTo and attachTo).
import { unlinkSync } from "node:fs";
import type { LimitTable, SharedPlace } from "../../core/limits.ts";
import type { Edge } from "../../edge/edge.ts";
import type { L4Proxy } from "../../l4/proxy.ts";
import { mapShared, unmapShared } from "../../ffi/shm.ts";
import { SharedLock } from "./shared-lock.ts";
import { segmentPath } from "./session-segment.ts";

/** Where a generation's limit tables are shared (the worker's StartMessage carries it). */
export interface LimitSegmentPlace {
  path: string;
  bytes: number;
}

/** Before each table: its lock word and a word of padding (tables start 8-byte aligned). */
const LOCK_BYTES = 8;

/** Every limit table of an edge and an L4 proxy, in config order: the supervisor and its workers
 * build them from the same config, so the n-th table is the same limit in each. */
export function limitTables(source: { edge: Edge | null; l4: L4Proxy | null }): LimitTable[] {
  const sets = [...(source.edge?.clientLimits.all() ?? []), ...(source.l4?.clientLimits.values() ?? [])];
  return sets.flatMap((s) => [s.rate, s.conn]).filter((t): t is LimitTable => t !== null);
}

/** The bytes a segment for `tables` takes. */
export function limitSegmentBytes(tables: readonly LimitTable[]): number {
  return tables.reduce((n, t) => n + LOCK_BYTES + t.bytes, 0);
}

// Each table's place in the segment, in order: its lock word, then its bytes.
function placesIn(memory: ArrayBuffer, tables: readonly LimitTable[]): SharedPlace[] {
  const words = new Int32Array(memory);
  let at = 0;
  return tables.map((t) => {
    const place = { memory, offset: at + LOCK_BYTES, lock: new SharedLock(words, at >> 2) };
    at += LOCK_BYTES + t.bytes;
    return place;
  });
}

export class LimitSegment {
  private closed = false;

  private constructor(readonly place: LimitSegmentPlace, private readonly memory: ArrayBuffer, private readonly tables: readonly LimitTable[]) {}

  /** The supervisor's side: makes segment `name` for `tables` and moves them in (with their
   * state). null when there is no table. */
  static share(tables: readonly LimitTable[], name: string): LimitSegment | null {
    if (tables.length === 0) return null;
    const place = { path: segmentPath(name), bytes: limitSegmentBytes(tables) };
    const memory = mapShared(place.path, place.bytes, true);
    placesIn(memory, tables).forEach((p, i) => tables[i].moveTo(p));
    return new LimitSegment(place, memory, tables);
  }

  /** A worker's side: its tables (the same config's) decide on the supervisor's. */
  static attach(tables: readonly LimitTable[], place: LimitSegmentPlace): void {
    const bytes = limitSegmentBytes(tables);
    if (bytes !== place.bytes) throw new Error(`limit tables: this worker's take ${bytes} bytes, the supervisor's ${place.bytes}`);
    placesIn(mapShared(place.path, place.bytes, false), tables).forEach((p, i) => tables[i].attachTo(p));
  }

  /** Once no worker decides on it any more: the tables keep their last counters, the segment
   * goes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.tables) t.free();
    unmapShared(this.memory);
    try { unlinkSync(this.place.path); } catch { /* gone already */ }
  }
}
