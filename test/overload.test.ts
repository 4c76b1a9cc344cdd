// The overload guard end to end: the event loop of each process that serves (with workers, each
// worker; a reload runs in the supervisor and stalls none of them) is held for far longer than
// the listener's bound (stopped, then let go on: as a long synchronous job or a starved CPU would
// hold it); the guard's next sample sees the lag and new requests are shed with 503 +
// Retry-After, counted, until a second of samples is back under the bound, with no one's help.
// And a memory bound that Fulcrum's own resident memory is always over (1 MB), for the h2 and
// TCP paths.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, servingPids, startCli, writeTemp } from "./helpers/fulcrum.ts";
import { type Reply, request } from "./helpers/http.ts";
import { sleep, waitFor } from "./helpers/health-servers.ts";
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { needs } from "./helpers/peers.ts";
import { TcpClient } from "./helpers/l4.ts";

const noCurl = needs("curl");

let backend: Backend;
let fulcrum: Running;
let port = 0, adminPort = 0;
// Far above what a busy loaded machine's timers are late by, far below the stall.
const MAX_LAG_MS = 250;
const STALL_MS = 1000;

const config = () => `
listeners: [{ name: web, bind: 127.0.0.1:${port}, overload: { max_event_loop_lag: ${MAX_LAG_MS}ms, retry_after: 2s } }]
admin: { bind: 127.0.0.1:${adminPort}, token_file: ${TOKEN} }
routes:
  - { pool: web }
pools:
  web: { servers: [${backend.address}] }
`;
let TOKEN = "";

before(async () => {
  backend = await startBackend("b");
  port = await freePort();
  adminPort = await freePort();
  TOKEN = await writeTemp("overload-token\n", "token");
  fulcrum = await startCli(["run", "--config", await writeTemp(config())]);
});

after(async () => {
  await fulcrum?.stop();
  await backend?.stop();
});

test("overload: a stall of Fulcrum's event loop past max_event_loop_lag sheds new requests with 503 + Retry-After, counted, and it recovers by itself", async () => {
  const replies: { at: number; reply: Reply }[] = [];
  let stop = false, budget = 20_000;
  const clients = Promise.all(Array.from({ length: 4 }, async () => {
    while (!stop && budget-- > 0) replies.push({ at: performance.now(), reply: await request(`${fulcrum.url}/x`) });
  }));
  await sleep(500);
  assert.ok(replies.length > 0 && replies.every((r) => r.reply.status === 200), "all served before");
  // Every serving process's loop stands still for STALL_MS, then goes on where it was.
  const pids = await servingPids(fulcrum, `http://127.0.0.1:${adminPort}`);
  try {
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    await sleep(STALL_MS);
  } finally {
    for (const pid of pids) process.kill(pid, "SIGCONT");
  }
  // Recovered with no one's help: 100 requests in a row served after the stall.
  const servedInARow = () => { let n = 0; for (let i = replies.length - 1; i >= 0 && replies[i].reply.status === 200; i--) n++; return n; };
  const resumedAt = performance.now();
  await waitFor("100 requests in a row served", () => replies.some((r) => r.at > resumedAt) && servedInARow() >= 100, 20_000);
  stop = true;
  await clients;

  const shed = replies.filter((r) => r.reply.status === 503);
  assert.ok(shed.length > 0, `some requests shed (${replies.length} in all)`);
  for (const { reply } of shed) {
    assert.equal(reply.headers["x-fulcrum-error"], "overloaded");
    assert.equal(reply.headers["retry-after"], "2");
    assert.match(reply.body, /overloaded: event loop lag \d+ ms > 250 ms/);
  }
  assert.ok(replies.every((r) => r.reply.status === 200 || r.reply.status === 503), "nothing but served or shed");
  assert.ok(servedInARow() >= 100, "recovered");

  const metrics = (await request(`http://127.0.0.1:${adminPort}/metrics`)).body;
  const value = (line: RegExp) => Number(line.exec(metrics)?.[1] ?? -1);
  assert.equal(value(/^fulcrum_listener_overload_shed_total\{listener="web",reason="event_loop_lag"\} (\d+)$/m), shed.length);
  assert.equal(value(/^fulcrum_listener_errors_total\{listener="web",kind="overloaded"\} (\d+)$/m), shed.length);
  assert.equal(value(/^fulcrum_listener_overload_shed_total\{listener="web",reason="memory"\} (\d+)$/m), 0);
});

test("overload: a memory bound Fulcrum's own resident memory is over sheds every new h2 stream (503 + Retry-After) and HTTP/1 request, and closes new TCP connections; counted", { skip: noCurl }, async () => {
  // 1 MB: any process's resident memory is over it, so the guard sheds from its first sample.
  const [h, t, a] = [await freePort(), await freePort(), await freePort()];
  const memory = await startCli(["run", "--config", await writeTemp(`
listeners:
  - { name: h2c, bind: 127.0.0.1:${h}, http2: true, overload: { max_memory: 1MB, retry_after: 3s } }
  - { name: tcp, bind: 127.0.0.1:${t}, protocol: tcp, pool: web, overload: { max_memory: 1MB } }
admin: { bind: 127.0.0.1:${a}, token_file: ${TOKEN} }
routes: [{ pool: web }]
pools:
  web: { servers: [${backend.address}] }
`)], 2);
  const hitsBefore = backend.hits;
  try {
    await sleep(300); // the sampler's first periodic sample (100 ms) is past
    const child = runtime.spawn(["curl", "-s", "--max-time", "10", "--http2-prior-knowledge", "-D", "-", "-o", "/dev/null", `http://127.0.0.1:${h}/x`]);
    const head = await new Response(child.stdout).text();
    assert.equal(await child.exited, 0);
    assert.match(head, /^HTTP\/2 503/);
    assert.match(head, /\r\nx-fulcrum-error: overloaded\r\n/);
    assert.match(head, /\r\nretry-after: 3\r\n/);
    const h1 = await request(`http://127.0.0.1:${h}/x`);
    assert.equal(h1.status, 503);
    assert.match(h1.body, /overloaded: resident memory \d+ MB > 1 MB/);
    // Closed at once: reset before the connect completes on some runtimes, just after on others.
    const closed = await TcpClient.connect(t).then(async (tcp) => {
      await tcp.until(() => tcp.closedAt !== null, 5000, "the TCP connection closed");
      return tcp.bytes === 0;
    }, (e: Error) => /ECONNRESET|EPIPE/.test(e.message));
    assert.ok(closed, "the TCP connection was closed without a byte");
    const metrics = (await request(`http://127.0.0.1:${a}/metrics`)).body;
    assert.match(metrics, /^fulcrum_listener_overload_shed_total\{listener="h2c",reason="memory"\} 2$/m);
    assert.equal(backend.hits, hitsBefore, "nothing reached the server");
  } finally {
    await memory.stop();
  }
});
