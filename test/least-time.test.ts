// least_time end to end: three real upstream servers behind Fulcrum under a bounded load; one
// turns slow (its handler starts delaying responses), then recovers. Every response is recorded
// with its arrival time and server, and the assertions are on shares over recorded windows.
// Then what a response time runs to (head or last byte), read from the estimates in /metrics.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { sleep } from "./helpers/health-servers.ts";
import { type HttpServer, runtime } from "../src/runtime/index.ts";

let a: Backend, b: Backend, c: Backend;
/** Sends its head and a first chunk at once, the rest of its body 150 ms later. */
let slowBody: HttpServer;
let fulcrum: Running;
let adminPort = 0;
const DECAY_MS = 500;

before(async () => {
  [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => startBackend(n)));
  slowBody = await runtime.serveHttp({
    hostname: "127.0.0.1", port: 0,
    fetch: () => new Response(new ReadableStream({
      async start(ctl) {
        ctl.enqueue(new TextEncoder().encode("head and a first chunk\n"));
        await sleep(150);
        ctl.enqueue(new TextEncoder().encode("the rest\n"));
        ctl.close();
      },
    })),
  });
  const port = await freePort();
  adminPort = await freePort();
  fulcrum = await startFulcrum(`
listeners: [{ bind: 127.0.0.1:${port} }]
admin: { bind: 127.0.0.1:${adminPort}, token_file: ${await writeTemp("least-time-token\n", "token")} }
routes:
  - { path_prefix: /to-head, pool: to_head }
  - { path_prefix: /to-last-byte, pool: to_last_byte }
  - { path_prefix: /, pool: web }
pools:
  to_head: { scheduler: least_time, least_time: header, servers: [127.0.0.1:${slowBody.port}] }
  to_last_byte: { scheduler: least_time, least_time: last_byte, servers: [127.0.0.1:${slowBody.port}] }
  web:
    scheduler: least_time
    least_time: header
    least_time_decay: ${DECAY_MS}ms
    servers: [${a.address}, ${b.address}, ${c.address}]
`);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([a, b, c].map((s) => s?.stop()));
  await slowBody?.stop();
});

interface Sample { at: number; backend: string }

/** CLIENTS loops of sequential requests until `until` says stop (bounded by MAX_REQUESTS). */
async function load(url: string, until: () => boolean, samples: Sample[], t0: number): Promise<void> {
  const CLIENTS = 6, MAX_REQUESTS = 40_000;
  let sent = 0;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (!until() && sent++ < MAX_REQUESTS) {
      const r = await request(url);
      assert.equal(r.status, 200, r.body);
      samples.push({ at: performance.now() - t0, backend: (JSON.parse(r.body) as { backend: string }).backend });
    }
  }));
}

function share(samples: Sample[], from: number, to: number, backend: string): { share: number; n: number } {
  const w = samples.filter((s) => s.at >= from && s.at < to);
  return { share: w.filter((s) => s.backend === backend).length / Math.max(1, w.length), n: w.length };
}

test("least_time: a server that turns slow loses its share within a second, and after it recovers its share comes back", async () => {
  const samples: Sample[] = [];
  const t0 = performance.now();
  // Phases, ms from t0: all fast until SLOW, b delays every response by 150 ms until FAST, then
  // all fast again until END. Windows leave a margin after each change for the estimates to move
  // (within one decay constant of the change for the slowdown; a probe of b, due once its
  // estimate decays below the fast servers' cost, ~3 constants, then ~2 more to converge).
  const SLOW = 1500, FAST = 4500, END = 9000;
  const phases = (async () => {
    await sleep(SLOW);
    b.behaviour = { delayMs: 150 };
    const slowAt = performance.now() - t0;
    await sleep(FAST - SLOW);
    b.behaviour = "echo";
    const fastAt = performance.now() - t0;
    await sleep(END - FAST);
    return { slowAt, fastAt };
  })();
  let done = false;
  void phases.then(() => { done = true; });
  await load(`${fulcrum.url}/`, () => done, samples, t0);
  const { slowAt, fastAt } = await phases;

  const before = share(samples, 300, slowAt, "b");
  const slow = share(samples, slowAt + 2 * DECAY_MS, fastAt, "b");
  const recovered = share(samples, fastAt + 6 * DECAY_MS, END, "b");
  const detail = `b's share: before ${before.share.toFixed(3)} of ${before.n}, slow ${slow.share.toFixed(3)} of ${slow.n}, recovered ${recovered.share.toFixed(3)} of ${recovered.n}`;
  assert.ok(before.n > 50 && slow.n > 50 && recovered.n > 50, `enough responses in each window: ${detail}`);
  // Fast, b takes about a third on a quiet machine; on a loaded one a stall (a collection, the
  // other core busy) gives any server a high estimate for a while, so the fast-phase bounds are
  // loose, and what is asserted tightly is the contrast with the slow phase.
  assert.ok(before.share > 0.1, `fast, b takes its part: ${detail}`);
  assert.ok(slow.share < 0.12, `slow, b is avoided (a third without least_time): ${detail}`);
  assert.ok(recovered.share > 0.1 && recovered.share > 3 * slow.share, `recovered, b takes its part again: ${detail}`);
  // While slow, b was still probed now and then (its estimate decayed), not dropped for good.
  const probes = samples.filter((s) => s.backend === "b" && s.at >= slowAt + 2 * DECAY_MS && s.at < fastAt).length;
  assert.ok(probes >= 1, `b probed while slow: ${detail}`);
  // The estimates are in /metrics: every server has one, and b's is a fast one again.
  const metrics = (await request(`http://127.0.0.1:${adminPort}/metrics`)).body;
  const estimates = [a, b, c].map((s) => Number(new RegExp(`^fulcrum_server_response_time_estimate_seconds\\{pool="web",server="${s.address}"\\} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN));
  assert.ok(estimates.every((e) => e > 0), `estimates ${estimates} s`);
  assert.ok(estimates[1] < 0.15, `b's estimate ${estimates[1]} s: below the 150 ms it was while slow`);
});

test("least_time: header times to the response head, last_byte to its end: a server whose body takes 150 ms after its head", async () => {
  for (let k = 0; k < 3; k++) {
    for (const path of ["/to-head", "/to-last-byte"]) {
      const r = await request(`${fulcrum.url}${path}`);
      assert.equal(r.status, 200);
      assert.equal(r.body, "head and a first chunk\nthe rest\n");
    }
  }
  const metrics = (await request(`http://127.0.0.1:${adminPort}/metrics`)).body;
  const estimate = (pool: string) => Number(new RegExp(`^fulcrum_server_response_time_estimate_seconds\\{pool="${pool}",server="[^"]+"\\} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN);
  const head = estimate("to_head"), last = estimate("to_last_byte");
  assert.ok(last >= 0.15, `last_byte estimate ${last} s: the whole body, at least 150 ms`);
  assert.ok(head > 0 && head < 0.15, `header estimate ${head} s: the head came before the 150 ms pause`);
});
