// HPACK Huffman decoding (RFC 7541 §5.2) over the nibble table the TS side wrote at
// HUFF_TABLE_OFF (src/http2/huffman-code.ts builds it). TS twin: src/http2/huffman.ts.
import { HUFF_TABLE_OFF, HUFF_IN_OFF, HUFF_OUT_OFF, HUFF_STATE_OFF, HUFF_EMIT, HUFF_FAIL, HUFF_ACCEPT } from "./layout";

// Decodes len bytes at HUFF_IN_OFF into HUFF_OUT_OFF, starting in `state` (0 for a new string;
// the HUFF_STATE_OFF word of the previous call to go on). Returns the bytes written, or -1 when
// the input holds EOS. The state it ends in (with HUFF_ACCEPT when the string may end there) is
// left at HUFF_STATE_OFF.
export function huffDecode(len: i32, state: i32): i32 {
  let s: u32 = <u32>(state & 0xff);
  let n: i32 = 0;
  let e: u32 = <u32>state & HUFF_ACCEPT;
  for (let i = 0; i < len; i++) {
    const b = <u32>load<u8>(HUFF_IN_OFF + i);
    e = load<u32>(HUFF_TABLE_OFF + (((s << 4) | (b >> 4)) << 2));
    if (e & HUFF_FAIL) return -1;
    if (e & HUFF_EMIT) { store<u8>(HUFF_OUT_OFF + n, <u8>(e >> 8)); n++; }
    e = load<u32>(HUFF_TABLE_OFF + ((((e & 0xff) << 4) | (b & 15)) << 2));
    if (e & HUFF_FAIL) return -1;
    if (e & HUFF_EMIT) { store<u8>(HUFF_OUT_OFF + n, <u8>(e >> 8)); n++; }
    s = e & 0xff;
  }
  store<i32>(HUFF_STATE_OFF, <i32>(s | (e & HUFF_ACCEPT)));
  return n;
}
