// What a pool does with health: slow start ramps a returning server's weight, outlier detection
// ejects on live 5xx, panic mode balances over every server, and below quorum the sorry server
// takes the traffic.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { FlakyServer, startFlaky, waitFor, sleep } from "./helpers/health-servers.ts";
import { freePort } from "./helpers/backends.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { harness, spread, stopHarnesses } from "./helpers/health.ts";
import type { HealthEvent } from "../src/health/events.ts";

const servers: FlakyServer[] = [];
async function flaky(name: string, body?: string): Promise<FlakyServer> {
  const s = await startFlaky(name, body);
  servers.push(s);
  return s;
}

const running: Running[] = [];
async function fulcrum(yaml: string): Promise<Running> {
  const r = await startFulcrum(yaml);
  running.push(r);
  return r;
}

after(async () => {
  stopHarnesses();
  for (const r of running) await r.stop();
  for (const s of servers) await s.kill();
});

const RAMP_LAG_MS = 300;

test("health: slow start ramps a returning server's weight linearly in the WASM table", async () => {
  const s = await flaky("ramp");
  const slowstart = 1200;
  const h = await harness(`
pools:
  api:
    servers: [{ address: ${s.address}, weight: 100 }]
    health: { type: http, interval: 100ms, timeout: 80ms, rise: 1, fall: 1 }
    slowstart: ${slowstart}ms`);
  const server = h.pools.get("api")!.servers[0];
  await waitFor("the first check", () => h.service.registry.all()[0].checks > 0, 2000);
  assert.equal(h.dp.effectiveWeight[server.slot], 100, "no ramp at startup");
  s.mode = { status: 503 };
  await waitFor("DOWN", () => h.lines.some((l) => l.includes("DOWN")), 2000);
  s.mode = "ok";
  const isUp = (e: HealthEvent) => e.type === "server" && e.up;
  await waitFor("UP", () => h.events.some(isUp), 2000, 2);
  // The ramp begins just after the UP event is published: its time is the ramp's start or a hair before.
  const upAt = h.events.find(isUp)!.at;
  const samples: [number, number][] = [];
  for (let i = 0; i < 500 && (samples.length === 0 || samples[samples.length - 1][0] < slowstart + 300); i++) {
    samples.push([Date.now() - upAt, h.dp.effectiveWeight[server.slot]]);
    await sleep(20);
  }
  const weights = samples.map(([, w]) => w);
  const shown = samples.map(([t, w]) => `${t}:${w}`).join(" ");
  assert.ok(weights.every((w, i) => i === 0 || w >= weights[i - 1]), `never goes down: ${shown}`);
  assert.equal(weights[weights.length - 1], 100, "ends at the configured weight");
  const between = new Set(weights.filter((w) => w > 1 && w < 100));
  assert.ok(between.size >= 5, `passes through the weights in between, not in one step: ${shown}`);
  for (const [t, w] of samples) {
    // Never ahead of the line (+1: Date.now() is whole milliseconds and the ramp rounds up).
    assert.ok(w <= Math.ceil((100 * (t + 1)) / slowstart) + 1, `at ${t} ms weight ${w}, ahead of the ramp: ${shown}`);
    // Behind it by at most RAMP_LAG_MS: the weight moves on the ramp's 20 ms ticks, which a loaded
    // event loop runs late, so the bound is widened well past one tick.
    if (t <= slowstart) assert.ok(w >= (100 * (t - RAMP_LAG_MS)) / slowstart - 1, `at ${t} ms weight ${w}, behind the ramp: ${shown}`);
  }
  assert.ok(h.pools.get("api")!.isAvailable(server));
});

test("health: outlier detection ejects a server after consecutive 5xx, longer each time, and lets it back", async () => {
  const [a, b] = [await flaky("out-a"), await flaky("out-b")];
  const port = await freePort();
  const f = await fulcrum(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api:
    scheduler: rr
    servers: [{ address: ${a.address}, max_fails: 0 }, { address: ${b.address}, max_fails: 0 }]
    outlier: { consecutive_5xx: 3, base_ejection_time: 1s, max_ejection_percent: 50 }
`);
  // 1 s (not less): the six requests that must all miss the ejected server are sent after its
  // EJECTED line is seen, and on a loaded machine they must still fit inside the ejection.
  b.mode = { status: 503 };
  const label = `api/${b.address}`;
  const first = await spread(f.url, 6);
  assert.equal(first.get("out-b"), 3, "rr: b answered 503 three times");
  await waitFor("EJECTED", () => f.output().includes(`${label} EJECTED`), 2000);
  assert.match(f.output(), new RegExp(`${label.replace(/\./g, "\\.")} EJECTED: 3 consecutive 5xx or failed requests, for 1s \\(ejection 1\\)`));
  assert.deepEqual([...(await spread(f.url, 6))], [["out-a", 6]], "ejected: no traffic");
  assert.ok(!f.output().includes(`${label} RETURNED`), "the requests above were all sent during the ejection");
  await waitFor("RETURNED", () => f.output().includes(`${label} RETURNED`), 1000 + 2000);
  // Still failing: ejected again, for twice as long.
  await spread(f.url, 6);
  await waitFor("second ejection", () => f.output().includes("(ejection 2)"), 2000);
  assert.match(f.output(), /EJECTED: 3 consecutive 5xx or failed requests, for 2s \(ejection 2\)/);
  b.mode = "ok";
  await waitFor("RETURNED again", () => f.output().split(`${label} RETURNED`).length === 3, 2000 + 2000);
  assert.equal((await spread(f.url, 4)).get("out-b"), 2, "back in rotation");
});

test("health: outlier detection never ejects more than max_ejection_percent of the pool", async () => {
  const h = await harness(`
pools:
  api:
    servers: [127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003, 127.0.0.1:9004]
    outlier: { consecutive_5xx: 2, base_ejection_time: 5s, max_ejection_percent: 50 }`);
  const pool = h.pools.get("api")!;
  // Every server fails every request (the outcomes forward.ts reports).
  for (let round = 0; round < 3; round++) for (const s of pool.servers) pool.observe(s, round % 2 ? 502 : "no_response");
  const ejected = pool.servers.filter((s) => s.down.has("outlier"));
  assert.equal(ejected.length, 2, "50% of four");
  assert.equal(h.lines.filter((l) => l.includes("EJECTED")).length, 2);
  // A success resets a server's count.
  const healthy = pool.servers.find((s) => !s.down.has("outlier"))!;
  pool.observe(healthy, 200);
  assert.ok(!healthy.down.has("outlier"));
});

test("health: panic threshold: below it the pool balances over every server, above it only healthy ones", async () => {
  const [a, b, c] = [await flaky("panic-a"), await flaky("panic-b"), await flaky("panic-c")];
  const port = await freePort();
  const f = await fulcrum(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api:
    scheduler: rr
    panic_threshold: 50
    servers: [{ address: ${a.address}, max_fails: 0 }, { address: ${b.address}, max_fails: 0 }, { address: ${c.address}, max_fails: 0 }]
    health: { type: http, interval: 100ms, timeout: 80ms, rise: 1, fall: 1 }
`);
  await waitFor("first checks", () => [a, b, c].every((s) => s.requests > 0), 3000);
  c.mode = { status: 503 };
  await waitFor("c DOWN", () => f.output().includes(`api/${c.address} DOWN`), 2000);
  assert.deepEqual([...(await spread(f.url, 6))].sort(), [["panic-a", 3], ["panic-b", 3]], "2 of 3 up (67%): no panic");
  b.mode = { status: 503 };
  await waitFor("PANIC", () => f.output().includes("pool api PANIC"), 2000);
  assert.match(f.output(), /pool api PANIC: 1 of 3 servers up \(33%\), below panic_threshold 50%; balancing over all servers/);
  const inPanic = await spread(f.url, 6);
  assert.deepEqual([...inPanic].sort(), [["panic-a", 2], ["panic-b", 2], ["panic-c", 2]], "every server takes traffic again, broken ones too");
  const mark = f.output().length;
  b.mode = "ok";
  c.mode = "ok";
  await waitFor("panic over", () => f.output().includes("pool api panic over", mark), 2000);
  await waitFor("both UP", () => [b, c].every((s) => f.output().includes(`api/${s.address} UP`, mark)), 2000);
  assert.equal((await spread(f.url, 6)).size, 3);
});

test("health: below quorum the pool sends everything to the sorry server, and back when quorum returns", async () => {
  const [a, b, sorry] = [await flaky("q-a"), await flaky("q-b"), await flaky("q-sorry")];
  const port = await freePort();
  const f = await fulcrum(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api:
    scheduler: rr
    quorum: 2
    sorry_server: ${sorry.address}
    servers: [${a.address}, ${b.address}]
    health: { type: http, interval: 100ms, timeout: 80ms, rise: 1, fall: 1 }
`);
  await waitFor("first checks", () => [a, b].every((s) => s.requests > 0), 3000);
  assert.deepEqual([...(await spread(f.url, 4))].sort(), [["q-a", 2], ["q-b", 2]], "the sorry server stands by");
  assert.equal(sorry.requests, 0, "the sorry server is not health checked either");
  await b.kill();
  await waitFor("QUORUM LOST", () => f.output().includes("pool api QUORUM LOST"), 2000);
  assert.match(f.output(), new RegExp(`pool api QUORUM LOST: 1 of 2 servers up, quorum 2; sending traffic to sorry server ${sorry.address}`));
  assert.deepEqual([...(await spread(f.url, 4))], [["q-sorry", 4]], "a is up but below quorum everything goes to the sorry server");
  await b.start();
  await waitFor("QUORUM MET", () => f.output().includes("pool api QUORUM MET"), 2000);
  assert.deepEqual([...(await spread(f.url, 4))].sort(), [["q-a", 2], ["q-b", 2]]);
});
