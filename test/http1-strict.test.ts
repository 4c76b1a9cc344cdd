// Strict parsing on the socket path: nothing ambiguous reaches a server. Each case sends raw
// bytes and checks both the answer and that the upstream received nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rawExchange, startSink, statuses, type Sink } from "./helpers/raw.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { freePort } from "./helpers/backends.ts";

let sink: Sink, fulcrum: Running, port: number;

before(async () => {
  sink = await startSink();
  port = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${port}
    max_header_size: 4k
    max_headers: 20
    max_body_size: 1k
    header_timeout: 300ms
pools:
  sink: { servers: [127.0.0.1:${sink.port}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  await sink?.stop();
});

const H = "Host: x.test\r\n";

// [name, raw request, expected status]
const REJECTED: [string, string, number][] = [
  ["Content-Length and Transfer-Encoding together", `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ["differing Content-Length values", `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400],
  ["a Content-Length list that differs", `POST / HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!`, 400],
  ["a malformed Content-Length", `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400],
  ["a negative Content-Length", `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400],
  ["Transfer-Encoding gzip", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, 400],
  ["Transfer-Encoding chunked then gzip", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, 400],
  ["Transfer-Encoding twice", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ["a padded Transfer-Encoding value", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n`, 400],
  ["a chunk size that is not hex", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`, 400],
  ["a chunk size with a sign", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n`, 400],
  ["an oversized chunk size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n0\r\n\r\n`, 400],
  ["a chunk extension with a control character", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n`, 400],
  ["chunk data longer than its size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`, 400],
  ["a bare LF after a chunk size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`, 400],
  ["Transfer-Encoding in HTTP/1.0", `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ["obs-fold", `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\r\n`, 400],
  ["a space in a header name", `GET / HTTP/1.1\r\n${H}X A: one\r\n\r\n`, 400],
  ["whitespace before the colon", `GET / HTTP/1.1\r\n${H}X-A : one\r\n\r\n`, 400],
  ["a control character in a value", `GET / HTTP/1.1\r\n${H}X-A: o\x01ne\r\n\r\n`, 400],
  ["a NUL in a value", `GET / HTTP/1.1\r\n${H}X-A: o\x00ne\r\n\r\n`, 400],
  ["a bare CR in a value", `GET / HTTP/1.1\r\n${H}X-A: o\rne\r\n\r\n`, 400],
  ["bare LF line ends", `GET / HTTP/1.1\n${H.replace("\r\n", "\n")}\n\r\n\r\n`, 400],
  ["a header line without a colon", `GET / HTTP/1.1\r\n${H}NoColon\r\n\r\n`, 400],
  ["two spaces in the request line", `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
  ["a tab in the request target", `GET /a\tb HTTP/1.1\r\n${H}\r\n`, 400],
  ["an unknown HTTP version", `GET / HTTP/1.2\r\n${H}\r\n`, 400],
  ["a malformed version", `GET / HTTPS/1.1\r\n${H}\r\n`, 400],
  ["a lowercase version", `GET / http/1.1\r\n${H}\r\n`, 400],
  ["HTTP/1.1 without Host", `GET / HTTP/1.1\r\nX-A: 1\r\n\r\n`, 400],
  ["two Host headers", `GET / HTTP/1.1\r\n${H}${H}\r\n`, 400],
  ["a target that is not a path", `GET foo HTTP/1.1\r\n${H}\r\n`, 400],
  ["a head over max_header_size", `GET / HTTP/1.1\r\n${H}X-Big: ${"a".repeat(5000)}\r\n\r\n`, 431],
  ["more headers than max_headers", `GET / HTTP/1.1\r\n${H}${Array.from({ length: 25 }, (_, i) => `X-${i}: v\r\n`).join("")}\r\n`, 431],
  ["a Content-Length over max_body_size", `POST / HTTP/1.1\r\n${H}Content-Length: 2000\r\n\r\n`, 413],
  ["a chunked body over max_body_size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n800\r\n${"a".repeat(2048)}\r\n0\r\n\r\n`, 413],
];

for (const [name, raw, status] of REJECTED) {
  test(`strict: ${name} gets ${status}, the connection closes, and the upstream sees nothing`, async () => {
    sink.reset();
    const reply = await rawExchange(port, [raw]);
    assert.deepEqual(statuses(reply.text), [status], reply.text);
    assert.ok(reply.closed, "the connection is closed after the error");
    assert.equal(sink.received(), "", "nothing reached the upstream");
  });
}

test("strict: a valid chunked body with extensions and trailers is forwarded byte for byte", async () => {
  sink.reset();
  const body = "5;name=\"v a\"\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n";
  const reply = await rawExchange(port, [`POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`]);
  assert.deepEqual(statuses(reply.text), [200], reply.text);
  assert.ok(sink.received().includes(`\r\n\r\n${body}`), sink.received());
  assert.match(sink.received(), /\r\nTransfer-Encoding: chunked\r\n/);
});

test("strict: identical repeated Content-Length values are one length", async () => {
  sink.reset();
  const reply = await rawExchange(port, [`POST /cl HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`]);
  assert.deepEqual(statuses(reply.text), [200]);
  assert.match(sink.received(), /\r\nContent-Length: 5\r\n/);
  assert.equal(sink.received().match(/content-length/gi)?.length, 1, "sent upstream once");
});

test("strict: pipelined requests are answered in order", async () => {
  sink.reset();
  const reply = await rawExchange(port, [
    `GET /one HTTP/1.1\r\n${H}\r\nPOST /two HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
  ]);
  assert.deepEqual(statuses(reply.text), [200, 200, 200]);
  const order = [...reply.text.matchAll(/sink saw: (\w+) (\/\w+)/g)].map((m) => m[2]);
  assert.deepEqual(order, ["/one", "/two", "/three"]);
});

test("strict: a bad request after a good one on a keep-alive connection gets 400 and nothing more is forwarded", async () => {
  sink.reset();
  const reply = await rawExchange(port, [`GET /ok HTTP/1.1\r\n${H}\r\nGET /bad HTTP/1.1\r\n${H}X : y\r\n\r\nGET /after HTTP/1.1\r\n${H}\r\n`]);
  assert.deepEqual(statuses(reply.text), [200, 400]);
  assert.ok(!sink.received().includes("/bad") && !sink.received().includes("/after"), sink.received());
});

test("strict: a client that sends its head too slowly gets 408 (header_timeout)", async () => {
  sink.reset();
  const reply = await rawExchange(port, ["GET /slow HTTP/1.1\r\n", "Host: x.test\r\n", "X-A: 1\r\n", "X-B: 2\r\n"], 2000, 200);
  assert.deepEqual(statuses(reply.text), [408], reply.text);
  assert.ok(reply.closed);
  assert.equal(sink.received(), "");
});
