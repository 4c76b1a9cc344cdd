// The chunked reader: where a body ends and what it carries, fed whole, split at every byte
// offset and a byte at a time; well-formed and malformed chunk extensions; trailer fields judged
// as the head scan judges header fields; the size and count bounds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChunkedReader, type ChunkedLimits } from "./chunked.ts";
import { FIELD_WORDS, HEAD_OK, HEAD_TOO_MANY, scanHeaderLines } from "./head-scan.ts";

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
const text = (b: Uint8Array) => String.fromCharCode(...b);

interface Outcome {
  /** Bytes that belong to the body, or -1. */
  consumed: number;
  done: boolean;
  data: string;
  error: string | null;
  /** Offset of the byte the reader failed on (byte-at-a-time feeding only). */
  failedAt?: number;
}

/** Feeds `bytes` in the given pieces (cut offsets), as a socket would hand them over. */
function read(bytes: Uint8Array, cuts: number[] = [], limits: ChunkedLimits = {}): Outcome {
  let data = "";
  const r = new ChunkedReader(limits, (buf, s, e) => { data += text(buf.subarray(s, e)); });
  let consumed = 0;
  const bounds = [0, ...cuts, bytes.length];
  for (let k = 0; k + 1 < bounds.length && !r.done; k++) {
    const n = r.feed(bytes, bounds[k], bounds[k + 1]);
    if (n < 0) return { consumed: -1, done: false, data, error: r.error };
    consumed += n;
  }
  return { consumed, done: r.done, data, error: r.error };
}

function byteAtATime(bytes: Uint8Array, limits: ChunkedLimits = {}): Outcome {
  const r = new ChunkedReader(limits);
  let consumed = 0;
  for (let i = 0; i < bytes.length && !r.done; i++) {
    const n = r.feed(bytes, i, i + 1);
    if (n < 0) return { consumed: -1, done: false, data: "", error: r.error, failedAt: i };
    consumed += n;
  }
  return { consumed, done: r.done, data: "", error: r.error };
}

// [name, body, chunk data it carries]
const VALID: [string, string, string][] = [
  ["one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"],
  ["an empty body", "0\r\n\r\n", ""],
  ["uppercase and lowercase hex, leading zeros", "0A\r\n0123456789\r\n000b\r\nabcdefghijk\r\n00\r\n\r\n", "0123456789abcdefghijk"],
  ["a bare extension name", "5;x\r\nhello\r\n0\r\n\r\n", "hello"],
  ["a token value", "5;name=tok-en.1\r\nhello\r\n0;last\r\n\r\n", "hello"],
  ["a quoted value with spaces and an escape", "5;n=\"a b\\\"c;=\\\\\"\r\nhello\r\n0\r\n\r\n", "hello"],
  ["several extensions", "5;a;b=1;c=\"x\"\r\nhello\r\n0\r\n\r\n", "hello"],
  ["BWS around ; and =", "5 ; a = 1 ;\tb\t=\t\"q\" ; c\r\nhello\r\n0\r\n\r\n", "hello"],
  ["obs-text in a quoted value", "5;n=\"caf\xe9\"\r\nhello\r\n0\r\n\r\n", "hello"],
  ["a trailer field", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", "hello"],
  ["trailers with OWS, empty and obs-text values", "3\r\nabc\r\n0\r\nA:  v  \t\r\nB:\r\nC: caf\xe9 x\r\n\r\n", "abc"],
  ["data holding CRLFs and chunk-like lines", "c\r\n\r\n0\r\n\r\nGET /\r\n0\r\n\r\n", "\r\n0\r\n\r\nGET /"],
];

test("chunked: valid bodies end where they end, whole, split at every offset and a byte at a time", () => {
  for (const [name, body, data] of VALID) {
    // What follows the body (a pipelined request) is not part of it.
    const bytes = enc(body + "GET /next HTTP/1.1\r\n\r\n");
    const whole = read(bytes);
    assert.deepEqual(whole, { consumed: body.length, done: true, data, error: null }, name);
    for (let cut = 1; cut < bytes.length; cut++) assert.deepEqual(read(bytes, [cut]), whole, `${name}, cut at ${cut}`);
    for (let a = 1; a < body.length; a += 3) {
      for (let b = a + 1; b < bytes.length; b += 2) assert.deepEqual(read(bytes, [a, b]), whole, `${name}, cut at ${a} and ${b}`);
    }
    assert.equal(byteAtATime(bytes).consumed, body.length, `${name}, a byte at a time`);
  }
});

test("chunked: a body cut short is not done and has no error", () => {
  const body = "5;a=\"x\"\r\nhello\r\n0\r\nT: v\r\n\r\n";
  for (let len = 0; len < body.length; len++) {
    const r = read(enc(body.slice(0, len)));
    assert.deepEqual([r.consumed, r.done, r.error], [len, false, null], `first ${len} bytes`);
  }
});

// [name, body, the byte offset the reader must stop at: nothing from there on is accepted]
const MALFORMED: [string, string, number][] = [
  ["a size that is not hex", "zz\r\n", 0],
  ["a signed size", "+5\r\nhello\r\n0\r\n\r\n", 0],
  ["a 17-digit size", "00000000000000005\r\n", 16],
  ["a size of 2^52", "10000000000000\r\n", 13],
  ["a bare LF after the size", "5\nhello\r\n0\r\n\r\n", 1],
  ["whitespace at the end of a chunk line", "5 \r\nhello\r\n", 2],
  ["a bare ;", "5;\r\nhello\r\n", 2],
  ["; followed by BWS only", "5; \r\nhello\r\n", 3],
  ["an extension without a name", "5;=x\r\nhello\r\n", 2],
  ["= without a value", "5;a=\r\nhello\r\n", 4],
  ["an unterminated quote", "5;a=\"xy\r\nhello\r\n", 7],
  ["a control character in a quoted value", "5;a=\"x\x01\"\r\nhello\r\n", 6],
  ["a DEL in a quoted value", "5;a=\"x\x7f\"\r\nhello\r\n", 6],
  ["a control character as a value", "5;a=\x01\r\nhello\r\n", 4],
  ["a bad token character in a name", "5;a/b\r\nhello\r\n", 3],
  ["a bad token character in a value", "5;a=b/c\r\nhello\r\n", 5],
  ["two values", "5;a=b c\r\nhello\r\n", 6],
  ["text after a quoted value", "5;a=\"b\"c\r\nhello\r\n", 7],
  ["a bare CR in a chunk line", "5;a\rx\nhello\r\n", 4],
  ["chunk data longer than its size", "3\r\nhello\r\n0\r\n\r\n", 6],
  ["chunk data without its CRLF", "5\r\nhello0\r\n\r\n", 8],
  ["a trailer line without a colon (a smuggled request line)", "0\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 6],
  ["a trailer line without a colon or spaces", "0\r\nNoColon\r\n\r\n", 10],
  ["whitespace before a trailer colon", "0\r\nX-A : v\r\n\r\n", 6],
  ["obs-fold in the trailers", "0\r\nX-A: v\r\n  w\r\n\r\n", 11],
  ["a trailer without a name", "0\r\n: v\r\n\r\n", 3],
  ["a bad character in a trailer name", "0\r\nX(A): v\r\n\r\n", 4],
  ["a control character in a trailer value", "0\r\nX-A: v\x01\r\n\r\n", 9],
  ["a NUL in a trailer value", "0\r\nX-A: \x00\r\n\r\n", 8],
  ["a bare LF in a trailer value", "0\r\nX-A: v\nw\r\n\r\n", 9],
  ["a bare CR in a trailer value", "0\r\nX-A: v\rw\r\n\r\n", 10],
  ["a bare LF ending the trailers", "0\r\nX-A: v\r\n\n", 11],
  ["a bare CR ending the trailers", "0\r\n\rx", 4],
  ["a bare LF after the last chunk", "0\n\r\n", 1],
];

test("chunked: malformed bodies are rejected at the first bad byte, however they are split", () => {
  for (const [name, body, at] of MALFORMED) {
    const bytes = enc(body);
    const one = byteAtATime(bytes);
    assert.equal(one.consumed, -1, `${name}: rejected`);
    assert.equal(one.failedAt, at, `${name}: rejected at byte ${at} (${JSON.stringify(body[at])}), not ${one.failedAt}: ${one.error}`);
    assert.equal(read(bytes).consumed, -1, `${name}: rejected whole`);
    for (let cut = 1; cut < bytes.length; cut++) assert.equal(read(bytes, [cut]).consumed, -1, `${name}, cut at ${cut}`);
  }
});

test("chunked: errors say what is wrong", () => {
  const error = (body: string) => read(enc(body)).error;
  assert.equal(error("0\r\nGET / HTTP/1.1\r\n\r\n"), "whitespace before the colon in a trailer field");
  assert.equal(error("0\r\nNoColon\r\n\r\n"), "trailer line without a colon");
  assert.equal(error("0\r\nA: 1\r\n b\r\n\r\n"), "obsolete line folding in the trailers");
  assert.equal(error("5;\r\n"), "chunk extension without a name");
  assert.equal(error("5;a=\"x\r\n"), "unterminated quoted string in a chunk extension");
  assert.equal(error("5 \r\n"), "whitespace at the end of a chunk line");
});

test("chunked: extensions and trailers are bounded in length and count", () => {
  const ext = (n: number) => `1;${"e".repeat(n - 1)}\r\nx\r\n0\r\n\r\n`; // n extension bytes
  const limits = { maxExtensionBytes: 64, maxTrailerBytes: 40, maxTrailerFields: 3 };
  assert.equal(read(enc(ext(64)), [], limits).done, true, "extensions at the limit");
  assert.match(read(enc(ext(65)), [], limits).error ?? "", /chunk extensions longer than 64 bytes/);
  // The limit is per chunk line, not per body.
  assert.equal(read(enc(`1;${"e".repeat(63)}\r\nx\r\n`.repeat(5) + "0\r\n\r\n"), [], limits).done, true);
  const trailers = (lines: string[]) => `0\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`;
  assert.equal(read(enc(trailers(["A: 1", "B: 2", "C: 3"])), [], limits).done, true, "fields at the limit");
  assert.match(read(enc(trailers(["A: 1", "B: 2", "C: 3", "D: 4"])), [], limits).error ?? "", /more than 3 trailer fields/);
  assert.equal(read(enc(trailers([`A: ${"v".repeat(33)}`])), [], limits).done, true, "40 trailer bytes: 38 of field line and the final CRLF");
  assert.match(read(enc(trailers([`A: ${"v".repeat(34)}`])), [], limits).error ?? "", /trailer section larger than 40 bytes/);
});

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
}

test("chunked: trailer sections get the head scan's verdict on 5000 corrupted ones", () => {
  const rnd = lcg(11);
  const lines = ["X-Checksum: abc", "Expires: Wed, 21 Oct 2015 07:28:00 GMT", "A:", "B:   v  \t", "Obs: caf\xe9", "T-1.2~x: \"q\""];
  const nasty = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x41];
  let accepted = 0, rejected = 0;
  for (let i = 0; i < 5000; i++) {
    const n = 1 + rnd(4);
    const section = enc(Array.from({ length: n }, () => `${lines[rnd(lines.length)]}\r\n`).join("") + "\r\n");
    for (let m = rnd(3); m > 0; m--) section[rnd(section.length - 2)] = rnd(2) ? nasty[rnd(nasty.length)] : rnd(256);
    const maxFields = 1 + rnd(5);
    const index = new Int32Array(2 + (maxFields + 1) * FIELD_WORDS);
    const code = scanHeaderLines(section, 0, section.length - 2, index, maxFields);
    const body = new Uint8Array([...enc("0\r\n"), ...section]);
    const r = read(body, [rnd(body.length)], { maxTrailerFields: maxFields });
    const ok = r.consumed === body.length && r.done;
    assert.equal(ok, code === HEAD_OK, `case ${i}: ${JSON.stringify(text(section))}: reader ${r.error ?? r.consumed}, head scan ${code}`);
    if (code === HEAD_TOO_MANY) assert.match(r.error ?? "", /more than \d+ trailer fields/, `case ${i}`);
    if (ok) accepted++;
    else rejected++;
  }
  assert.ok(accepted > 500 && rejected > 500, `both verdicts are exercised (${accepted} accepted, ${rejected} rejected)`);
});

test("chunked: kept trailers give their fields, lowercased and trimmed, however the body is split; not kept, none", () => {
  const body = "3\r\nabc\r\n0\r\nX-Checksum:  abc123 \t\r\nGrpc-Status:0\r\nB:\r\n\r\n";
  const bytes = new TextEncoder().encode(body);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const r = new ChunkedReader({ keepTrailers: true });
    r.feed(bytes, 0, cut);
    r.feed(bytes, cut, bytes.length);
    assert.ok(r.done);
    assert.deepEqual(r.trailers(), [["x-checksum", "abc123"], ["grpc-status", "0"], ["b", ""]], `cut at ${cut}`);
  }
  const plain = new ChunkedReader();
  plain.feed(bytes, 0, bytes.length);
  assert.deepEqual(plain.trailers(), []);
});
