// The head-scan kernel: the WASM twin and the TS kernel give the same verdict and the same index
// for valid heads and for thousands of corrupted ones.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../src/core/wasm.ts";
import { scanHeaderLines, FIELD_WORDS, HEAD_OK, KNOWN } from "../src/http1/head-scan.ts";
import { wasmScanHeaderLines } from "../src/http1/head-scan-wasm.ts";

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

function scanBoth(head: Uint8Array, scanWasm: NonNullable<ReturnType<typeof wasmScanHeaderLines>>, maxFields = 100) {
  const from = head.indexOf(10) + 1; // after the start line
  const end = head.length - 2;
  const a = new Int32Array(2 + (maxFields + 1) * FIELD_WORDS), b = new Int32Array(a.length);
  const ca = scanHeaderLines(head, from, end, a, maxFields);
  const cb = scanWasm(head, from, end, b, maxFields);
  return { ca, cb, a: Array.from(a.subarray(0, 2 + a[1] * FIELD_WORDS)), b: Array.from(b.subarray(0, 2 + b[1] * FIELD_WORDS)) };
}

test("head scan: WASM and TS agree on valid heads, and every well-known field is classified", async () => {
  const scanWasm = wasmScanHeaderLines(await createDataPlane({ seed: 1 }))!;
  for (const text of VALID) {
    const r = scanBoth(enc(text), scanWasm);
    assert.equal(r.ca, HEAD_OK, text);
    assert.deepEqual(r.b, r.a, text);
  }
  const ids = new Set<number>();
  const r = scanBoth(enc(VALID[2]), scanWasm);
  for (let k = 0; k < r.a[1]; k++) ids.add(r.a[2 + k * FIELD_WORDS + 4]);
  for (let id = 1; id <= KNOWN.length; id++) assert.ok(ids.has(id), `${KNOWN[id - 1]} classified`);
});

test("head scan: WASM and TS agree on 5000 corrupted heads and on field limits", async () => {
  const scanWasm = wasmScanHeaderLines(await createDataPlane({ seed: 1 }))!;
  const rnd = lcg(7);
  const nasty = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xff, 0x22, 0x2c, 0x41];
  const codes = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const base = enc(VALID[rnd(VALID.length)]);
    const head = base.slice();
    const from = head.indexOf(10) + 1;
    for (let m = 1 + rnd(3); m > 0; m--) {
      const at = from + rnd(head.length - 2 - from);
      head[at] = rnd(2) ? nasty[rnd(nasty.length)] : rnd(256);
    }
    const r = scanBoth(head, scanWasm, 1 + rnd(30));
    assert.equal(r.cb, r.ca, `case ${i}`);
    assert.deepEqual(r.b, r.a, `case ${i}`);
    codes.add(r.ca);
  }
  assert.ok(codes.size >= 6, `the corruptions reach most verdicts: ${[...codes]}`);
});
