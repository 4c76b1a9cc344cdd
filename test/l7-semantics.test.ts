// What operators rely on from an L7 balancer: retries to the next server, sticky sessions, source
// persistence, request ids, queueing, what a client sees when a server dies mid-response, and
// upgrades (WebSocket) tunnelled after 101.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBackend, freePort, type Backend, type Echo } from "./helpers/backends.ts";
import { dyingServer, upgradeEchoServer, type RawServer } from "./helpers/special-servers.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { rawExchange, statuses } from "./helpers/raw.ts";
import { waitFor } from "./helpers/health-servers.ts";
import net from "node:net";

let s1: Backend, s2: Backend, s503: Backend, slow: Backend, dying: RawServer, echo: RawServer;
let fulcrum: Running;

before(async () => {
  [s1, s2] = await Promise.all([startBackend("s1"), startBackend("s2")]);
  s503 = await startBackend("s503", { status: 503 });
  slow = await startBackend("slow", { delayMs: 400 });
  dying = await dyingServer();
  echo = await upgradeEchoServer();
  const refused = await freePort(), port = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${port}
routes:
  - { path_prefix: /retry-error, pool: retry_error }
  - { path_prefix: /retry-status, pool: retry_status }
  - { path_prefix: /no-retry-status, pool: no_retry_status }
  - { path_prefix: /post-once, pool: post_once }
  - { path_prefix: /post-again, pool: post_again }
  - { path_prefix: /ws-lc, pool: ws_lc }
  - { path_prefix: /sticky, pool: sticky }
  - { path_prefix: /persist, pool: persist }
  - { path_prefix: /dying, pool: dying }
  - { path_prefix: /ws, pool: ws }
  - { path_prefix: /queue-short, pool: queue_short }
  - { path_prefix: /queue, pool: queue }
  - { pool: plain }
pools:
  retry_error:
    scheduler: rr
    servers: [{ address: 127.0.0.1:${refused}, max_fails: 0 }, ${s1.address}]
  post_once:
    scheduler: rr
    next_upstream: [error, timeout, http_503]
    servers: [{ address: ${s503.address}, max_fails: 0 }, ${s2.address}]
  post_again:
    scheduler: rr
    next_upstream: [error, timeout, http_503, non_idempotent]
    servers: [{ address: ${s503.address}, max_fails: 0 }, ${s2.address}]
  ws_lc:
    scheduler: lc
    servers: [${echo.address}, ${s2.address}]
  retry_status:
    scheduler: rr
    next_upstream: [error, timeout, http_503]
    servers: [{ address: ${s503.address}, max_fails: 0 }, ${s2.address}]
  no_retry_status:
    scheduler: rr
    servers: [{ address: ${s503.address}, max_fails: 0 }]
  sticky:
    scheduler: rr
    sticky: { cookie: SRV }
    servers: [${s1.address}, ${s2.address}]
  persist:
    scheduler: rr
    persistence_timeout: 1m
    servers: [${s1.address}, ${s2.address}]
  dying: { servers: [{ address: ${dying.address}, max_fails: 0 }] }
  ws: { servers: [${echo.address}] }
  queue:
    queue: { size: 1, timeout: 3s }
    servers: [{ address: ${slow.address}, max_conns: 1 }]
  queue_short:
    queue: { size: 5, timeout: 100ms }
    servers: [{ address: ${slow.address}, max_conns: 1 }]
  plain: { servers: [${s1.address}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([s1, s2, s503, slow].map((b) => b?.stop()));
  await Promise.all([dying, echo].map((b) => b?.stop()));
});

const json = (body: string) => JSON.parse(body) as Echo;
const url = (path: string) => `${fulcrum.url}${path}`;


test(`l7: a refused connection is retried on the next server; the client sees 200`, async () => {
  for (let i = 0; i < 4; i++) {
    const r = await request(url(`/retry-error/${i}`));
    assert.equal(r.status, 200, r.body);
    assert.equal(json(r.body).backend, "s1");
  }
});

test(`l7: a 503 listed in next_upstream goes to the next server; unlisted it passes through`, async () => {
  const before503 = s503.hits;
  for (let i = 0; i < 4; i++) {
    const r = await request(url(`/retry-status/${i}`));
    assert.equal(r.status, 200);
    assert.equal(json(r.body).backend, "s2");
  }
  assert.ok(s503.hits > before503, "the 503 server was tried");
  const r = await request(url("/no-retry-status"));
  assert.equal(r.status, 503);
  assert.match(r.body, /s503 says 503/);
});

test(`l7: cookie insert pins a client to its server and the cookie stays out of upstream requests`, async () => {
  const first = await request(url("/sticky/a"));
  const setCookie = String(first.headers["set-cookie"] ?? "");
  assert.match(setCookie, /^SRV=[0-9a-f]{8}; Path=\/; HttpOnly/);
  assert.equal(first.headers["cache-control"], "private", "nocache by default");
  const cookie = setCookie.split(";")[0];
  const pinned = json(first.body).backend;
  for (let i = 0; i < 6; i++) {
    const r = await request(url(`/sticky/${i}`), { headers: { cookie: `${cookie}; other=1` } });
    const e = json(r.body);
    assert.equal(e.backend, pinned, "the same server every time");
    assert.equal(e.headers["cookie"], "other=1", "indirect: the upstream never sees SRV");
    assert.equal(r.headers["set-cookie"], undefined, "no new cookie while pinned");
  }
  const stranger = await request(url("/sticky/x"), { headers: { cookie: "SRV=ffffffff" } });
  assert.match(String(stranger.headers["set-cookie"]), /^SRV=/, "an unknown server id is re-pinned");
});

test(`l7: source persistence keeps a client address on one server`, async () => {
  const first = json((await request(url("/persist/0"))).body).backend;
  for (let i = 1; i < 6; i++) assert.equal(json((await request(url(`/persist/${i}`))).body).backend, first);
});

test(`l7: X-Request-ID is passed through when sane, generated otherwise, and echoed back`, async () => {
  const given = await request(url("/id"), { headers: { "x-request-id": "abc-123" } });
  assert.equal(json(given.body).headers["x-request-id"], "abc-123");
  assert.equal(given.headers["x-request-id"], "abc-123");
  const made = await request(url("/id"));
  const id = json(made.body).headers["x-request-id"];
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(made.headers["x-request-id"], id);
  const insane = await request(url("/id"), { headers: { "x-request-id": "has space" } });
  assert.notEqual(json(insane.body).headers["x-request-id"], "has space");
});

test(`l7: a server that dies mid-response cuts the client's response short, not silently`, async () => {
  const r = await rawExchange(Number(new URL(url("/")).port), ["GET /dying HTTP/1.1\r\nHost: t\r\n\r\n"], 3000);
  assert.deepEqual(statuses(r.text), [200]);
  assert.ok(r.closed, "the client connection is closed");
  const body = r.text.slice(r.text.indexOf("\r\n\r\n") + 4);
  assert.ok(body.length >= 1000 && body.length < 100000, `got ${body.length} of 100000 body bytes`);
});


test(`l7: a server at max_conns queues the next request; past the queue size it is 503`, async () => {
  const replies = await Promise.all([0, 1, 2].map((i) => request(url(`/queue/${i}`))));
  const got = replies.map((r) => r.status).sort();
  assert.deepEqual(got, [200, 200, 503], `statuses ${got}`);
  assert.equal(replies.find((r) => r.status === 503)!.headers["x-fulcrum-error"], "shed");
});

test(`l7: a queued request that waits longer than the queue timeout gets 503`, async () => {
  const replies = await Promise.all([0, 1].map((i) => request(url(`/queue-short/${i}`))));
  const timedOut = replies.filter((r) => r.status === 503);
  assert.equal(timedOut.length, 1, `statuses ${replies.map((r) => r.status)}`);
  assert.equal(timedOut[0].headers["x-fulcrum-error"], "queue_timeout");
});

test("l7: an Upgrade is tunnelled both ways after 101", async () => {
  const port = Number(new URL(fulcrum.url).port);
  const r = await rawExchange(port, [
    "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    "hello ",
    "tunnel",
  ], 1500, 100);
  assert.deepEqual(statuses(r.text), [101]);
  assert.match(r.text, /\r\nupgrade: echo\r\n/i);
  assert.ok(r.text.endsWith("HELLO TUNNEL"), JSON.stringify(r.text));
});

test("l7 socket: an open tunnel counts as active on its server: with lc the next request goes to the other server", async () => {
  // ws_lc: lc over [the upgrade echo server, s2]; with both idle lc picks the first.
  const tunnel = net.connect(Number(new URL(url("/")).port), "127.0.0.1");
  let got = "";
  tunnel.on("data", (d: Buffer) => { got += d.toString("latin1"); });
  tunnel.on("error", () => {});
  const closed = new Promise<void>((resolve) => tunnel.once("close", () => resolve()));
  try {
    tunnel.write("GET /ws-lc HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nping");
    await waitFor("the tunnel to echo", () => got.endsWith("PING"), 5000);
    assert.deepEqual(statuses(got), [101]);
    for (let i = 0; i < 3; i++) {
      const r = await request(url("/ws-lc/plain"));
      assert.equal(r.status, 200, "went to s2, not the server holding the tunnel");
      assert.equal(json(r.body).backend, "s2");
    }
  } finally {
    tunnel.destroy();
  }
  await closed;
  // The tunnel's end releases its server and lc goes back to it (it answers a plain GET with
  // 400: it only speaks after an Upgrade). The release follows the close: poll, bounded.
  let back = false;
  for (let i = 0; i < 50 && !back; i++) {
    back = (await request(url("/ws-lc/plain"))).status === 400;
    if (!back) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(back, "after the tunnel closed, lc picks its server again");
});

test("l7 socket: a POST is not retried (not idempotent) unless next_upstream says non_idempotent", async () => {
  // Both pools retry on a 503 and start (rr) on the server that answers 503.
  let hits503 = s503.hits, hits2 = s2.hits;
  const once = await request(url("/post-once"), { method: "POST", body: "order=1" });
  assert.equal(once.status, 503, once.body);
  assert.match(once.body, /s503 says 503/);
  assert.equal(s503.hits, hits503 + 1, "the POST reached the first server");
  assert.equal(s2.hits, hits2, "and was not sent again");
  hits503 = s503.hits;
  hits2 = s2.hits;
  const again = await request(url("/post-again"), { method: "POST", body: "order=2" });
  assert.equal(again.status, 200, again.body);
  const e = json(again.body);
  assert.equal(e.backend, "s2");
  assert.equal(e.method, "POST");
  assert.equal(e.bodyBytes, "order=2".length, "the body is sent again whole");
  assert.equal(s503.hits, hits503 + 1, "with non_idempotent the POST reached the first server...");
  assert.equal(s2.hits, hits2 + 1, "...and then the next");
});
