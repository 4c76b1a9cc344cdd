// Strict parsing on the socket path: nothing ambiguous reaches a server. Each case sends raw
// bytes and checks both the answer and that the upstream received nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { rawExchange, startSink, statuses, type Sink } from "./helpers/raw.ts";
import { startFulcrum, writeTemp, type Running } from "./helpers/fulcrum.ts";
import { freePort } from "./helpers/backends.ts";
import { runtime, type Child } from "../src/runtime/index.ts";

let sink: Sink, fulcrum: Running, port: number, bigPort: number;
let trailers: net.Server, trailersPort: number;
let nginx: Child, nginxPort: number;

/** An upstream whose chunked responses end in trailers: valid ones for /trailer/good, a request
 * line smuggled into them otherwise. */
function startTrailerServer(): Promise<net.Server> {
  const server = net.createServer((sock) => {
    sock.on("error", () => {});
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        const good = buf.startsWith("GET /trailer/good ");
        buf = buf.slice(end + 4);
        const tail = good ? "X-Sum: 5\r\n\r\n" : "GET /smuggled-response HTTP/1.1\r\nHost: x\r\n\r\n";
        sock.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n${tail}`);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** nginx on loopback, answering with the Host it was sent (it rejects HTTP/1.1 without one). */
async function startNginx(port: number): Promise<Child> {
  const base = `/tmp/fulcrum-test-nginx-${runtime.name}-${port}`;
  const conf = await writeTemp(`
daemon off;
master_process off;
worker_processes 1;
pid ${base}.pid;
error_log ${base}.error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path /tmp; proxy_temp_path /tmp; fastcgi_temp_path /tmp; uwsgi_temp_path /tmp; scgi_temp_path /tmp;
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "nginx saw host=$http_host\n"; }
  }
}
`, "conf");
  const child = runtime.spawn(["nginx", "-p", "/tmp", "-e", `${base}.error.log`, "-c", conf]);
  // Up when it accepts connections: bounded at 100 tries of 50 ms.
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1", () => { s.destroy(); r(true); });
      s.on("error", () => r(false));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error("nginx did not start");
}

/** The big listener's access log (combined: it names each request's User-Agent). */
const accessPath = () => `/tmp/fulcrum-strict-access-${runtime.name}-${bigPort}.log`;

before(async () => {
  sink = await startSink();
  trailers = await startTrailerServer();
  trailersPort = (trailers.address() as net.AddressInfo).port;
  nginxPort = await freePort();
  nginx = await startNginx(nginxPort);
  port = await freePort();
  bigPort = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${port}
    max_header_size: 4k
    max_headers: 20
    max_body_size: 1k
    header_timeout: 300ms
  - bind: 127.0.0.1:${bigPort}
    max_body_size: 1m
    access_log: { path: ${accessPath()}, format: combined, flush: 50ms }
pools:
  sink: { servers: [127.0.0.1:${sink.port}] }
  trailers: { servers: [{ address: 127.0.0.1:${trailersPort}, max_fails: 1, fail_timeout: 60s }] }
  nginx: { servers: [127.0.0.1:${nginxPort}] }
routes:
  - { path_prefix: /trailer/, pool: trailers }
  - { path_prefix: /nginx/, pool: nginx }
  - { pool: sink }
`, 2);
});

after(async () => {
  await fulcrum?.stop();
  await sink?.stop();
  await new Promise((r) => trailers?.close(r));
  if (nginx) { nginx.kill("SIGTERM"); await nginx.exited; }
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
  // Trailers are field lines as strict as the head's: a request line smuggled there never passes.
  ["a request line in the trailers", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`, 400],
  ["a trailer line without a colon", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nsmuggled\r\n\r\n`, 400],
  ["whitespace before a trailer colon", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX-A : v\r\n\r\n`, 400],
  ["obs-fold in the trailers", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: v\r\n smuggled\r\n\r\n`, 400],
  ["a control character in a trailer value", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: v\x01\r\n\r\n`, 400],
  ["a bare LF in the trailers", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: v\nGET /smuggled HTTP/1.1\r\n\r\n`, 400],
  ["a bare CR ending the trailers", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: v\r\n\rGET /smuggled HTTP/1.1\r\n\r\n`, 400],
  ["more trailer fields than max_headers", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n${"X-T: v\r\n".repeat(21)}\r\n`, 400],
  ["a trailer section over max_header_size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nX-Big: ${"a".repeat(5000)}\r\n\r\n`, 400],
  // Chunk extensions must follow their grammar.
  ["a bare ; after the chunk size", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n`, 400],
  ["a chunk extension without a name", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n0\r\n\r\n`, 400],
  ["an unterminated quoted chunk extension", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a="x\r\nhello\r\n0\r\n\r\n`, 400],
  ["a bad token character in a chunk extension", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a@b\r\nhello\r\n0\r\n\r\n`, 400],
  ["chunk extensions over 4 KiB", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;${"e".repeat(5000)}\r\nhello\r\n0\r\n\r\n`, 400],
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

test("strict: a chunked body with well-formed extensions (BWS, tokens, quoted strings) and trailers is forwarded byte for byte", async () => {
  sink.reset();
  const body = "5 ; a = 1 ;b=\"x y\\\"z\"\t;c\r\nhello\r\n3;name=\"v a\"\r\nabc\r\n0;last\r\nX-Trailer: t\r\nX-Sum:8\r\n\r\n";
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

test("strict: many pipelined requests, arriving while earlier ones are in flight, are each forwarded whole and in order", async () => {
  sink.reset();
  // About 9 KB of heads in pieces: the connection's buffer fills and moves while a request
  // whose head is read from it is still being answered.
  const paths = Array.from({ length: 60 }, (_, i) => `/p${i}`);
  const pad = `X-Pad: ${"y".repeat(100)}\r\n`;
  const heads = paths.map((p, i) => `GET ${p} HTTP/1.1\r\n${H}User-Agent: agent-for-${p}\r\n${pad}${i === paths.length - 1 ? "Connection: close\r\n" : ""}\r\n`);
  const pieces = Array.from({ length: 20 }, (_, k) => heads.slice(k * 3, k * 3 + 3).join(""));
  const reply = await rawExchange(bigPort, pieces, 5000, 10);
  assert.deepEqual(statuses(reply.text), paths.map(() => 200));
  const order = [...reply.text.matchAll(/sink saw: (\w+) (\/\w+)/g)].map((m) => m[2]);
  assert.deepEqual(order, paths);
  // The access line is written as each exchange ends and reads User-Agent from the request's
  // head then: every head was still intact at the end of its exchange.
  let logged: string[] = [];
  for (let i = 0; i < 50 && logged.length < paths.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const text = await runtime.readTextFile(accessPath()).catch(() => "");
    logged = [...text.matchAll(/"GET (\/p\d+) HTTP\/1\.1" 200 \d+ "[^"]*" "([^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`);
  }
  assert.deepEqual(logged.sort(), paths.map((p) => `${p} agent-for-${p}`).sort());
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

test("strict: a GET pipelined after a chunked POST is answered, with the bytes split at every offset and a byte per write", async () => {
  const post = `POST /up HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n`;
  const get = `GET /after HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
  const bytes = post + get;
  // Every cut point once (the two pieces arrive in separate reads: 20 ms apart), the whole thing
  // in one write a few times, then a byte per write: bounded at bytes.length + 5 connections.
  const cuts = [...Array.from({ length: bytes.length - 1 }, (_, i) => i + 1), 0, 0, 0, 0, 0];
  for (const cut of cuts) {
    sink.reset();
    const pieces = cut === 0 ? [bytes] : [bytes.slice(0, cut), bytes.slice(cut)];
    const reply = await rawExchange(port, pieces, 3000, 20);
    assert.deepEqual(statuses(reply.text), [200, 200], `cut at ${cut}: ${reply.text}`);
    assert.deepEqual([...reply.text.matchAll(/sink saw: (\w+ \/\w+)/g)].map((m) => m[1]), ["POST /up", "GET /after"], `cut at ${cut}`);
  }
  // And a byte per write.
  const reply = await rawExchange(port, bytes.split(""), 5000, 2);
  assert.deepEqual(statuses(reply.text), [200, 200], `a byte per write: ${reply.text}`);
});

/** Sends `first`, waits (bounded) until the sink has seen `seen`, then sends `second`; returns
 * what came back once the connection closed. */
function sendAfterSinkSaw(port: number, first: string, seen: string, second: string): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let text = "";
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no close; got ${text}; sink saw ${sink.received().slice(0, 300)}`)); }, 10_000);
    sock.on("data", (d: Buffer) => { text += d.toString("latin1"); });
    sock.on("close", () => { clearTimeout(timer); resolve({ text, closed: true }); });
    sock.on("error", () => {});
    sock.on("connect", async () => {
      sock.write(Buffer.from(first, "latin1"));
      for (let i = 0; i < 200 && !sink.received().includes(seen); i++) await new Promise((r) => setTimeout(r, 25));
      sock.write(Buffer.from(second, "latin1"));
    });
  });
}

test("strict: a request line smuggled into the trailers of a body already streaming upstream never reaches it", async () => {
  sink.reset();
  // Over 64 KiB, so the exchange starts before the body ends (smaller bodies are read whole first).
  const data = "d".repeat(0x20000);
  const first = `POST /big HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n20000\r\n${data}`;
  const reply = await sendAfterSinkSaw(bigPort, first, data.slice(0, 1000), `\r\n0\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`);
  assert.deepEqual(statuses(reply.text), [400], reply.text.slice(0, 300));
  assert.match(reply.text, /malformed chunked body|bad_request/);
  assert.ok(sink.received().startsWith("POST /big HTTP/1.1\r\n"), "the body was streaming");
  assert.ok(!sink.received().includes("smuggled"), "the smuggled line never reached the upstream");
});

test("strict: valid response trailers reach the client as sent", async () => {
  const reply = await rawExchange(port, [`GET /trailer/good HTTP/1.1\r\n${H}Connection: close\r\n\r\n`]);
  assert.deepEqual(statuses(reply.text), [200], reply.text);
  assert.ok(reply.text.endsWith("\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n"), reply.text);
});

test("strict: a request line smuggled into response trailers never reaches the client; the response is cut and the failure counted", async () => {
  const reply = await rawExchange(port, [`GET /trailer/bad HTTP/1.1\r\n${H}\r\nGET /after HTTP/1.1\r\n${H}\r\n`]);
  assert.ok(!reply.text.includes("smuggled"), reply.text);
  assert.ok(!reply.text.includes("0\r\n\r\n") && !reply.text.includes("/after"), `the response never completes: ${reply.text}`);
  assert.ok(reply.closed, "the client connection is closed");
  assert.match(fulcrum.output(), /trailers\/127\.0\.0\.1:\d+ aborted: invalid chunked body from upstream: whitespace before the colon in a trailer field/);
  // max_fails: 1, so the one counted failure takes the server out.
  const next = await rawExchange(port, [`GET /trailer/good HTTP/1.1\r\n${H}Connection: close\r\n\r\n`]);
  assert.deepEqual(statuses(next.text), [503], next.text);
  assert.match(next.text, /no server available/);
});

test("strict: an HTTP/1.0 request without Host goes upstream with the server's address as Host", async () => {
  sink.reset();
  const reply = await rawExchange(port, ["GET /old HTTP/1.0\r\n\r\n"]);
  assert.deepEqual(statuses(reply.text), [200], reply.text);
  assert.ok(reply.closed, "HTTP/1.0 without keep-alive: closed after the response");
  assert.match(sink.received(), new RegExp(`^GET /old HTTP/1\\.1\r\n[^]*\r\nHost: 127\\.0\\.0\\.1:${sink.port}\r\n`));
  assert.equal(sink.received().match(/^host:/gim)?.length, 1, "one Host");
  // One that brings a Host keeps it.
  sink.reset();
  await rawExchange(port, ["GET /old HTTP/1.0\r\nHost: old.test\r\n\r\n"]);
  assert.deepEqual(sink.received().match(/^host:.*$/gim), ["Host: old.test"]);
});

test("strict: nginx upstream answers an HTTP/1.0 request without Host (it rejects HTTP/1.1 without one)", async () => {
  const direct = await rawExchange(nginxPort, ["GET /nginx/x HTTP/1.1\r\nConnection: close\r\n\r\n"]);
  assert.deepEqual(statuses(direct.text), [400], "nginx itself rejects HTTP/1.1 without Host");
  const reply = await rawExchange(port, ["GET /nginx/x HTTP/1.0\r\n\r\n"]);
  assert.deepEqual(statuses(reply.text), [200], reply.text);
  assert.match(reply.text, new RegExp(`nginx saw host=127\\.0\\.0\\.1:${nginxPort}\n`));
});
