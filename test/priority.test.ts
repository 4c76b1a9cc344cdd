// Route priority end to end: a real slow upstream with max_conns 2 and a queue of 4 behind
// Fulcrum; a bounded flood on a low-priority route fills the queue, and requests on a
// high-priority route still get through, ahead of the lows waiting; the lows are shed with 503
// and Retry-After, and /metrics counts both.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { runtime, type HttpServer } from "../src/runtime/index.ts";
import { freePort } from "./helpers/backends.ts";
import { type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { type Reply, request } from "./helpers/http.ts";
import { sleep } from "./helpers/health-servers.ts";

const SERVICE_MS = 150;
let upstream: HttpServer;
let fulcrum: Running;
let adminPort = 0;
/** What reached the upstream, in order, on the test's own clock. */
const arrivals: { path: string; at: number }[] = [];

before(async () => {
  upstream = await runtime.serveHttp({
    hostname: "127.0.0.1", port: 0,
    async fetch(req) {
      arrivals.push({ path: new URL(req.url).pathname, at: performance.now() });
      await sleep(SERVICE_MS);
      return new Response("ok\n");
    },
  });
  const port = await freePort();
  adminPort = await freePort();
  fulcrum = await startFulcrum(`
listeners: [{ bind: 127.0.0.1:${port} }]
admin: { bind: 127.0.0.1:${adminPort}, token_file: ${await writeTemp("priority-token\n", "token")} }
routes:
  - { path_prefix: /high, pool: slow, priority: high }
  - { path_prefix: /low, pool: slow, priority: 1 }
pools:
  slow:
    queue: { size: 4, timeout: 10s }
    servers: [{ address: 127.0.0.1:${upstream.port}, max_conns: 2 }]
`);
});

after(async () => {
  await fulcrum?.stop();
  await upstream?.stop();
});

test("priority: under a flood on a low route, a high route's requests are served ahead of the lows waiting; lows are shed with 503 and Retry-After", async () => {
  const lows: Reply[] = [];
  const highs: { sentAt: number; path: string; reply: Reply }[] = [];
  let flooding = true;
  // 8 low clients against 2 slots and 4 queue places: some are always shed. Bounded: 250
  // requests at most, a shed client pauses 20 ms before its next.
  let budget = 250;
  const flood = Promise.all(Array.from({ length: 8 }, async (_, c) => {
    for (let k = 0; flooding && budget-- > 0; k++) {
      const r = await request(`${fulcrum.url}/low/${c}/${k}`);
      lows.push(r);
      if (r.status !== 200) await sleep(20);
    }
  }));
  await sleep(600); // the queue is full of lows by now
  for (let k = 0; k < 5; k++) {
    const path = `/high/${k}`, sentAt = performance.now();
    highs.push({ sentAt, path, reply: await request(`${fulcrum.url}${path}`) });
    await sleep(100);
  }
  flooding = false;
  await flood;

  assert.deepEqual(highs.map((h) => h.reply.status), [200, 200, 200, 200, 200], "every high request served");
  const shed = lows.filter((r) => r.status === 503);
  assert.ok(shed.length > 0, `lows shed: ${lows.length} lows, statuses ${[...new Set(lows.map((r) => r.status))]}`);
  for (const r of shed) {
    assert.equal(r.headers["x-fulcrum-error"], "shed");
    assert.equal(r.headers["retry-after"], "10", "Retry-After: the queue timeout, in seconds");
  }
  assert.ok(lows.some((r) => r.status === 200), "lows are still served when no high waits");
  // Ahead of the lows: between a high request's sending and its arrival upstream, only requests
  // already picked before it came can arrive (at most max_conns of them); in arrival order the
  // 4 lows queued ahead of it would all have gone first.
  for (const h of highs) {
    const arrived = arrivals.find((a) => a.path === h.path);
    assert.ok(arrived, `${h.path} reached the upstream`);
    const overtaken = arrivals.filter((a) => a.path.startsWith("/low/") && a.at > h.sentAt && a.at < arrived.at).length;
    assert.ok(overtaken <= 2, `${h.path}: ${overtaken} low requests reached the upstream while it waited`);
  }

  const metrics = (await request(`http://127.0.0.1:${adminPort}/metrics`)).body;
  const value = (line: RegExp) => Number(line.exec(metrics)?.[1] ?? 0);
  assert.equal(value(/^fulcrum_pool_queue_shed_total\{pool="slow",priority="1"\} (\d+)$/m), shed.length, "every shed low counted");
  assert.equal(value(/^fulcrum_pool_queue_shed_total\{pool="slow",priority="9"\} (\d+)$/m), 0, "no high shed");
  assert.ok(value(/^fulcrum_pool_queue_served_total\{pool="slow",priority="9"\} (\d+)$/m) >= 1, "highs dequeued");
  assert.equal(value(/^fulcrum_listener_errors_total\{listener="[^"]*",kind="shed"\} (\d+)$/m), shed.length);
});
