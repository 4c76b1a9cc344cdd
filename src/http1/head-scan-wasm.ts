// The WASM twin of scanHeaderLines, with the same signature: the header lines are copied into
// the module's head buffer, scanned there, and the index copied back with offsets restored.
// Measured slower than the TS kernel on both runtimes (the copies cost more than the scan saves:
// bench/RESULTS.md), so the socket path uses the TS kernel; this twin keeps both honest in tests.
import { HEADBUF_OFF, HEADBUF_SIZE, HEADIDX_MAX_FIELDS, HEADIDX_OFF } from "../core/layout.ts";
import type { DataPlane } from "../core/dataplane.ts";
import { FIELD_WORDS, HEAD_TOO_MANY } from "./head-scan.ts";

export type ScanHeaderLines = (buf: Uint8Array, from: number, end: number, index: Int32Array, maxFields: number) => number;

export function wasmScanHeaderLines(dp: DataPlane): ScanHeaderLines | null {
  const scan = dp.wasmScanHead;
  if (!scan) return null;
  const bytes = new Uint8Array(dp.memory, HEADBUF_OFF, HEADBUF_SIZE);
  const out = new Int32Array(dp.memory, HEADIDX_OFF, 2 + HEADIDX_MAX_FIELDS * FIELD_WORDS);
  return (buf, from, end, index, maxFields) => {
    const len = end + 2 - from; // the lines and the blank line's CRLF
    if (len > HEADBUF_SIZE || maxFields > HEADIDX_MAX_FIELDS) { index[0] = HEAD_TOO_MANY; index[1] = 0; return HEAD_TOO_MANY; }
    for (let i = 0; i < len; i++) bytes[i] = buf[from + i];
    const code = scan(0, end - from, maxFields);
    const n = out[1];
    index[0] = code;
    index[1] = n;
    for (let k = 0; k < n; k++) {
      const at = 2 + k * FIELD_WORDS;
      index[at] = out[at] + from;
      index[at + 1] = out[at + 1] + from;
      index[at + 2] = out[at + 2] + from;
      index[at + 3] = out[at + 3] + from;
      index[at + 4] = out[at + 4];
    }
    return code;
  };
}
