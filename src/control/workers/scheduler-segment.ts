// The shared memory of the schedulers' own state (src/balancer/shared-scheduler.ts): first a word
// per word of the shared index (pool-state.ts), which holds a server's smooth-wrr current weight
// at the server's word and a pool's lock at the pool's own word; then the lblc/lblcr tables, one
// for each such pool up to LOCALITY_TABLES (a pool past them keeps its table per worker); then
// least_time's estimates, two words per word of the index (a server's estimate, µs, and when it
// was set, on SHARED_CLOCK); then the passive failures' words (src/balancer/shared-passive.ts),
// PASSIVE_WORDS per word of the index. The tables' pages cost memory only once written (/dev/shm
// files are sparse).
import { unlinkSync } from "node:fs";
import { LB_BUCKETS, LB_ENTRY_WORDS } from "../../core/layout.ts";
import { PASSIVE_WORDS } from "../../balancer/shared-passive.ts";
import { mapShared } from "../../ffi/shm.ts";
import { removeStaleSegments, segmentPath } from "./session-segment.ts";

export const LOCALITY_TABLES = 64;
const TABLE_WORDS = LB_BUCKETS * LB_ENTRY_WORDS;

export interface SchedulerSegmentPlace {
  path: string;
  /** Words of the shared index. */
  words: number;
  tables: number;
}

export interface SchedulerWords {
  /** By shared index: servers' current weights, pools' locks. */
  words: Int32Array;
  /** Locality table `index`, null for -1. */
  table(index: number): Int32Array | null;
  /** least_time, by shared index k: [2k] a server's estimate, µs; [2k + 1] when it was set. */
  estimates: Int32Array;
  /** max_fails counts and out-until times, PASSIVE_WORDS per shared index. */
  passive: Int32Array;
}

/** The data plane's clock in every process of a supervisor, so that when one set an estimate
 * means the same to all: ms since the epoch, by each process's monotonic clock from its start. */
export const SHARED_CLOCK = (): number => performance.timeOrigin + performance.now();

const bytesOf = (p: SchedulerSegmentPlace) => (p.words * (3 + PASSIVE_WORDS) + p.tables * TABLE_WORDS) * 4;

function viewsOf(buffer: ArrayBuffer, place: SchedulerSegmentPlace): SchedulerWords {
  return {
    words: new Int32Array(buffer, 0, place.words),
    table: (index) => index < 0 || index >= place.tables ? null : new Int32Array(buffer, (place.words + index * TABLE_WORDS) * 4, TABLE_WORDS),
    estimates: new Int32Array(buffer, (place.words + place.tables * TABLE_WORDS) * 4, 2 * place.words),
    passive: new Int32Array(buffer, (3 * place.words + place.tables * TABLE_WORDS) * 4, place.words * PASSIVE_WORDS),
  };
}

/** The supervisor's segment: it creates the file and removes it at exit. */
export class SchedulerSegment {
  readonly place: SchedulerSegmentPlace;
  readonly views: SchedulerWords;

  constructor(words: number, tables = LOCALITY_TABLES, path = segmentPath("schedulers")) {
    removeStaleSegments();
    this.place = { path, words, tables };
    this.views = viewsOf(mapShared(path, bytesOf(this.place), true), this.place);
  }

  remove(): void {
    try { unlinkSync(this.place.path); } catch { /* gone already */ }
  }
}

/** A worker's view of the segment. */
export function openSchedulerSegment(place: SchedulerSegmentPlace): SchedulerWords {
  return viewsOf(mapShared(place.path, bytesOf(place), false), place);
}
