// The HTTP check's response reader over the HTTP/1 codec: status, kept body and connection reuse
// for each kind of framing, the same whatever the read boundaries; what it rejects, and how.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HttpResponseError, HttpResponseReader } from "./http-response.ts";

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
const text = (b: Uint8Array) => String.fromCharCode(...b);

interface Read { status: number; body: string; bodyBytes: number; keepAlive: boolean; complete: boolean }

/** Feeds the response in pieces cut at `cuts`, then ends the connection when `close`. */
function read(response: string, cuts: number[] = [], method = "GET", close = false): Read {
  const reader = new HttpResponseReader(true, 1 << 20, method);
  const bytes = enc(response), bounds = [0, ...cuts, bytes.length];
  let complete = false;
  for (let k = 0; k + 1 < bounds.length && !complete; k++) complete = reader.feed(bytes.slice(bounds[k], bounds[k + 1]));
  if (close && !complete) { reader.end(); complete = reader.done; }
  return { status: reader.status, body: text(reader.body()), bodyBytes: reader.bodyBytes, keepAlive: reader.keepAlive, complete };
}

// [name, response, method, ends with the close, expected]
const CASES: [string, string, string, boolean, Read][] = [
  ["Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", false,
    { status: 200, body: "hello", bodyBytes: 5, keepAlive: true, complete: true }],
  ["chunked with extensions and trailers", "HTTP/1.1 302 Found\r\nTransfer-Encoding: chunked\r\n\r\n3;a=1\r\nhel\r\n2 ; b=\"x\"\r\nlo\r\n0\r\nX-Sum: 5\r\n\r\n", "GET", false,
    { status: 302, body: "hello", bodyBytes: 5, keepAlive: true, complete: true }],
  ["an interim 100 before the final head", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", "GET", false,
    { status: 201, body: "ok", bodyBytes: 2, keepAlive: true, complete: true }],
  ["Connection: close", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "GET", false,
    { status: 200, body: "ok", bodyBytes: 2, keepAlive: false, complete: true }],
  ["HTTP/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET", false,
    { status: 200, body: "ok", bodyBytes: 2, keepAlive: false, complete: true }],
  ["a body until the close", "HTTP/1.1 200 OK\r\n\r\nto the end", "GET", true,
    { status: 200, body: "to the end", bodyBytes: 10, keepAlive: false, complete: true }],
  ["a HEAD response", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "HEAD", false,
    { status: 200, body: "", bodyBytes: 0, keepAlive: true, complete: true }],
  ["204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", false,
    { status: 204, body: "", bodyBytes: 0, keepAlive: true, complete: true }],
];

test("http check reader: each framing gives the same status, body and reuse however the reads are cut", () => {
  for (const [name, response, method, close, expected] of CASES) {
    assert.deepEqual(read(response, [], method, close), expected, name);
    for (let cut = 1; cut < response.length; cut++) assert.deepEqual(read(response, [cut], method, close), expected, `${name}, cut at ${cut}`);
  }
});

test("http check reader: bytes after the response in the same read: complete, and the connection is not reused", () => {
  const response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
  for (let cut = 1; cut < response.length - 5; cut++) {
    assert.deepEqual(read(response, [cut]), { status: 200, body: "ok", bodyBytes: 2, keepAlive: false, complete: true }, `cut at ${cut}`);
  }
});

test("http check reader: malformed responses and cut-short ones fail with the reason", () => {
  const fails = (response: string, message: RegExp, close = false) => {
    assert.throws(() => read(response, [], "GET", close), (e: unknown) => e instanceof HttpResponseError && message.test(e.message), response);
  };
  fails("SSH-2.0-OpenSSH\r\n\r\n", /^invalid response: malformed status line/);
  fails("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", /^invalid response: both Content-Length and Transfer-Encoding/);
  fails("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", /^invalid response: malformed Content-Length/);
  fails("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", /^invalid response: obsolete line folding/);
  fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGET / HTTP/1.1\r\n\r\n", /^invalid chunked body: whitespace before the colon in a trailer field/);
  fails("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /^invalid chunked body: chunk size is not hexadecimal/);
  fails("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", /^connection closed mid-response \(10 of 100 body bytes\)$/, true);
  fails("HTTP/1.1 200 OK\r\nContent-", /^connection closed mid-header$/, true);
  fails("", /^connection closed before any response$/, true);
  fails(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70_000)}\r\n\r\n`, /^response header larger than 64 KiB$/);
});
