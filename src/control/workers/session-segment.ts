// The shared memory of the workers' session counts: one word per (pool, server address) with the
// count over every worker (what picks and max_conns read), then a block of the same words per
// worker slot with that worker's own part. A worker that dies with sessions in flight (SIGKILL)
// never releases them; its supervisor takes its own part back out of the totals, so lc and
// max_conns do not see sessions that no longer exist.
import { readdirSync, unlinkSync } from "node:fs";
import process from "node:process";
import { mapShared } from "../../ffi/shm.ts";

const DIR = "/dev/shm";
const NAME = /^fulcrum-(\d+)-[a-z0-9-]+$/;

/** The file of the supervisor's segment `name` ("sessions", or another shared table's). */
export function segmentPath(name = "sessions", pid = process.pid): string {
  return `${DIR}/fulcrum-${pid}-${name}`;
}

/** Removes the segments of supervisors that are gone (killed before they could remove theirs). */
export function removeStaleSegments(): void {
  let names: string[] = [];
  try { names = readdirSync(DIR); } catch { return; }
  for (const name of names) {
    const pid = Number(NAME.exec(name)?.[1] ?? 0);
    if (pid <= 0 || pid === process.pid) continue;
    try { process.kill(pid, 0); } catch (e) {
      if ((e as { code?: string }).code === "ESRCH") try { unlinkSync(`${DIR}/${name}`); } catch { /* another removed it */ }
    }
  }
}

/** Removes a segment's file (at exit; the mappings stay valid while they last). */
export function removeSegment(path: string): void {
  try { unlinkSync(path); } catch { /* gone already */ }
}

export interface SegmentPlace {
  path: string;
  bytes: number;
  words: number;
  /** This worker's block, or -1 when every slot is taken (its part cannot be taken back). */
  slot: number;
}

export class SessionSegment {
  readonly bytes: number;
  readonly total: Int32Array;
  private readonly buffer: ArrayBuffer;
  private readonly free: number[];

  constructor(readonly words: number, readonly slots: number, readonly path = segmentPath()) {
    removeStaleSegments();
    this.bytes = (1 + slots) * words * 4;
    this.buffer = mapShared(path, this.bytes, true);
    this.total = new Int32Array(this.buffer, 0, words);
    this.free = Array.from({ length: slots }, (_, k) => slots - 1 - k);
  }

  /** Removes the file (at exit; the mappings stay valid while they last). */
  remove(): void {
    removeSegment(this.path);
  }

  /** A slot for a new worker, -1 when none is free. */
  allocate(): SegmentPlace {
    return { path: this.path, bytes: this.bytes, words: this.words, slot: this.free.pop() ?? -1 };
  }

  /** The worker in `slot` exited: what it still counted leaves the totals, and the slot is free. */
  release(slot: number): void {
    if (slot < 0) return;
    const own = ownPart(this.buffer, this.words, slot);
    for (let i = 0; i < own.length; i++) if (own[i] !== 0) { Atomics.sub(this.total, i, own[i]); own[i] = 0; }
    this.free.push(slot);
  }
}

function ownPart(buffer: ArrayBuffer, words: number, slot: number): Int32Array {
  return new Int32Array(buffer, (1 + slot) * words * 4, words);
}

/** A worker's view: the totals and its own block (null without a slot). */
export function openSegment(place: SegmentPlace): { total: Int32Array; own: Int32Array | null } {
  const buffer = mapShared(place.path, place.bytes, false);
  return { total: new Int32Array(buffer, 0, place.words), own: place.slot < 0 ? null : ownPart(buffer, place.words, place.slot) };
}
