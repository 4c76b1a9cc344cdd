// The access log formatter: nginx's combined columns then the balancer's, JSON lines that parse,
// escaping that keeps a line one ASCII line whatever a client sends.
import { test } from "node:test";
import assert from "node:assert/strict";
import { basicUser, type HttpRecord, LineFormatter } from "./format.ts";
import { parseRequestHead } from "../http1/request-head.ts";
import { indexFor } from "../http1/head.ts";
import { latin1Bytes } from "../http1/bytes.ts";

const NOW = Date.UTC(2026, 11, 2, 0, 19, 23, 456);
/** A real parsed request head with these fields (names as given, values as latin1 bytes). */
const headers = (h: Record<string, string>) =>
  parseRequestHead(latin1Bytes(`GET /a?b=1 HTTP/1.1\r\nHost: x\r\n${Object.entries(h).map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`), indexFor(100));

function record(over: Partial<HttpRecord> = {}): HttpRecord {
  return {
    clientAddress: "192.0.2.7", method: "GET", target: "/a?b=1", protocol: "HTTP/1.1",
    headers: headers({ referer: "http://r.example/", "user-agent": "curl/8" }), status: 200, bodyBytes: 1234,
    upstream: { host: "10.0.0.2", port: 8080 }, upstreamStatus: 200, connectMs: 1, headerMs: 12, startedAt: NOW - 15,
    retries: 1, route: "api", pool: "backend", ...over,
  };
}

/** The local-time stamp the formatter must write for NOW, computed independently. */
function localStamp(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset(), a = Math.abs(off);
  const p = (n: number) => String(n).padStart(2, "0");
  const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
  return `${p(d.getDate())}/${months[d.getMonth()]}/${d.getFullYear()}:${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${off < 0 ? "-" : "+"}${p(Math.floor(a / 60))}${p(a % 60)}`;
}

test("format: a combined line is nginx's combined, then upstream, status, times, retries, listener, route, pool", () => {
  const line = new LineFormatter("combined", "web").http(record(), NOW);
  assert.equal(line,
    `192.0.2.7 - - [${localStamp(NOW)}] "GET /a?b=1 HTTP/1.1" 200 1234 "http://r.example/" "curl/8" ` +
    `10.0.0.2:8080 200 0.001 0.012 0.015 1 web api backend\n`);
});

test("format: what did not happen is '-' in combined and null in JSON; an unread head logs request '-'", () => {
  const r = record({ method: null, target: "", headers: null, upstream: null, upstreamStatus: 0, connectMs: -1, headerMs: -1, retries: 0, route: null, pool: null, status: 400, bodyBytes: 17, startedAt: NOW });
  assert.equal(new LineFormatter("combined", "web").http(r, NOW),
    `192.0.2.7 - - [${localStamp(NOW)}] "-" 400 17 "-" "-" - - - - 0.000 0 web - -\n`);
  const j = JSON.parse(new LineFormatter("json", "web").http(r, NOW));
  assert.equal(j.request, null);
  assert.equal(j.upstream_addr, null);
  assert.equal(j.upstream_status, null);
  assert.equal(j.upstream_connect_time, null);
  assert.equal(j.route, null);
  assert.equal(j.status, 400);
});

test("format: a JSON line is one object with named fields, times in seconds", () => {
  const line = new LineFormatter("json", "web").http(record({ protocol: "HTTP/2.0" }), NOW);
  assert.ok(line.endsWith("}\n") && !line.slice(0, -1).includes("\n"));
  assert.deepEqual(JSON.parse(line), {
    time: "2026-12-02T00:19:23.456Z", remote_addr: "192.0.2.7", remote_user: null, request: "GET /a?b=1 HTTP/2.0",
    method: "GET", uri: "/a?b=1", protocol: "HTTP/2.0", status: 200, body_bytes_sent: 1234, referer: "http://r.example/",
    user_agent: "curl/8", upstream_addr: "10.0.0.2:8080", upstream_status: 200, upstream_connect_time: 0.001,
    upstream_header_time: 0.012, request_time: 0.015, retries: 1, listener: "web", route: "api", pool: "backend",
  });
});

test("format: quotes, backslashes, control and non-ASCII characters are escaped; lines stay one ASCII line", () => {
  // A header value may carry quotes, backslashes and obs-text bytes; a name from the config anything.
  const agent = 'a"b\\c\xe9';
  const r = record({ headers: headers({ "User-Agent": agent, REFERER: "x y" }), route: 'my "route"\n€', upstream: { host: "::1", port: 80 } });
  const c = new LineFormatter("combined", "l 1").http(r, NOW);
  assert.ok(/^[\x20-\x7e]*\n$/.test(c), c);
  assert.ok(c.includes(`"a\\x22b\\x5Cc\\xE9"`), c);
  assert.ok(c.includes(`"x y"`)); // inside quotes a space stays; header names match in any case
  assert.ok(c.endsWith(" l\\x201 my\\x20\\x22route\\x22\\x0A\\u20ac backend\n"), c); // unquoted names cannot split the line
  assert.ok(c.includes(" [::1]:80 "));
  const j = new LineFormatter("json", "l 1").http(r, NOW);
  assert.ok(/^[\x20-\x7e]*\n$/.test(j), j);
  assert.equal(JSON.parse(j).user_agent, agent);
  assert.equal(JSON.parse(j).route, 'my "route"\n€');
  assert.equal(JSON.parse(j).listener, "l 1");
});

test("format: an L4 session line has the same columns: protocol as request, session time as request time", () => {
  const f = new LineFormatter("combined", "redis");
  const line = f.l4({
    clientAddress: "203.0.113.9", protocol: "TCP", status: 502, bytesSent: 0, bytesReceived: 14,
    upstream: { host: "127.0.0.1", port: 6379 }, connectMs: -1, startedAt: NOW - 2500, retries: 2, route: null, pool: "cache",
  }, NOW);
  assert.equal(line, `203.0.113.9 - - [${localStamp(NOW)}] "TCP" 502 0 "-" "-" 127.0.0.1:6379 - - - 2.500 2 redis - cache\n`);
  const j = JSON.parse(new LineFormatter("json", "dns").l4({
    clientAddress: "::1", protocol: "UDP", status: 200, bytesSent: 90, bytesReceived: 30, upstream: null, connectMs: -1,
    startedAt: NOW - 1, retries: 0, route: "db.example", pool: "dns",
  }, NOW));
  assert.deepEqual(j, {
    time: "2026-12-02T00:19:23.456Z", remote_addr: "::1", protocol: "UDP", status: 200, bytes_sent: 90, bytes_received: 30,
    upstream_addr: null, upstream_connect_time: null, session_time: 0.001, retries: 0, listener: "dns", route: "db.example", pool: "dns",
  });
});

test("format: seconds with ms resolution; the Basic user is $remote_user", () => {
  const times = (connectMs: number, headerMs: number, startedAt: number) =>
    new LineFormatter("combined", "web").http(record({ connectMs, headerMs, startedAt }), NOW).split(" ").slice(-7, -4).join(" ");
  assert.equal(times(0, 7, NOW - 1234), "0.000 0.007 1.234");
  assert.equal(times(60_050, 100_000, NOW - 10), "60.050 100.000 0.010");
  const j = JSON.parse(new LineFormatter("json", "web").http(record({ connectMs: 7, headerMs: 1234, startedAt: NOW - 60_050 }), NOW));
  assert.deepEqual([j.upstream_connect_time, j.upstream_header_time, j.request_time], [0.007, 1.234, 60.05]);
  assert.equal(basicUser(`Basic ${btoa("alice:secret")}`), "alice");
  assert.equal(basicUser("Bearer abc"), null);
  assert.equal(basicUser("Basic !!!"), null);
  const line = new LineFormatter("combined", "web").http(record({ headers: headers({ authorization: `basic ${btoa("bob:pw")}` }) }), NOW);
  assert.ok(line.startsWith("192.0.2.7 - bob ["), line);
});

test("format: the time stamp changes with the second, not before", () => {
  const f = new LineFormatter("combined", "web");
  const at = (ms: number) => /\[(.*?)\]/.exec(f.http(record(), ms))![1];
  assert.equal(at(NOW), localStamp(NOW));
  assert.equal(at(NOW + 500), localStamp(NOW)); // 23.956: still second 23
  assert.equal(at(NOW + 544), localStamp(NOW + 544)); // 24.000
  assert.notEqual(localStamp(NOW), localStamp(NOW + 544));
});

test("format: the same server twice, then another: each line names its own", () => {
  const f = new LineFormatter("combined", "web");
  const a = { host: "10.0.0.2", port: 8080 }, b = { host: "fd00::3", port: 81 };
  const upstreamOf = (line: string) => line.split(" ").at(-9);
  assert.equal(upstreamOf(f.http(record({ upstream: a }), NOW)), "10.0.0.2:8080");
  assert.equal(upstreamOf(f.http(record({ upstream: a }), NOW)), "10.0.0.2:8080");
  assert.equal(upstreamOf(f.http(record({ upstream: b }), NOW)), "[fd00::3]:81");
  assert.equal(upstreamOf(f.http(record({ upstream: a }), NOW)), "10.0.0.2:8080");
});
