// HTTP/2 with real clients: curl (ALPN h2 over TLS, prior knowledge over h2c), nghttp and h2load
// against the fulcrum CLI in front of real backends. A request over h2 is routed, rewritten,
// retried and answered as the same request over HTTP/1.1; SIGTERM sends GOAWAY and lets the
// stream in flight finish.
import { test, before, after } from "node:test";
import net from "node:net";
import assert from "node:assert/strict";
import { runtime } from "../src/runtime/index.ts";
import { freePort, startBackend, type Backend, type Echo } from "./helpers/backends.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { needs } from "./helpers/peers.ts";
import { RawH2 } from "./helpers/h2-client.ts";
import { F_END_STREAM, NO_ERROR, T_DATA, T_HEADERS } from "../src/http2/frame.ts";

const dir = `/tmp/fulcrum-h2-${runtime.name}-${Date.now()}`;
let web: Backend, api: Backend, slow: Backend, fulcrum: Running, tlsPort: number, plainPort: number;
/** An HTTP/1.1 server that answers every request with a chunked body and two trailer fields (and
 * a hop-by-hop one HTTP/2 must not carry). */
let trailing: net.Server;
const TRAILING_RESPONSE = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum, Grpc-Status\r\n\r\n" +
  "5\r\nhello\r\n0\r\nX-Checksum: abc123\r\nGrpc-Status:  0 \r\nConnection: close\r\n\r\n";

async function run(cmd: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  const argv = stdin === undefined ? cmd : ["sh", "-c", `${cmd.map((a) => `'${a}'`).join(" ")} < '${stdin}'`];
  const child = runtime.spawn(argv);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return { code: await child.exited, out, err };
}

const noPeers = needs("curl", "openssl", "nghttp", "h2load");

before(async () => {
  if (noPeers) return;
  await run(["mkdir", "-p", dir]);
  const mk = await run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=h2.test", "-addext", "subjectAltName=DNS:h2.test", "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`]);
  assert.equal(mk.code, 0, mk.err);
  web = await startBackend("web");
  api = await startBackend("api");
  slow = await startBackend("slow", { delayMs: 700 });
  trailing = net.createServer((sock) => {
    let seen = "";
    sock.on("data", (d) => {
      seen += d.toString("latin1");
      while (seen.includes("\r\n\r\n")) { seen = seen.slice(seen.indexOf("\r\n\r\n") + 4); sock.write(TRAILING_RESPONSE); }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => trailing.listen(0, "127.0.0.1", r));
  const dead = await freePort();
  tlsPort = await freePort();
  plainPort = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - { name: tls, bind: 127.0.0.1:${tlsPort}, tls: { cert: ${dir}/cert.pem, key: ${dir}/key.pem } }
  - { name: plain, bind: 127.0.0.1:${plainPort}, http2: true }
pools:
  web: { servers: [${web.address}] }
  api: { scheduler: rr, servers: [127.0.0.1:${dead}, ${api.address}] }
  slow: { servers: [${slow.address}] }
  trailing: { servers: [127.0.0.1:${(trailing.address() as net.AddressInfo).port}] }
routes:
  - { path_prefix: /trailers, pool: trailing }
  - path_prefix: /api
    headers: { x-tenant: blue }
    pool: api
    request_headers: { set: { x-route: api }, remove: [x-drop] }
    response_headers: { remove: [x-remove-me], add: { x-served-by: fulcrum } }
  - { path_prefix: /slow, pool: slow }
  - { host: h2.test, pool: web }
`, 2);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([web?.stop(), api?.stop(), slow?.stop()]);
  trailing?.close();
  await run(["rm", "-rf", dir]);
});

/** curl with -w printing the HTTP version and status after the body. */
async function curl(args: string[], stdin?: string): Promise<{ version: string; status: number; body: string; headers: string }> {
  const r = await run(["curl", "-sk", "--max-time", "20", "-D", "-", "-w", "\n%{http_version} %{http_code}", ...args], stdin);
  assert.equal(r.code, 0, r.err);
  const m = /\n(\S+) (\d+)$/.exec(r.out)!;
  const text = r.out.slice(0, m.index);
  const split = text.indexOf("\r\n\r\n");
  return { version: m[1], status: Number(m[2]), headers: text.slice(0, split), body: text.slice(split + 4) };
}

const resolve = (port: number) => ["--resolve", `h2.test:${port}:127.0.0.1`];

test("h2: curl --http2 over TLS negotiates h2 by ALPN; --http1.1 on the same listener still gets HTTP/1.1", { skip: noPeers }, async () => {
  const h2 = await curl(["--http2", ...resolve(tlsPort), `https://h2.test:${tlsPort}/hello`]);
  assert.equal(h2.version, "2");
  assert.equal(h2.status, 200);
  const echo = JSON.parse(h2.body) as Echo;
  assert.equal(echo.backend, "web");
  assert.equal(echo.headers["x-forwarded-proto"], "https");
  const h1 = await curl(["--http1.1", ...resolve(tlsPort), `https://h2.test:${tlsPort}/hello`]);
  assert.equal(h1.version, "1.1");
  assert.equal(h1.status, 200);
});

test("h2: a plain listener with http2: true takes h2c with prior knowledge and HTTP/1.1 on the same port", { skip: noPeers }, async () => {
  const h2c = await curl(["--http2-prior-knowledge", ...resolve(plainPort), `http://h2.test:${plainPort}/x`]);
  assert.equal(h2c.version, "2");
  assert.equal(h2c.status, 200);
  const h1 = await curl([...resolve(plainPort), `http://h2.test:${plainPort}/x`]);
  assert.equal(h1.version, "1.1");
  assert.equal(h1.status, 200);
});

test("h2: the same request over h2 and HTTP/1.1 takes the same route, header rules and retries, and the upstream sees the same head", { skip: noPeers }, async () => {
  const args = (v: string) => [v, ...resolve(plainPort), "-H", "x-tenant: blue", "-H", "x-drop: 1", "-H", "cookie: a=1", "-H", "cookie: b=2",
    `http://h2.test:${plainPort}/api/items?q=1`];
  const before = api.hits;
  const answers = [];
  // rr over a dead server and a live one: every request that lands on the dead one is retried.
  for (let i = 0; i < 4; i++) answers.push(await curl(args(i % 2 ? "--http1.1" : "--http2-prior-knowledge")));
  assert.deepEqual(answers.map((a) => [a.version, a.status]), [["2", 200], ["1.1", 200], ["2", 200], ["1.1", 200]]);
  assert.equal(api.hits - before, 4);
  const [h2, h1] = answers.map((a) => JSON.parse(a.body) as Echo);
  for (const a of answers) {
    assert.doesNotMatch(a.headers, /x-remove-me/i);
    assert.match(a.headers, /x-served-by: fulcrum/i);
  }
  assert.equal(h2.backend, "api");
  assert.equal(h2.target, "/api/items?q=1");
  assert.equal(h2.headers["x-route"], "api");
  assert.equal(h2.headers["x-drop"], undefined);
  assert.equal(h2.headers.cookie, "a=1; b=2");
  const strip = (e: Echo) => { const { "x-request-id": _, ...rest } = e.headers; return rest; };
  assert.deepEqual(strip(h2), strip(h1));
});

test("h2: no route is a 404 with x-fulcrum-error, as over HTTP/1.1", { skip: noPeers }, async () => {
  const r = await curl(["--http2-prior-knowledge", `http://127.0.0.1:${plainPort}/nowhere`]);
  assert.equal(r.version, "2");
  assert.equal(r.status, 404);
  assert.match(r.headers, /x-fulcrum-error: no_route/);
});

test("h2: request bodies arrive whole, with a length (1 MB) and without one (streamed from stdin, sent upstream chunked)", { skip: noPeers }, async () => {
  const file = `${dir}/body.bin`;
  const body = new Uint8Array(1 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
  await Deno_or_node_write(file, body);
  let sum = 0;
  for (const x of body) sum = (sum + x) % 65521;
  const sized = await curl(["--http2-prior-knowledge", ...resolve(plainPort), "--data-binary", `@${file}`, `http://h2.test:${plainPort}/up`]);
  const e1 = JSON.parse(sized.body) as Echo;
  assert.deepEqual([e1.bodyBytes, e1.bodySum, e1.headers["content-length"]], [body.length, sum, String(body.length)]);
  const streamed = await curl(["--http2", ...resolve(tlsPort), "-T", "-", `https://h2.test:${tlsPort}/up`], file);
  const e2 = JSON.parse(streamed.body) as Echo;
  assert.equal(streamed.version, "2");
  assert.deepEqual([e2.bodyBytes, e2.bodySum], [body.length, sum]);
});

async function Deno_or_node_write(path: string, bytes: Uint8Array): Promise<void> {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(path, bytes);
}

test("h2: a 2 MB response crosses flow control intact (curl over TLS)", { skip: noPeers }, async () => {
  const r = await run(["curl", "-sk", "--http2", ...resolve(tlsPort), "-o", `${dir}/down.bin`, "-w", "%{http_version} %{size_download}", `https://h2.test:${tlsPort}/?size=2000000`]);
  assert.equal(r.out, "2 2000000");
  const { readFile } = await import("node:fs/promises");
  const got = await readFile(`${dir}/down.bin`);
  assert.ok(got.every((b: number) => b === 120));
});

test("h2: the trailer fields of a chunked HTTP/1.1 response arrive as HTTP/2 trailers (hop-by-hop ones left out)", { skip: noPeers }, async () => {
  const c = await RawH2.connect(plainPort);
  c.send(c.request(1, "/trailers/x"));
  const end = await c.waitFor((f) => f.stream === 1 && (f.flags & F_END_STREAM) !== 0);
  const mine = c.frames.filter((f) => f.stream === 1);
  const heads = mine.filter((f) => f.type === T_HEADERS);
  assert.equal(heads.length, 2, "a response head and a trailers block");
  assert.equal(heads[0].fields?.[0][1], "200");
  assert.equal(end?.type, T_HEADERS, "END_STREAM rides on the trailers");
  assert.deepEqual(heads[1].fields, [["x-checksum", "abc123"], ["grpc-status", "0"]]);
  const body = mine.filter((f) => f.type === T_DATA).map((f) => new TextDecoder().decode(f.payload)).join("");
  assert.equal(body, "hello");
  c.close();
});

test("h2: nghttp runs 30 concurrent streams on one connection, all answered", { skip: noPeers }, async () => {
  const urls = Array.from({ length: 30 }, (_, i) => `http://127.0.0.1:${plainPort}/s/${i}`);
  const r = await run(["nghttp", "-ns", "--header", ":authority: h2.test", ...urls]);
  assert.equal(r.code, 0, r.err);
  const rows = r.out.split("\n").filter((l) => /\s200\s/.test(l) && /\/s\/\d+/.test(l));
  assert.equal(rows.length, 30, r.out);
});

test("h2: h2load, 2000 requests over 8 connections x 10 streams, on h2c and TLS: every one succeeds", { skip: noPeers }, async () => {
  for (const url of [`http://127.0.0.1:${plainPort}/load`, `https://127.0.0.1:${tlsPort}/load`]) {
    const r = await run(["h2load", "-n", "2000", "-c", "8", "-m", "10", "-H", ":authority: h2.test", url]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed/, r.out);
    assert.match(r.out, /status codes: 2000 2xx/);
    assert.match(r.out, /Application protocol: h2/);
  }
});

test("h2: SIGTERM sends GOAWAY(NO_ERROR) naming the last stream, and that stream's answer still completes", { skip: noPeers }, async () => {
  const c = await RawH2.connect(plainPort);
  c.send(c.request(1, "/slow/1"));
  // The request reached the slow backend before the signal.
  const deadline = Date.now() + 10_000;
  while (slow.hits === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(slow.hits, 1);
  fulcrum.child.kill("SIGTERM");
  const g = await c.goaway();
  assert.deepEqual([g?.code, g?.lastStream], [NO_ERROR, 1]);
  const h = await c.waitFor((f) => f.type === T_HEADERS && f.stream === 1);
  assert.equal(h?.fields?.[0][1], "200");
  const end = await c.waitFor((f) => f.type === T_DATA && f.stream === 1 && (f.flags & F_END_STREAM) !== 0);
  assert.ok(end, "the answer ended with END_STREAM");
  assert.ok(await c.closedWithin());
  // The GOAWAY came before the answer: the client knew not to send more.
  assert.ok(c.frames.findIndex((f) => f.type === 7) < c.frames.indexOf(h!));
});
