// The sync kernels over one director's memory (WASM, or the TS twin beside a TS director): the
// export walk's records out, a peer's records in, and the region's counters.
import * as L from "../../../core/layout.ts";
import {
  REC_SIZE, SYNC_BUF_OFF, SYNC_BUF_SIZE, ST_CURSOR, ST_EXPORTED, ST_IMPORTED, ST_UPDATED, ST_REJ_MALFORMED, ST_REJ_NO_SERVICE,
  ST_REJ_NO_SERVER, ST_REJ_NO_LADDR, ST_REJ_TABLE_FULL, ST_REJ_CONFLICT,
} from "../../../../wasm/assembly/sync-layout.ts";
import type { Director } from "../director.ts";
import { type SyncKernels, syncTwin } from "../twin/sync.ts";

/** Records refused by the import, by reason (the counters' names). */
export const RECORD_REJECTIONS = {
  malformed: ST_REJ_MALFORMED, no_service: ST_REJ_NO_SERVICE, no_server: ST_REJ_NO_SERVER,
  no_local_address: ST_REJ_NO_LADDR, table_full: ST_REJ_TABLE_FULL, conflict: ST_REJ_CONFLICT,
} as const;
export type RecordRejection = keyof typeof RECORD_REJECTIONS;

export interface RecordCounts {
  exported: number;
  imported: number;
  updated: number;
  rejected: Record<RecordRejection, number>;
}

/** What one export call wrote. */
export interface Exported {
  records: Uint8Array;
  count: number;
  /** The walk reached the table's end (the next call starts from entry 0). */
  wrapped: boolean;
  /** Entries it looked at. */
  steps: number;
}

export class SyncTable {
  private readonly kernels: SyncKernels;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  readonly maxRecords: number;

  constructor(readonly director: Director) {
    this.kernels = director.impl === "wasm"
      ? director.plane.wasmExports as unknown as SyncKernels
      : syncTwin(director.plane.memory);
    this.bytes = new Uint8Array(director.plane.memory);
    this.view = new DataView(director.plane.memory);
    this.maxRecords = Math.floor(SYNC_BUF_SIZE / REC_SIZE);
    if (this.kernels.syncInit() !== 0) throw new Error("director sync: the director's memory has no sync region");
  }

  private get base(): number {
    return this.view.getUint32(L.DIR_OFF + L.DG_ENTRIES, true) + this.view.getUint32(L.DIR_OFF + L.DG_CAP, true) * L.CT_SIZE;
  }

  /** Up to `maxRecords` records the peer has not seen, walking at most `maxSteps` entries. */
  exportRecords(maxRecords: number, maxSteps: number, refreshMs: number): Exported {
    const cursor = () => this.view.getUint32(this.base + ST_CURSOR, true);
    const from = cursor();
    const r = this.kernels.syncExport(maxRecords, maxSteps, refreshMs);
    if (r < 0) throw new Error("director sync: no sync region");
    const count = r & 0xffff, wrapped = r >= 65536;
    const start = this.base + SYNC_BUF_OFF;
    const steps = wrapped ? Math.max(0, this.view.getUint32(L.DIR_OFF + L.DG_HWM, true) - from) : cursor() - from;
    return { records: this.bytes.slice(start, start + count * REC_SIZE), count, wrapped, steps };
  }

  /** Applies `count` records; returns how many made or refreshed an entry. */
  importRecords(records: Uint8Array, count: number): number {
    const n = Math.min(count, this.maxRecords, Math.floor(records.length / REC_SIZE));
    this.bytes.set(records.subarray(0, n * REC_SIZE), this.base + SYNC_BUF_OFF);
    return this.kernels.syncImport(n);
  }

  counts(): RecordCounts {
    const at = (off: number) => this.view.getUint32(this.base + off, true);
    const rejected = {} as Record<RecordRejection, number>;
    for (const [name, off] of Object.entries(RECORD_REJECTIONS)) rejected[name as RecordRejection] = at(off);
    return { exported: at(ST_EXPORTED), imported: at(ST_IMPORTED), updated: at(ST_UPDATED), rejected };
  }
}
