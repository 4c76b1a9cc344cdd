// When checks run and what their verdicts do: rise/fall with interval, fastinter and downinter as
// they ran (recorded check times), first checks spread over the interval, `fulcrum run` taking a
// failing server out and back, shared checks, several checks per server, and the event stream.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { MonitorRegistry } from "../src/health/registry.ts";
import { FlakyServer, startFlaky, waitFor, sleep } from "./helpers/health-servers.ts";
import { freePort } from "./helpers/backends.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { type CheckRecord, checkOf, harness, linesMatching, monitorFor, stopHarnesses, who } from "./helpers/health.ts";

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

// A check on a loaded event loop may start late; that shortens the gap before the next one
// (the schedule keeps to planned times) and lengthens the gap after it. Gaps between recorded
// check starts are compared with their planned length widened by this much either way, which
// still keeps fastinter (50 ms), downinter (600 ms) and interval (1200 ms) apart.
const LATE_MS = 250;

test("health: rise and fall count consecutive results; the recorded checks ran at fastinter while changing, downinter while down", async () => {
  const s = await flaky("sched1");
  const interval = 1200, fastinter = 50, downinter = 600;
  const runs: CheckRecord[] = [];
  const timing = `interval: ${interval}ms, fastinter: ${fastinter}ms, downinter: ${downinter}ms, timeout: 200ms`;
  const m = monitorFor(s, `{ type: http, ${timing}, rise: 2, fall: 3 }`, runs);
  const transitions: string[] = [];
  m.subscribe((_, c) => { if (c.transition) transitions.push(`${c.transition.up ? "UP" : "DOWN"} ${c.transition.detail} (${c.transition.streak}/${c.transition.needed})`); });
  m.start(0);
  try {
    await waitFor("the first check", () => m.checks >= 1, 2000, 2);
    assert.equal(m.up, true);
    s.mode = { status: 500 };
    await waitFor("three failures", () => !m.up, interval + 3000);
    assert.deepEqual(transitions, ["DOWN HTTP 500, expected 200-399 (3/3)"]);
    await waitFor("two more checks while down", () => m.checks >= 6, 2 * downinter + 3000);
    s.mode = "ok";
    await waitFor("two successes", () => m.up, downinter + 3000);
    assert.deepEqual(transitions.slice(1), ["UP HTTP 200 (2/2)"]);
  } finally {
    m.stop();
  }
  const outcomes = runs.map((r) => (r.ok ? "ok" : "fail")).join(" ");
  const firstFail = runs.findIndex((r) => r.ok === false);
  const firstOk = runs.findIndex((r, i) => i > firstFail && r.ok);
  assert.equal(firstFail, 1, outcomes);
  assert.ok(firstOk >= firstFail + 5, outcomes);
  assert.deepEqual(runs.slice(firstOk).map((r) => r.ok), [true, true], `UP on the second success: ${outcomes}`);
  const gap = (i: number) => runs[i].at - runs[i - 1].at;
  const gaps = runs.slice(1).map((_, i) => gap(i + 1).toFixed(0)).join(", ");
  const near = (i: number, planned: number, what: string) =>
    assert.ok(Math.abs(gap(i) - planned) <= LATE_MS, `${what}: check ${i} came ${gap(i).toFixed(0)} ms after the one before, planned ${planned}; gaps ${gaps}`);
  near(firstFail, interval, "interval while up");
  near(firstFail + 1, fastinter, "fastinter after the first failure");
  near(firstFail + 2, fastinter, "fastinter after the second failure");
  for (let i = firstFail + 3; i <= firstOk; i++) near(i, downinter, "downinter while down");
  near(firstOk + 1, fastinter, "fastinter after the first success");
});

test("health: the first checks start spread over the interval, in order, not all at once", async () => {
  const five = await Promise.all(["s1", "s2", "s3", "s4", "s5"].map((n) => flaky(`spread-${n}`)));
  const registry = new MonitorRegistry();
  const interval = 1500, step = interval / five.length;
  const check = checkOf(`{ type: tcp, interval: ${interval}ms, timeout: 200ms }`);
  for (const s of five) registry.acquire({ host: "127.0.0.1", port: s.port }, check).subscribe(() => {});
  registry.start();
  try {
    await waitFor("every first check", () => five.every((s) => s.connectTimes.length >= 1), interval + 3000, 5);
  } finally {
    registry.stop();
  }
  // The TCP check's connect, as each server accepted it: planned at 0, 300, 600, 900, 1200 ms.
  const firstAt = five.map((s) => s.connectTimes[0]);
  const gaps = firstAt.slice(1).map((t, i) => t - firstAt[i]);
  const shown = gaps.map((g) => g.toFixed(0)).join(", ");
  assert.ok(gaps.every((g) => Math.abs(g - step) <= LATE_MS), `gaps between first checks ${shown} ms, planned ${step} each`);
  assert.ok(firstAt[4] - firstAt[0] >= interval - step - LATE_MS, `spread over ${(firstAt[4] - firstAt[0]).toFixed(0)} ms`);
});

test("health: fulcrum run takes a failing server out after fall failed checks (503, refused, hang), logs each transition once, and brings it back after rise", async () => {
  const [a, b] = [await flaky("e2e-a"), await flaky("e2e-b")];
  const port = await freePort();
  const interval = 200, fall = 3, rise = 2, timeout = 100;
  const f = await fulcrum(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api:
    scheduler: rr
    servers: [${a.address}, ${b.address}]
    health: { type: http, path: /healthz, interval: ${interval}ms, timeout: ${timeout}ms, rise: ${rise}, fall: ${fall} }
`);
  const label = `api/${b.address}`;
  await waitFor("checks of both servers", () => a.requests > 0 && b.requests > 0, 3000);
  assert.deepEqual(new Set([await who(f.url), await who(f.url)]), new Set(["e2e-a", "e2e-b"]));

  // 503: out after `fall` failures.
  let mark = f.output().length;
  b.mode = { status: 503 };
  // How long to wait for a verdict: `fall` checks and a timeout, plus slack for a loaded machine
  // (a limit on waiting, not a measurement: the "(3/3)" in the line shows it took `fall` checks).
  const bound = interval * fall + timeout + 2000;
  await waitFor("the DOWN line", () => f.output().includes(`${label} DOWN`, mark), bound);
  assert.deepEqual(linesMatching(f.output(), /DOWN/, mark).map((l) => l.replace(/^.*?fulcrum: /, "")),
    [`${label} DOWN: HTTP 503, expected 200-399 (3/3)`]);
  for (let i = 0; i < 4; i++) assert.equal(await who(f.url), "e2e-a", "the DOWN server gets no traffic");

  // Back: UP after `rise` successes.
  mark = f.output().length;
  b.mode = "ok";
  await waitFor("the UP line", () => f.output().includes(`${label} UP`, mark), interval * rise + timeout + 2000);
  assert.deepEqual(linesMatching(f.output(), /UP:/, mark).map((l) => l.replace(/^.*?fulcrum: /, "")), [`${label} UP: HTTP 200 (2/2)`]);
  assert.deepEqual(new Set([await who(f.url), await who(f.url)]), new Set(["e2e-a", "e2e-b"]));

  // Dies: connection refused.
  mark = f.output().length;
  await b.kill();
  await waitFor("the DOWN line after death", () => f.output().includes(`${label} DOWN`, mark), bound);
  assert.match(f.output().slice(mark), new RegExp(`${label.replace(/[.]/g, "\\.")} DOWN: HTTP connect refused \\(3/3\\)`));
  for (let i = 0; i < 4; i++) assert.equal(await who(f.url), "e2e-a");

  // Hangs after accept: the timeout.
  await b.start();
  await waitFor("UP again", () => f.output().includes(`${label} UP`, mark), interval * rise + timeout + 2000);
  mark = f.output().length;
  b.mode = "hang";
  await waitFor("the DOWN line for a hanging server", () => f.output().includes(`${label} DOWN`, mark), bound);
  assert.match(f.output().slice(mark), /DOWN: HTTP timed out after 100ms waiting for the response \(3\/3\)/);
  b.mode = "ok";
  // Each transition is logged exactly once.
  assert.equal(linesMatching(f.output(), new RegExp(`${label.replace(/[.]/g, "\\.")} DOWN`)).length, 3);
});

test("health: events reach subscribers in order: check, then server, for DOWN and UP", async () => {
  const s = await flaky("events");
  const h = await harness(`
pools:
  api:
    servers: [${s.address}]
    health: { type: tcp, interval: 100ms, timeout: 80ms, rise: 1, fall: 1 }`);
  await waitFor("first check", () => h.service.registry.all()[0].checks > 0, 2000);
  await s.kill();
  await waitFor("DOWN events", () => h.events.length >= 3, 2000);
  await s.start();
  await waitFor("UP events", () => h.events.length >= 6, 2000);
  const summary = h.events.map((e) =>
    e.type === "check" ? `check ${e.address} ${e.up ? "up" : "down"} ${e.detail}`
    : e.type === "server" ? `server ${e.server} ${e.up ? "up" : "down"} ${e.detail}`
    : e.type === "quorum" ? `quorum ${e.pool} ${e.met ? "met" : "lost"} ${e.up}/${e.quorum}` : e.type);
  assert.deepEqual(summary, [
    `check ${s.address} down TCP connect refused`,
    `server api/${s.address} down TCP connect refused`,
    "quorum api lost 0/1", // no server up: VRRP can track this
    `check ${s.address} up TCP connect ok`,
    `server api/${s.address} up TCP connect ok`,
    "quorum api met 1/1",
  ]);
  assert.ok(h.events.every((e) => typeof e.at === "number" && e.at > 0));
});

test("health: one check of a server shared by two pools: one verdict, one check event, a log line per pool", async () => {
  const s = await flaky("shared");
  const h = await harness(`
routes: [{ path_prefix: /web, pool: web }, { path_prefix: /admin, pool: admin }, { pool: api }]
pools:
  api:
    servers: [${s.address}]
    health: { type: http, path: /healthz, interval: 100ms, timeout: 80ms, rise: 1, fall: 2 }
  web:
    servers: [${s.address}]
    health: { type: http, path: /healthz, interval: 100ms, timeout: 80ms, rise: 1, fall: 2 }
  admin:
    servers: [${s.address}]
    health: { type: http, path: /admin-health, interval: 100ms, timeout: 80ms, rise: 1, fall: 2 }`);
  assert.equal(h.service.registry.all().length, 2, "api and web share a monitor; admin checks differently");
  await waitFor("first checks", () => h.service.registry.all().every((m) => m.checks > 0), 2000);
  // The checks the server saw within a window, over the window as it really lasted (a loaded
  // machine may stretch the sleep; the schedule never bursts to catch up).
  const from = performance.now();
  await sleep(600);
  const to = performance.now();
  const seen = s.requestTimes.filter((t) => t >= from && t <= to).length;
  const perSecond = (seen * 1000) / (to - from);
  assert.ok(perSecond <= 25, `two monitors at 10/s each, got ${perSecond.toFixed(1)}/s (three would be 30/s)`);
  await s.kill();
  await waitFor("every pool DOWN", () => h.lines.filter((l) => l.includes("DOWN")).length === 3, 3000);
  const checkEvents = h.events.filter((e) => e.type === "check" && !e.up);
  assert.equal(checkEvents.length, 2, "one check event per shared check");
  const serverEvents = h.events.filter((e) => e.type === "server" && !e.up).map((e) => e.type === "server" && e.pool);
  assert.deepEqual(serverEvents.sort(), ["admin", "api", "web"]);
  const apiServer = h.pools.get("api")!.servers[0], webServer = h.pools.get("web")!.servers[0];
  assert.ok(apiServer.down.has("health") && webServer.down.has("health"));
  // The check event comes before the pools' events for the same transition.
  const firstCheck = h.events.findIndex((e) => e.type === "check");
  const firstServer = h.events.findIndex((e) => e.type === "server");
  assert.ok(firstCheck < firstServer);
  await s.start();
  await waitFor("every pool UP", () => h.lines.filter((l) => l.includes(" UP")).length === 3, 3000);
  assert.ok(!apiServer.down.has("health") && !webServer.down.has("health"));
  const snap = h.service.snapshot();
  assert.deepEqual(snap.map((p) => [p.pool, p.servers[0].up, p.servers[0].available]), [["api", true, true], ["web", true, true], ["admin", true, true]]);
});

test("health: several checks on a server must all pass; the one that fails is the reason", async () => {
  const s = await flaky("multi");
  const h = await harness(`
pools:
  api:
    servers: [${s.address}]
    health:
      - { type: tcp, interval: 100ms, timeout: 80ms, fall: 1, rise: 1 }
      - { type: http, interval: 100ms, timeout: 80ms, fall: 1, rise: 1 }`);
  await waitFor("first checks", () => h.service.registry.all().every((m) => m.checks > 0), 2000);
  s.mode = { status: 500 };
  await waitFor("DOWN", () => h.lines.some((l) => l.includes("DOWN")), 2000);
  assert.match(h.lines.find((l) => l.includes("DOWN"))!, /DOWN: HTTP 500, expected 200-399 \(1\/1\)$/);
  assert.ok(h.pools.get("api")!.servers[0].down.has("health"), "TCP alone still passes, HTTP does not");
  s.mode = "ok";
  await waitFor("UP", () => h.lines.some((l) => l.includes(" UP")), 2000);
});
