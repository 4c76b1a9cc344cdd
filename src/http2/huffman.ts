// HPACK Huffman coding (RFC 7541 §5.2): the encoder, and the decoder's TS twin of the WASM kernel
// (wasm/assembly/huffman.ts); both decoders walk the same table (huffman-code.ts).
import { buildHuffmanDecodeTable, HUFF_ACCEPT, HUFF_EMIT, HUFF_FAIL, HUFFMAN_CODES, HUFFMAN_LENGTHS } from "./huffman-code.ts";

export const DECODE_TABLE: Uint32Array = buildHuffmanDecodeTable();

/** Decodes src[start, end) into out at 0; returns the decoded length, or -1 for input that is
 * not a valid Huffman string (EOS inside, padding longer than 7 bits or not all ones). `out`
 * must hold (end - start) * 8 / 5 bytes. */
export function huffmanDecodeTs(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  const table = DECODE_TABLE;
  let state = 0, n = 0, accept = HUFF_ACCEPT;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let e = table[(state << 4) | (b >> 4)];
    if (e & HUFF_FAIL) return -1;
    if (e & HUFF_EMIT) out[n++] = (e >> 8) & 0xff;
    e = table[((e & 0xff) << 4) | (b & 15)];
    if (e & HUFF_FAIL) return -1;
    if (e & HUFF_EMIT) out[n++] = (e >> 8) & 0xff;
    state = e & 0xff;
    accept = e & HUFF_ACCEPT;
  }
  return accept ? n : -1;
}

/** Bytes the Huffman encoding of a Latin-1 string (each char one byte) takes. */
export function huffmanStringLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff];
  return (bits + 7) >> 3;
}

/** Encodes a Latin-1 string into out at `at`, padded with the EOS prefix; returns the end offset. */
export function huffmanEncodeString(s: string, out: Uint8Array, at: number): number {
  // Up to 30-bit codes over a < 8-bit remainder: a float accumulator keeps 38+ bits exact.
  let acc = 0, bits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) & 0xff, len = HUFFMAN_LENGTHS[c];
    acc = acc * 2 ** len + HUFFMAN_CODES[c];
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      const byte = Math.floor(acc / 2 ** bits);
      out[at++] = byte;
      acc -= byte * 2 ** bits;
    }
  }
  if (bits > 0) out[at++] = (acc * 2 ** (8 - bits)) | ((1 << (8 - bits)) - 1);
  return at;
}
