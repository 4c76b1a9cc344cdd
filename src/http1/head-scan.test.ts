// The head-scan kernel: its verdict and index on valid heads, each rejection by name, and, on
// thousands of corrupted heads, agreement with a reference reading of the RFC 9112 field-line
// grammar written here independently as one regular expression per line.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  FIELD_WORDS, HEAD_BAD_NAME, HEAD_BAD_VALUE, HEAD_BARE_CR, HEAD_BARE_LF, HEAD_NO_COLON, HEAD_OBS_FOLD, HEAD_OK,
  HEAD_SPACE_BEFORE_COLON, HEAD_TOO_MANY, KNOWN, scanHeaderLines,
} from "./head-scan.ts";

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s % n; };
}

const VALID = [
  "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  "GET /x HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
  "POST /p HTTP/1.1\r\nhost: a\r\nContent-Length: 5\r\nTRANSFER-ENCODING: chunked\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nCookie: a=1; b=2\r\nVia: 1.0 x\r\nX-Real-IP: 1\r\nX-Request-ID: r\r\nExpect: 100-continue\r\nTE: trailers\r\nTrailer: x\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nProxy-Authorization: y\r\nProxy-Authenticate: z\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nX-Forwarded-For: 9.9.9.9\r\nX-Empty:\r\nX-Spaces:   v  \t\r\nX-Obs: caf\xe9\r\n\r\n",
];

/** Scans the header lines of a whole head (start line, fields, blank line). */
function scan(head: Uint8Array, maxFields = 100) {
  const from = head.indexOf(10) + 1;
  const index = new Int32Array(2 + (maxFields + 1) * FIELD_WORDS);
  const code = scanHeaderLines(head, from, head.length - 2, index, maxFields);
  return { code, index: Array.from(index.subarray(0, 2 + index[1] * FIELD_WORDS)) };
}

// field-line = field-name ":" OWS field-value OWS CRLF, a value starting and ending with a
// visible byte (VCHAR or obs-text) with SP/HTAB only inside.
const FIELD_LINE = /([!#$%&'*+.^_`|~0-9A-Za-z-]+):([ \t]*)((?:[\x21-\x7e\x80-\xff](?:[ \t\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?)[ \t]*\r\n/y;

/** The reference verdict: null when the header lines break the grammar, else the index words. */
function reference(head: Uint8Array, maxFields: number): number[] | "too many" | null {
  const text = String.fromCharCode(...head);
  const from = text.indexOf("\n") + 1, end = text.length - 2;
  const words: number[] = [];
  let at = from;
  while (at < end) {
    FIELD_LINE.lastIndex = at;
    const m = FIELD_LINE.exec(text);
    if (!m || m.index + m[0].length > end) return null;
    if (words.length / FIELD_WORDS >= maxFields) return "too many";
    const nameEnd = at + m[1].length, valueStart = nameEnd + 1 + m[2].length;
    words.push(at, nameEnd, valueStart, valueStart + m[3].length, KNOWN.indexOf(m[1].toLowerCase() as typeof KNOWN[number]) + 1);
    at += m[0].length;
  }
  return [HEAD_OK, words.length / FIELD_WORDS, ...words];
}

test("head scan: valid heads pass with the reference index, and every well-known field is classified", () => {
  for (const text of VALID) {
    const r = scan(enc(text));
    assert.equal(r.code, HEAD_OK, text);
    assert.deepEqual(r.index, reference(enc(text), 100), text);
  }
  const r = scan(enc(VALID[2]));
  const ids = new Set<number>();
  for (let k = 0; k < r.index[1]; k++) ids.add(r.index[2 + k * FIELD_WORDS + 4]);
  for (let id = 1; id <= KNOWN.length; id++) assert.ok(ids.has(id), `${KNOWN[id - 1]} classified`);
});

test("head scan: each malformed field line gets its own verdict", () => {
  const cases: [string, number][] = [
    ["X-A: one\r\n two\r\n", HEAD_OBS_FOLD],
    ["NoColon\r\n", HEAD_NO_COLON],
    ["X A: one\r\n", HEAD_SPACE_BEFORE_COLON],
    ["X-A : one\r\n", HEAD_SPACE_BEFORE_COLON],
    ["X-A\t: one\r\n", HEAD_SPACE_BEFORE_COLON],
    [": no name\r\n", HEAD_BAD_NAME],
    ["X(A): one\r\n", HEAD_BAD_NAME],
    ["X-A: o\x01ne\r\n", HEAD_BAD_VALUE],
    ["X-A: o\x00ne\r\n", HEAD_BAD_VALUE],
    ["X-A: o\x7fne\r\n", HEAD_BAD_VALUE],
    ["X-A: o\nne\r\n", HEAD_BARE_LF],
    ["X-A: o\rne\r\n", HEAD_BARE_CR],
    ["X-A\n: one\r\n", HEAD_BARE_LF],
  ];
  for (const [line, code] of cases) {
    const head = enc(`GET / HTTP/1.1\r\nHost: a\r\n${line}\r\n`);
    assert.equal(scan(head).code, code, JSON.stringify(line));
    assert.equal(reference(head, 100), null, `the reference rejects ${JSON.stringify(line)} too`);
  }
});

test("head scan: more fields than the limit is its own verdict", () => {
  const head = enc(`GET / HTTP/1.1\r\n${Array.from({ length: 5 }, (_, i) => `X-${i}: v\r\n`).join("")}\r\n`);
  assert.equal(scan(head, 5).code, HEAD_OK);
  assert.equal(scan(head, 4).code, HEAD_TOO_MANY);
});

test("head scan: 5000 corrupted heads get the reference verdict and index", () => {
  const rnd = lcg(7);
  const nasty = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x41];
  const codes = new Set<number>();
  let accepted = 0;
  for (let i = 0; i < 5000; i++) {
    const head = enc(VALID[rnd(VALID.length)]);
    const from = head.indexOf(10) + 1;
    for (let m = 1 + rnd(3); m > 0; m--) {
      const at = from + rnd(head.length - 2 - from);
      head[at] = rnd(2) ? nasty[rnd(nasty.length)] : rnd(256);
    }
    const maxFields = 1 + rnd(30);
    const r = scan(head, maxFields), ref = reference(head, maxFields);
    const text = JSON.stringify(String.fromCharCode(...head));
    if (ref === null) assert.ok(r.code !== HEAD_OK && r.code !== HEAD_TOO_MANY, `case ${i}: rejected ${text}`);
    else if (ref === "too many") assert.equal(r.code, HEAD_TOO_MANY, `case ${i}: ${text}`);
    else { assert.deepEqual(r.index, ref, `case ${i}: ${text}`); accepted++; }
    codes.add(r.code);
  }
  assert.ok(codes.size >= 6, `the corruptions reach most verdicts: ${[...codes]}`);
  assert.ok(accepted > 100, `some corruptions stay valid (${accepted}), so acceptance is compared too`);
});
