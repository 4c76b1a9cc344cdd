// Response heads: how the body is framed (by method and status too), whether the connection
// stays open, and the status lines refused as a bad response (502).
import { test } from "node:test";
import assert from "node:assert/strict";
import { HeadError, indexFor } from "./head.ts";
import { parseResponseHead } from "./response-head.ts";

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

function parse(text: string, method = "GET") {
  const buf = enc(text + "BODY"); // body bytes may follow the head in the buffer
  return parseResponseHead(buf, text.length, method, indexFor(20));
}

test("response head: the body's framing follows method, status and fields", () => {
  const cases: [string, string, string, boolean, number][] = [
    // [head, method, body, keepAlive, contentLength]
    ["HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "GET", "length", true, 4],
    ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", "chunked", true, -1],
    ["HTTP/1.1 200 OK\r\n\r\n", "GET", "close", false, -1],
    ["HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", "HEAD", "none", true, 4],
    ["HTTP/1.1 204 No Content\r\n\r\n", "GET", "none", true, -1],
    ["HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "GET", "none", true, 9],
    ["HTTP/1.1 100 Continue\r\n\r\n", "POST", "none", true, -1],
    ["HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", "none", true, -1],
    ["HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\n", "GET", "length", false, 4],
    ["HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n", "GET", "length", false, 4],
    ["HTTP/1.0 200 OK\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\n", "GET", "length", true, 4],
  ];
  for (const [head, method, body, keepAlive, contentLength] of cases) {
    const r = parse(head, method);
    assert.deepEqual([r.body, r.keepAlive, r.contentLength], [body, keepAlive, contentLength], `${method} ${JSON.stringify(head)}`);
  }
});

test("response head: status, version, and where the status line ends (its reason phrase is copied)", () => {
  const r = parse("HTTP/1.1 404 Not  Found\t!\r\nContent-Length: 0\r\n\r\n");
  assert.deepEqual([r.status, r.minor, r.statusLineEnd], [404, 1, "HTTP/1.1 404 Not  Found\t!".length]);
  assert.equal(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n").statusLineEnd, 12, "no reason phrase");
});

test("response head: malformed status lines and ambiguous framing are a bad response (502)", () => {
  const refused: [string, string][] = [
    ["HTTP/1.2 200 OK\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1 2000 OK\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1 099 Low\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1 20x OK\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1  200 OK\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1 200 O\x01K\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1 200 OK\n\r\n", "malformed status line from upstream"],
    ["http/1.1 200 OK\r\n\r\n", "malformed status line from upstream"],
    ["ICY 200 OK\r\n\r\n", "malformed status line from upstream"],
    ["HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "obsolete line folding"],
  ];
  for (const [head, reason] of refused) {
    assert.throws(() => parse(head), (e: unknown) => e instanceof HeadError && e.status === 502 && e.reason === reason, JSON.stringify(head));
  }
  assert.throws(() => parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
    (e: unknown) => e instanceof HeadError && e.status === 502 && e.reason === "both Content-Length and Transfer-Encoding");
});
