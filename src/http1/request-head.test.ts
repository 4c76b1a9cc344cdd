// Request heads: what the request line and the fields mean for forwarding, and every way a
// request line or its Host is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HeadError, indexFor } from "./head.ts";
import { hostOf, parseRequestHead } from "./request-head.ts";

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
const parse = (text: string, maxFields = 20) => parseRequestHead(enc(text), indexFor(maxFields));

test("request head: method, target, path, version, Host and keep-alive", () => {
  const r = parse("POST /a/b?x=1 HTTP/1.1\r\nHost: API.Example.test:8080\r\nContent-Length: 3\r\n\r\n");
  assert.deepEqual(
    [r.method, r.target, r.path, r.minor, r.host, r.hostHeader, r.keepAlive, r.absoluteForm, r.contentLength, r.chunked, r.upgrade],
    ["POST", "/a/b?x=1", "/a/b", 1, "api.example.test", "API.Example.test:8080", true, false, 3, false, null],
  );
  assert.equal(r.targetEnd, "POST /a/b?x=1".length, "the request line up to the version is copied as received");
  assert.equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive, false);
  assert.equal(parse("GET / HTTP/1.0\r\n\r\n").keepAlive, false, "HTTP/1.0 closes unless asked");
  assert.equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive, true);
  const h10 = parse("GET /old HTTP/1.0\r\n\r\n");
  assert.deepEqual([h10.minor, h10.host, h10.hostHeader], [0, "", ""], "HTTP/1.0 may come without Host");
});

test("request head: absolute-form is reduced to origin-form with its authority as Host", () => {
  const r = parse("GET http://Proxy.Test:81/p?q HTTP/1.1\r\n\r\n");
  assert.deepEqual([r.absoluteForm, r.target, r.path, r.host, r.hostHeader], [true, "/p?q", "/p", "proxy.test", "Proxy.Test:81"]);
  assert.equal(parse("GET http://a.test?q=1 HTTP/1.1\r\n\r\n").target, "/?q=1");
  assert.equal(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").target, "*");
});

test("request head: Upgrade counts only with Connection: upgrade", () => {
  assert.equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n").upgrade, "websocket");
  assert.equal(parse("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade, null);
});

test("request head: malformed request lines, targets and Hosts are refused with the reason", () => {
  const refused: [string, number, string][] = [
    ["GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "malformed request line"],
    [" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["GET / http/1.1\r\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "malformed request line"],
    ["GET /\r\n\r\n", 400, "malformed request line"],
    ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "HTTP/2 preface on an HTTP/1.1 port"],
    ["GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request target is not a path"],
    ["GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request target is not a path"],
    ["GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment in the request target"],
    ["GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 request without Host"],
    ["GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host header"],
    ["GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host header"],
    ["GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host header"],
    ["POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding in an HTTP/1.0 request"],
    [`GET / HTTP/1.1\r\nHost: a\r\n${"X: v\r\n".repeat(3)}\r\n`, 431, "more than 3 header fields"],
  ];
  for (const [text, status, reason] of refused) {
    assert.throws(() => parse(text, 3), (e: unknown) => e instanceof HeadError && e.status === status && e.reason === reason,
      `${JSON.stringify(text)}: ${status} ${reason}`);
  }
});

test("request head: hostOf drops the port and keeps IPv6 brackets", () => {
  assert.equal(hostOf("A.test:80"), "a.test");
  assert.equal(hostOf("[::1]:8080"), "[::1]");
  assert.equal(hostOf(""), "");
  assert.equal(hostOf(null), "");
});
