// HPACK against RFC 7541 Appendix C: each example block decodes to its header list, leaves the
// dynamic table at the size the RFC gives, and (C.4, C.6) our encoder's Huffman matches its bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Decoder, decodeInteger, Encoder, encodeInteger, HpackError } from "./hpack.ts";
import { huffmanEncodeString, huffmanStringLength } from "./huffman.ts";
import { HUFFMAN_LENGTHS } from "./huffman-code.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!, (h) => parseInt(h, 16));
type Fields = [string, string][];

const REQUESTS: Fields[] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]],
  [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]],
];
const RESPONSES: Fields[] = [
  [[":status", "302"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]],
  [[":status", "307"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]],
  [[":status", "200"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:22 GMT"], ["location", "https://www.example.com"],
    ["content-encoding", "gzip"], ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"]],
];

function run(blocks: string[], expected: Fields[], sizes: number[], tableSize = 4096): void {
  const d = new Decoder(tableSize);
  blocks.forEach((b, i) => {
    const out = d.decode(hex(b), 1 << 20);
    assert.deepEqual(out.fields, expected[i], `block ${i + 1}`);
    assert.equal(d.tableSize, sizes[i], `table size after block ${i + 1}`);
  });
}

test("hpack: C.2 single representations (literal with, without and never indexed; indexed)", () => {
  run(["400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"], [[["custom-key", "custom-header"]]], [55]);
  run(["040c 2f73 616d 706c 652f 7061 7468"], [[[":path", "/sample/path"]]], [0]);
  run(["1008 7061 7373 776f 7264 0673 6563 7265 74"], [[["password", "secret"]]], [0]);
  run(["82"], [[[":method", "GET"]]], [0]);
});

test("hpack: C.3 requests without Huffman, dynamic table carried across blocks", () => {
  run([
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
  ], REQUESTS, [57, 110, 164]);
});

const C4 = [
  "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
  "8286 84be 5886 a8eb 1064 9cbf",
  "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];
test("hpack: C.4 requests with Huffman", () => run(C4, REQUESTS, [57, 110, 164]));

test("hpack: C.5 responses without Huffman in a 256-byte table, with eviction", () => {
  run([
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
  ], RESPONSES, [222, 222, 215], 256);
});

test("hpack: C.6 responses with Huffman in a 256-byte table", () => {
  run([
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ], RESPONSES, [222, 222, 215], 256);
});

test("hpack: the Huffman code is complete (Kraft sum 1) and the encoder reproduces C.4's strings", () => {
  let kraft = 0;
  for (const len of HUFFMAN_LENGTHS) kraft += 2 ** -len;
  assert.equal(kraft, 1);
  for (const [s, h] of [["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"], ["no-cache", "a8eb 1064 9cbf"], ["custom-key", "25a8 49e9 5ba9 7d7f"], ["custom-value", "25a8 49e9 5bb8 e8b4 bf"]]) {
    const out = new Uint8Array(64);
    assert.equal(huffmanStringLength(s), hex(h).length, s);
    assert.deepEqual(out.subarray(0, huffmanEncodeString(s, out, 0)), hex(h), s);
  }
});

test("hpack: integers round-trip at every prefix (C.1 included) and overflow is refused", () => {
  const out = new Uint8Array(8);
  assert.deepEqual(out.subarray(0, encodeInteger(out, 0, 1337, 5, 0)), hex("1f9a0a")); // C.1.2
  assert.deepEqual(out.subarray(0, encodeInteger(out, 0, 10, 5, 0)), hex("0a")); // C.1.1
  for (const prefix of [4, 5, 6, 7]) {
    for (const n of [0, 1, (1 << prefix) - 2, (1 << prefix) - 1, 1 << prefix, 127, 128, 16383, 16384, 2 ** 31 - 1]) {
      const end = encodeInteger(out, 0, n, prefix, 0);
      const pos = { at: 0 };
      assert.equal(decodeInteger(out.subarray(0, end), pos, prefix), n);
      assert.equal(pos.at, end);
    }
  }
  assert.throws(() => decodeInteger(hex("7fffffffff0f"), { at: 0 }, 7), HpackError);
  assert.throws(() => decodeInteger(hex("7f80"), { at: 0 }, 7), HpackError); // ends inside
});

test("hpack: malformed blocks are COMPRESSION errors: index 0, beyond the table, size update too large or late, bad Huffman", () => {
  for (const [block, why] of [
    ["80", "index 0"], ["be", "dynamic index with an empty table"], ["3fe21f", "size update above 4096"],
    ["823f01", "size update after a field"], ["0003616263", "string past the end"],
    ["008100", "Huffman string padded with zeros"],
  ]) assert.throws(() => new Decoder().decode(hex(block), 1 << 20), HpackError, why);
  // EOS (30 ones) inside a Huffman string.
  assert.throws(() => new Decoder().decode(hex("0084ffffffff00"), 1 << 20), HpackError);
});

test("hpack: a list over the size limit is cut there but decoded to the end, so the table stays in step", () => {
  const d = new Decoder();
  // custom-key: custom-header into the table, then ten references to it.
  const block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572" + "be".repeat(10));
  const out = d.decode(block, 200);
  assert.equal(out.truncated, true);
  assert.equal(out.fields.length, 3); // 3 * 55 = 165 <= 200 < 220
  assert.equal(out.listSize, 11 * 55);
  assert.deepEqual(d.decode(hex("be"), 200).fields, [["custom-key", "custom-header"]]);
});

test("hpack: what the encoder writes, the decoder reads back, across blocks and table resizes", () => {
  const e = new Encoder(), d = new Decoder();
  const lists: Fields[] = [
    [[":status", "200"], ["content-type", "text/plain"], ["server", "fulcrum"], ["x-custom", "a".repeat(100)]],
    [[":status", "200"], ["content-type", "text/plain"], ["server", "fulcrum"], ["set-cookie", "s=1"], ["content-length", "12"]],
    [[":status", "404"], ["x-\u00e9", "caf\u00e9 \u00ff"], ["x-custom", "b".repeat(3000)]],
  ];
  for (let round = 0; round < 3; round++) {
    for (const l of lists) assert.deepEqual(d.decode(e.encode(l), 1 << 20).fields, l);
    e.setPeerTableSize(round === 0 ? 100 : 4096);
  }
  const again = e.encode(lists[0]);
  assert.ok(again.length < 12, `repeated fields are indexed (${again.length} bytes)`);
});
