// The HPACK Huffman code (RFC 7541 Appendix B) and the nibble-at-a-time decode table that both
// the WASM kernel (wasm/assembly/huffman.ts) and its TS twin (huffman.ts) walk.
//
// The code is canonical: codes of one length are consecutive, in symbol order, and each length's
// first code follows the last of the shorter ones. So the bit length of each of the 257 symbols
// (256 octets and EOS) is the whole table.
const LENGTH_TEXT =
  "13,23,28,28,28,28,28,28,28,24,30,28,28,30,28,28,28,28,28,28,28,28,30,28,28,28,28,28,28,28,28,28," + // 0-31
  "6,10,10,12,13,6,8,11,10,10,8,11,8,6,6,6,5,5,5,6,6,6,6,6,6,6,7,8,15,6,12,10," + // ' ' to '?'
  "13,6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,8,7,8,13,19,13,14,6," + // '@' to '_'
  "15,5,6,5,6,5,6,6,6,5,7,7,6,6,6,5,6,7,6,5,5,6,7,7,7,7,7,15,11,14,13,28," + // '`' to DEL
  "20,22,20,20,22,22,22,23,22,23,23,23,23,23,24,23,24,24,22,23,24,23,23,23,23,21,22,23,22,23,23,24," + // 128-159
  "22,21,20,22,22,23,23,21,23,22,22,24,21,22,23,23,21,21,22,21,23,22,23,23,20,22,22,22,23,22,22,23," + // 160-191
  "26,26,20,19,22,23,22,25,26,26,26,27,27,26,24,25,19,21,26,27,27,26,27,24,21,21,26,26,28,27,27,27," + // 192-223
  "20,24,20,21,22,21,21,23,22,22,25,25,24,24,26,23,26,27,26,26,27,27,27,27,27,28,27,27,27,27,27,26," + // 224-255
  "30"; // EOS

export const EOS = 256;

/** Bit length of each symbol's code. */
export const HUFFMAN_LENGTHS: Uint8Array = Uint8Array.from(LENGTH_TEXT.split(","), Number);

/** Each symbol's code, right-aligned in its length. */
export const HUFFMAN_CODES: Uint32Array = (() => {
  const order = Array.from({ length: 257 }, (_, s) => s).sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  const codes = new Uint32Array(257);
  let code = 0, len = HUFFMAN_LENGTHS[order[0]];
  order.forEach((s, i) => {
    if (i > 0) { code = (code + 1) * 2 ** (HUFFMAN_LENGTHS[s] - len); len = HUFFMAN_LENGTHS[s]; }
    codes[s] = code;
  });
  return codes;
})();

// Decode table entry flags: the layout's (the WASM kernel reads the same table).
import { HUFF_ACCEPT, HUFF_EMIT, HUFF_FAIL } from "../core/layout.ts";
export { HUFF_ACCEPT, HUFF_EMIT, HUFF_FAIL };
/** Decode states: the internal nodes of the code tree (257 leaves, 256 internal nodes). */
export const HUFF_STATES = 256;

/** The decode table: entry [state * 16 + nibble], u32. A state is a node of the code tree; a
 * nibble moves four edges down from it, returning to the root (state 0) after a symbol. Since
 * no code is shorter than 5 bits, a nibble completes at most one symbol. */
export function buildHuffmanDecodeTable(): Uint32Array {
  // The tree: child[node * 2 + bit] is an internal node id, or -(symbol + 1) for a leaf.
  const child = new Int32Array(HUFF_STATES * 2);
  const depth = new Uint8Array(HUFF_STATES), allOnes = new Uint8Array(HUFF_STATES);
  allOnes[0] = 1;
  let nodes = 1;
  for (let s = 0; s <= EOS; s++) {
    const len = HUFFMAN_LENGTHS[s], code = HUFFMAN_CODES[s];
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1, at = node * 2 + bit;
      if (b === 0) { child[at] = -(s + 1); break; }
      if (child[at] === 0) {
        child[at] = nodes;
        depth[nodes] = depth[node] + 1;
        allOnes[nodes] = allOnes[node] & bit;
        nodes++;
      }
      node = child[at];
    }
  }
  const table = new Uint32Array(HUFF_STATES * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state, flags = 0, sym = 0;
      for (let b = 3; b >= 0; b--) {
        const next = child[node * 2 + ((nibble >> b) & 1)];
        if (next < 0) {
          if (-next - 1 === EOS) { flags = HUFF_FAIL; break; }
          flags |= HUFF_EMIT;
          sym = -next - 1;
          node = 0;
        } else node = next;
      }
      if (!(flags & HUFF_FAIL) && allOnes[node] && depth[node] <= 7) flags |= HUFF_ACCEPT;
      table[state * 16 + nibble] = (flags | (sym << 8) | node) >>> 0;
    }
  }
  return table;
}
