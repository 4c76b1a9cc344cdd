// The Huffman decoder's WASM kernel against its TS twin: the same output, or the same refusal,
// on RFC 7541's strings, random strings of every length class, and random (mostly invalid) bytes.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../runtime/index.ts";
import { huffmanEncodeString, huffmanStringLength } from "./huffman.ts";
import { type HuffmanDecoder, tsHuffman, wasmHuffman } from "./huffman-kernel.ts";
import { HUFF_IN_SIZE } from "../core/layout.ts";

let wasm: HuffmanDecoder;
before(async () => { wasm = wasmHuffman(await runtime.wasmBytes()); });

// A fixed-seed PRNG (xorshift32): failures reproduce.
let seed = 0x2545f491;
const rand = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed; };

function encode(src: Uint8Array): Uint8Array {
  let text = "";
  for (const b of src) text += String.fromCharCode(b);
  const out = new Uint8Array(huffmanStringLength(text));
  huffmanEncodeString(text, out, 0);
  return out;
}

function both(input: Uint8Array): [number, Uint8Array, number, Uint8Array] {
  const a = new Uint8Array(Math.ceil(input.length * 8 / 5) + 8), b = new Uint8Array(a.length);
  const na = wasm.decode(input, 0, input.length, a), nb = tsHuffman.decode(input, 0, input.length, b);
  return [na, a.subarray(0, Math.max(0, na)), nb, b.subarray(0, Math.max(0, nb))];
}

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (h) => parseInt(h, 16));

test("huffman: WASM and TS decode RFC 7541's Huffman strings (C.4, C.6) to the same text", () => {
  const cases: [string, string][] = [
    ["f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"], ["a8eb 1064 9cbf", "no-cache"],
    ["25a8 49e9 5ba9 7d7f", "custom-key"], ["25a8 49e9 5bb8 e8b4 bf", "custom-value"], ["6402", "302"], ["aec3 771a 4b", "private"],
    ["d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3", "https://www.example.com"], ["640e ff", "307"], ["9bd9 ab", "gzip"],
    ["94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
      "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ];
  for (const [h, text] of cases) {
    const [na, a, nb, b] = both(hex(h));
    assert.equal(na, text.length, text);
    assert.deepEqual(a, b, text);
    assert.equal(String.fromCharCode(...a), text);
  }
});

test("huffman: WASM and TS agree on 3000 random strings (every byte value, lengths 0 to 40 KiB, past one kernel call)", () => {
  for (let k = 0; k < 3000; k++) {
    const len = k < 2990 ? rand() % (k % 10 === 0 ? 2000 : 64) : HUFF_IN_SIZE * 2 + (rand() % 5000);
    const src = new Uint8Array(len);
    // Mostly header-like text, sometimes any byte (long codes up to 30 bits).
    for (let i = 0; i < len; i++) src[i] = k % 3 === 0 ? rand() & 0xff : 0x20 + (rand() % 95);
    const [na, a, nb, b] = both(encode(src));
    assert.equal(na, len);
    assert.equal(nb, len);
    assert.deepEqual(a, src);
    assert.deepEqual(b, src);
  }
});

test("huffman: WASM and TS refuse the same random byte strings (EOS inside, bad padding) and accept the same", () => {
  let refused = 0;
  for (let k = 0; k < 3000; k++) {
    const input = new Uint8Array(1 + (rand() % 40));
    for (let i = 0; i < input.length; i++) input[i] = k % 2 ? rand() & 0xff : 0xff; // runs of ones reach EOS
    const [na, a, nb, b] = both(input);
    assert.equal(na, nb, `input ${[...input]}`);
    assert.deepEqual(a, b);
    if (na < 0) refused++;
  }
  assert.ok(refused > 500 && refused < 3000, `some refused, some not (${refused})`);
  // Padding: 8 one bits is too long; 7 is fine; zeros are not the EOS prefix.
  assert.equal(both(hex("ff"))[0], -1);
  assert.equal(both(hex("fe"))[0], -1);
  assert.equal(both(hex("1f"))[0], 1); // '0' (00000) + 111
  assert.equal(both(hex("18"))[0], -1); // '0' + 000
});
