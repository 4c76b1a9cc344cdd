// The sync datagram: a 12-byte header, then connection records (wasm/assembly/sync-layout.ts).
//   0 version (1) | 1 type (1: connections) | 2 sync id | 3 reserved (0)
//   4 u16 records | 6 u16 total length | 8 u32 FNV-1a of the datagram with these 4 bytes zero
// Every multi-byte field in network order. A receiver checks all of it before a record is read.
import { REC_SIZE } from "../../../../wasm/assembly/sync-layout.ts";

export const SYNC_VERSION = 1;
export const TYPE_CONNECTIONS = 1;
export const HEADER_SIZE = 12;
/** Records per datagram: 12 + 18 * 80 = 1452 bytes, within a 1500-byte MTU's UDP payload. */
export const RECORDS_PER_DATAGRAM = 18;

/** Why a datagram was refused (the counters' names). */
export type DatagramRejection = "short" | "version" | "type" | "sync_id" | "length" | "checksum";
export const DATAGRAM_REJECTIONS: readonly DatagramRejection[] = ["short", "version", "type", "sync_id", "length", "checksum"];

function fnv1a(bytes: Uint8Array, skipFrom: number, skipTo: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= i >= skipFrom && i < skipTo ? 0 : bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** One datagram carrying `count` records from `records` (REC_SIZE bytes each). */
export function encodeDatagram(syncId: number, records: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + count * REC_SIZE);
  const dv = new DataView(out.buffer);
  out[0] = SYNC_VERSION;
  out[1] = TYPE_CONNECTIONS;
  out[2] = syncId;
  dv.setUint16(4, count);
  dv.setUint16(6, out.length);
  out.set(records.subarray(0, count * REC_SIZE), HEADER_SIZE);
  dv.setUint32(8, fnv1a(out, 8, 12));
  return out;
}

/** The records a datagram carries (a view into it), or why it is refused. */
export function decodeDatagram(bytes: Uint8Array, syncId: number):
  { ok: true; records: Uint8Array; count: number } | { ok: false; reason: DatagramRejection } {
  if (bytes.length < HEADER_SIZE) return { ok: false, reason: "short" };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== SYNC_VERSION) return { ok: false, reason: "version" };
  if (bytes[1] !== TYPE_CONNECTIONS || bytes[3] !== 0) return { ok: false, reason: "type" };
  if (bytes[2] !== syncId) return { ok: false, reason: "sync_id" };
  const count = dv.getUint16(4);
  if (count === 0 || count > RECORDS_PER_DATAGRAM || dv.getUint16(6) !== bytes.length || bytes.length !== HEADER_SIZE + count * REC_SIZE) {
    return { ok: false, reason: "length" };
  }
  if (dv.getUint32(8) !== fnv1a(bytes, 8, 12)) return { ok: false, reason: "checksum" };
  return { ok: true, records: bytes.subarray(HEADER_SIZE), count };
}
