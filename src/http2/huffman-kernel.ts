// Which Huffman decoder HPACK runs: the WASM kernel (wasm/assembly/huffman.ts) or its TS twin,
// as the schedulers choose theirs. bench/huffman.bench.ts measures both; the twin is the default
// because it was faster there (bench/RESULTS.md): header strings are short, and the kernel's
// copies in and out of its memory cost more than the table walk.
import { HUFF_ACCEPT, HUFF_IN_OFF, HUFF_IN_SIZE, HUFF_OUT_OFF, HUFF_STATE_OFF, HUFF_TABLE_OFF } from "../core/layout.ts";
import { DECODE_TABLE, huffmanDecodeTs } from "./huffman.ts";

export type HuffmanImpl = "wasm" | "ts";

export interface HuffmanDecoder {
  readonly impl: HuffmanImpl;
  /** Decodes src[start, end) into out from 0; the length, or -1 for an invalid string. */
  decode(src: Uint8Array, start: number, end: number, out: Uint8Array): number;
}

export const tsHuffman: HuffmanDecoder = { impl: "ts", decode: huffmanDecodeTs };

/** The decoder over a WASM instance of the data-plane module (its own instance: the decode
 * buffers are scratch, and HPACK runs on whichever connection reads). */
export function wasmHuffman(module: Uint8Array): HuffmanDecoder {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(module as BufferSource), {});
  const ex = instance.exports as unknown as { memory: WebAssembly.Memory; huffDecode(len: number, state: number): number };
  const mem = new Uint8Array(ex.memory.buffer);
  new Uint32Array(ex.memory.buffer, HUFF_TABLE_OFF, DECODE_TABLE.length).set(DECODE_TABLE);
  const words = new Int32Array(ex.memory.buffer);
  const huffDecode = ex.huffDecode;
  return {
    impl: "wasm",
    decode(src, start, end, out) {
      let state = HUFF_ACCEPT, n = 0;
      for (let at = start; at < end; at += HUFF_IN_SIZE) {
        const len = Math.min(HUFF_IN_SIZE, end - at);
        mem.set(src.subarray(at, at + len), HUFF_IN_OFF);
        const got = huffDecode(len, state);
        if (got < 0) return -1;
        out.set(mem.subarray(HUFF_OUT_OFF, HUFF_OUT_OFF + got), n);
        n += got;
        state = words[HUFF_STATE_OFF >> 2];
      }
      return state & HUFF_ACCEPT ? n : -1;
    },
  };
}

/** The decoder HPACK uses; useHuffman swaps it (tests and the bench compare both). */
export const huffmanDecoder: { decode: HuffmanDecoder["decode"]; impl: HuffmanImpl } = { ...tsHuffman };

export function useHuffman(d: HuffmanDecoder): void {
  huffmanDecoder.decode = d.decode;
  huffmanDecoder.impl = d.impl;
}
