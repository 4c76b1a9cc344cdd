// Per-client limits end to end: a real `fulcrum run` in front of real upstreams, with real
// clients. rate_limit by header, by client address (127.0.0.1 against 127.0.0.2) and over
// HTTP/2 (curl), conn_limit with requests really in flight on a holding upstream, conn_limit on
// a tcp listener, the admin API's and the metrics' view of the tables, and a bad config's
// key-path errors. Rates of a few per minute: nothing drains during a test, so counts are exact.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import net from "node:net";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, runCli, startCli, writeTemp } from "./helpers/fulcrum.ts";
import { runtime } from "../src/runtime/index.ts";
import { getJson, request } from "./helpers/http.ts";
import { TcpClient } from "./helpers/l4.ts";

let web: Backend, slow: Backend, fulcrum: Running;
let base = "", admin = "", tcpPort = 0, proxiedPort = 0, configFile = "";
let configText = (_perClientRate: string) => "";

before(async () => {
  [web, slow] = await Promise.all([startBackend("web"), startBackend("slow", "hold")]);
  const [port, adminPort] = [await freePort(), await freePort()];
  tcpPort = await freePort();
  proxiedPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  admin = `http://127.0.0.1:${adminPort}`;
  configText = (perClientRate) => `
admin: { bind: 127.0.0.1:${adminPort} }
listeners:
  - { name: edge, bind: 127.0.0.1:${port}, http2: true }
  - { name: proxied, bind: 127.0.0.1:${proxiedPort}, accept_proxy: true }
  - name: tcp
    bind: 127.0.0.1:${tcpPort}
    protocol: tcp
    pool: web
    conn_limit: { max: 1 }
routes:
  - name: api
    path_prefix: /api
    pool: web
    rate_limit: { rate: 2/m, burst: 2, key: header:X-Api-Key, size: 1000 }
  - name: h2api
    path_prefix: /h2
    pool: web
    rate_limit: { rate: 2/m, burst: 1, key: cookie:session }
  - name: perclient
    path_prefix: /client
    pool: web
    rate_limit: { rate: ${perClientRate}, burst: 1 }
  - name: held
    path_prefix: /held
    pool: slow
    conn_limit: { max: 2, size: 100 }
pools:
  web: { servers: [${web.address}] }
  slow: { servers: [${slow.address}] }
`;
  configFile = await writeTemp(configText("2/m"));
  fulcrum = await startCli(["run", "--config", configFile], 3);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([web?.stop(), slow?.stop()]);
});

// 2/m is 33 milli-requests per second: one request's excess (1000) drains in 1000/0.033 ms.
const RETRY_AFTER_2M = Math.ceil(1000 * 1000 / 33 / 1000);

test("rate_limit by header: past rate + burst a key gets 429 with Retry-After from its state; another key and a request without one are served", async () => {
  const a = [];
  for (let i = 0; i < 5; i++) a.push(await request(`${base}/api/x`, { headers: { "x-api-key": "alice" } }));
  assert.deepEqual(a.map((r) => r.status), [200, 200, 200, 429, 429]);
  assert.equal(a[3].headers["retry-after"], String(RETRY_AFTER_2M));
  assert.equal(a[3].headers["x-fulcrum-error"], "rate_limited");
  assert.match(a[3].body, /429 Too Many Requests: route api: over its rate_limit/);
  const bob = await request(`${base}/api/x`, { headers: { "x-api-key": "bob" } });
  assert.equal(bob.status, 200);
  assert.equal(JSON.parse(bob.body).backend, "web");
  // nginx's rule: a request without the key is not accounted.
  for (let i = 0; i < 4; i++) assert.equal((await request(`${base}/api/x`)).status, 200);
});

test("rate_limit by client address: 127.0.0.1 over its limit gets 429 while 127.0.0.2 is served", async () => {
  const one = [];
  for (let i = 0; i < 3; i++) one.push((await request(`${base}/client`, { localAddress: "127.0.0.1" })).status);
  assert.deepEqual(one, [200, 200, 429]);
  const two = await request(`${base}/client`, { localAddress: "127.0.0.2" });
  assert.equal(two.status, 200);
  assert.equal((await request(`${base}/client`, { localAddress: "127.0.0.1" })).status, 429);
});

test("rate_limit by client address behind a PROXY header: the header's source is the key", async () => {
  // 127.0.0.1 is over route perclient's limit (the test above): had the socket's peer been the
  // key, the first of these would already be refused.
  const viaProxy = async (source: string) => {
    const c = await TcpClient.connect(proxiedPort);
    const text = await c.exchange(`PROXY TCP4 ${source} 127.0.0.1 40000 80\r\nGET /client HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`);
    return Number(text.slice(9, 12));
  };
  assert.deepEqual([await viaProxy("203.0.113.7"), await viaProxy("203.0.113.7"), await viaProxy("203.0.113.7")], [200, 200, 429]);
  assert.equal(await viaProxy("203.0.113.8"), 200);
});

test("rate_limit over HTTP/2 (curl, h2c): a cookie key gets 429 with retry-after; another cookie is served", async () => {
  // Not spawnSync: the upstream runs in this process and must go on answering.
  const curl = (cookie: string) => new Promise<string>((resolve, reject) => {
    execFile("curl", ["-s", "-i", "--http2-prior-knowledge", "--max-time", "10", "-b", `session=${cookie}`, `${base}/h2/x`],
      (e, stdout) => e ? reject(e) : resolve(stdout));
  });
  const replies = [await curl("s1"), await curl("s1"), await curl("s1")];
  assert.deepEqual(replies.map((t) => t.split("\r\n")[0]), ["HTTP/2 200 ", "HTTP/2 200 ", "HTTP/2 429 "]);
  assert.match(replies[2], new RegExp(`\\r\\nretry-after: ${RETRY_AFTER_2M}\\r\\n`));
  assert.match(replies[2], /x-fulcrum-error: rate_limited/);
  assert.match((await curl("s2")).split("\r\n")[0], /^HTTP\/2 200/);
});

interface LimitRow { scope: string; name: string; limit: string; key: string; size: number; bytes: number; entries: number; evictions: number; rejected: number; full: number }
const tables = async () => (await getJson<{ tables: LimitRow[] }>(`${admin}/api/limits`)).tables;

async function untilAsync(done: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("conn_limit: with 2 requests of a client in flight on the upstream its third gets 429; another client is admitted; once one ends the client is admitted again", async () => {
  // One after the other: the upstream answers its oldest first, and two requests sent at once
  // may reach it in either order (through two workers, on two connections).
  const first = [request(`${base}/held/1`)];
  await until(() => slow.held === 1, "the first request held upstream");
  first.push(request(`${base}/held/2`));
  await until(() => slow.held === 2, "two requests held upstream");
  const third = await request(`${base}/held/3`);
  assert.equal(third.status, 429);
  assert.equal(third.headers["x-fulcrum-error"], "conn_limited");
  assert.equal(third.headers["retry-after"], "1");
  assert.equal(slow.held, 2, "the refused request never reached the upstream");
  const other = request(`${base}/held/other`, { localAddress: "127.0.0.2" });
  await until(() => slow.held === 3, "the other client's request held upstream");
  slow.finish();
  assert.equal((await first[0]).status, 200);
  const again = request(`${base}/held/4`);
  await until(() => slow.held === 3, "the client's new request held upstream");
  while (slow.held > 0) slow.finish();
  assert.deepEqual([(await first[1]).status, (await other).status, (await again).status], [200, 200, 200]);
});

test("conn_limit on a tcp listener: a client's second connection is closed at once while its first is served", async () => {
  const first = await TcpClient.connect(tcpPort);
  first.write("GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
  await first.until(() => first.text.includes("\r\n\r\n"), 5000, "the first connection's response");
  assert.match(first.text, /^HTTP\/1.1 200/);
  // Closed at once: the client may see the close, or (when it comes before the handshake's end
  // is seen) a reset; either way not one byte.
  const second = await new Promise<{ bytes: number }>((resolve) => {
    let bytes = 0;
    const s = net.connect(tcpPort, "127.0.0.1", () => s.write("GET /two HTTP/1.1\r\nHost: t\r\n\r\n"));
    s.on("data", (d: Uint8Array) => { bytes += d.length; });
    s.on("error", () => {});
    s.on("close", () => resolve({ bytes }));
  });
  assert.equal(second.bytes, 0);
  const elsewhere = await TcpClient.connect(tcpPort, "127.0.0.1", false, "127.0.0.2");
  elsewhere.write("GET /three HTTP/1.1\r\nHost: t\r\n\r\n");
  await elsewhere.until(() => elsewhere.text.includes("\r\n\r\n"), 5000, "another client's response");
  first.destroy();
  elsewhere.destroy();
  // The first connection's end frees its count (the admin API shows when): the client connects again.
  await untilAsync(async () => (await tables()).find((t) => t.name === "tcp")!.entries === 0, "the tcp table to empty");
  const third = await TcpClient.connect(tcpPort);
  third.write("GET /four HTTP/1.1\r\nHost: t\r\n\r\n");
  await third.until(() => third.text.includes("\r\n\r\n") || third.closedAt !== null, 5000, "the third connection's response");
  assert.match(third.text, /^HTTP\/1.1 200/);
  third.destroy();
});


test("GET /api/limits and /metrics show each table's size, entries, evictions and rejections", async () => {
  const rows = await tables();
  const row = (name: string) => rows.find((t) => t.name === name)!;
  assert.deepEqual(rows.map((t) => `${t.scope} ${t.name} ${t.limit} ${t.key}`).sort(), [
    "listener tcp conn_limit client", "route api rate_limit header:x-api-key", "route h2api rate_limit cookie:session",
    "route held conn_limit client", "route perclient rate_limit client",
  ]);
  assert.deepEqual([row("api").size, row("api").entries, row("api").rejected, row("api").evictions], [1000, 2, 2, 0]);
  assert.equal(row("api").bytes, 64 + Math.ceil(1000 * 1.25 / 8) * 8 * 16); // 20 bytes per key
  assert.deepEqual([row("perclient").entries, row("perclient").rejected], [4, 3]);
  assert.deepEqual([row("h2api").entries, row("h2api").rejected], [2, 1]);
  assert.deepEqual([row("held").entries, row("held").rejected], [0, 1], "conn entries are freed when their requests end");
  assert.equal(row("tcp").rejected, 1);
  const metrics = (await request(`${admin}/metrics`)).body;
  assert.match(metrics, /fulcrum_limit_rejected_total\{scope="route",name="api",limit="rate_limit"\} 2\n/);
  assert.match(metrics, /fulcrum_limit_rejected_total\{scope="listener",name="tcp",limit="conn_limit"\} 1\n/);
  assert.match(metrics, /fulcrum_limit_entries\{scope="route",name="perclient",limit="rate_limit"\} 4\n/);
  assert.match(metrics, /fulcrum_listener_errors_total\{listener="edge",kind="rate_limited"\} 5\n/);
});

test("a bad rate_limit or conn_limit is refused with its key path", async () => {
  const file = await writeTemp(`
listeners:
  - bind: 127.0.0.1:8080
    rate_limit: { rate: fast, burst: -1 }
  - { bind: 127.0.0.1:8081, protocol: udp, pool: web, conn_limit: { max: 1 } }
routes:
  - pool: web
    conn_limit: { max: 0, key: "header:", sizes: 10 }
pools:
  web: { servers: [127.0.0.1:9001] }
`);
  const r = await runCli(["check", "--config", file]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const out = r.stdout + r.stderr;
  assert.match(out, /listeners\[0\]\.rate_limit\.rate: expected a rate like 100\/s or 30\/m/);
  assert.match(out, /listeners\[0\]\.rate_limit\.burst: expected an integer/);
  assert.match(out, /listeners\[1\]\.conn_limit: conn_limit is for tcp listeners/);
  assert.match(out, /routes\[0\]\.conn_limit\.max: expected an integer/);
  assert.match(out, /routes\[0\]\.conn_limit\.key: expected client, header:NAME or cookie:NAME/);
  assert.match(out, /routes\[0\]\.conn_limit\.sizes: unknown key \(did you mean "size"\?\)/);
});

test("a reload keeps the state of an unchanged rate_limit and starts a changed one afresh", async () => {
  const carol = [];
  for (let i = 0; i < 4; i++) carol.push((await request(`${base}/api/x`, { headers: { "x-api-key": "carol" } })).status);
  assert.deepEqual(carol, [200, 200, 200, 429]);
  const three = [];
  for (let i = 0; i < 3; i++) three.push((await request(`${base}/client`, { localAddress: "127.0.0.3" })).status);
  assert.deepEqual(three, [200, 200, 429]);
  await runtime.writeTextFile(configFile, configText("3/m"));
  fulcrum.child.kill("SIGHUP");
  await until(() => fulcrum.output().includes("generation 2 serving"), "generation 2");
  assert.equal((await request(`${base}/api/x`, { headers: { "x-api-key": "carol" } })).status, 429, "route api's limit is unchanged: carol is still over it");
  assert.equal((await request(`${base}/client`, { localAddress: "127.0.0.3" })).status, 200, "route perclient's limit changed: its table starts empty");
});
