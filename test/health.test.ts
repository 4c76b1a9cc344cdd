// Health checks: the config section, the checkers against real servers that break in the ways
// real servers do, the rise/fall scheduler, and `fulcrum run` taking servers out and back.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../src/config/load.ts";
import { formatConfigErrors } from "../src/config/errors.ts";
import type { Config, PoolConfig } from "../src/config/schema.ts";
import type { CheckConfig } from "../src/health/config.ts";
import { probeFor } from "../src/health/checkers/index.ts";
import { Monitor } from "../src/health/monitor.ts";
import { MonitorRegistry } from "../src/health/registry.ts";
import { FlakyServer, startFlaky, waitFor, sleep } from "./helpers/health-servers.ts";
import { freePort } from "./helpers/backends.ts";
import { fulcrumCommand, startFulcrum, writeTemp, type Running } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { createDataPlane } from "../src/core/wasm.ts";
import type { DataPlane } from "../src/core/dataplane.ts";
import { Pool } from "../src/edge/pools.ts";
import { HealthService } from "../src/health/service.ts";
import type { HealthEvent } from "../src/health/events.ts";
import { runtime } from "../src/runtime/index.ts";
import process from "node:process";
import { needs } from "./helpers/peers.ts";

// ------------------------------------------------------------------------------------------ helpers

function configOf(text: string): Config {
  const r = parseConfig(text, "test.yaml");
  if (!r.ok) assert.fail(formatConfigErrors("test.yaml", r.errors));
  return r.config;
}

function errorLines(text: string): string[] {
  const r = parseConfig(text, "test.yaml");
  if (r.ok) assert.fail("expected config errors");
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

/** A config with one pool `api` whose body is given (YAML lines under the pool). */
function poolYaml(body: string, servers = "[127.0.0.1:9001, 127.0.0.1:9002]"): string {
  const indented = body.trim().split("\n").map((l) => `    ${l}`).join("\n");
  return `listeners: [{ bind: "127.0.0.1:8080" }]\npools:\n  api:\n    servers: ${servers}\n${indented}\n`;
}

function poolOf(body: string): PoolConfig {
  return configOf(poolYaml(body)).pools[0];
}

function checkOf(body: string): CheckConfig {
  return poolOf(`health: ${body}`).health.checks[0];
}

/** A Monitor on its own (not started) for a check written as YAML flow mapping. */
function monitorFor(server: { port: number }, check: string): Monitor {
  const c = checkOf(check);
  const address = { host: "127.0.0.1", port: server.port };
  const { target, probe } = probeFor(c, address);
  return new Monitor("test", `127.0.0.1:${server.port}`, c, target, probe);
}

const servers: FlakyServer[] = [];
async function flaky(name: string, body?: string): Promise<FlakyServer> {
  const s = await startFlaky(name, body);
  servers.push(s);
  return s;
}

/** Temp files the tests write, removed at the end. */
const tempFiles: string[] = [];
after(async () => { if (tempFiles.length) await sh(["rm", "-f", ...tempFiles]); });

const running: Running[] = [];
async function fulcrum(yaml: string): Promise<Running> {
  const r = await startFulcrum(yaml);
  running.push(r);
  return r;
}

after(async () => {
  for (const r of running) await r.stop();
  for (const s of servers) await s.kill();
});

/** Which backend answers GET / through the balancer (its X-Backend), or "HTTP <status>". */
async function who(url: string): Promise<string> {
  const r = await request(`${url}/`);
  const backend = r.headers["x-backend"];
  return r.status === 200 && typeof backend === "string" ? backend : `HTTP ${r.status}`;
}

/** Runs a command to completion (bounded: killed after 10 s) and returns its stdout. */
async function capture(argv: string[]): Promise<string> {
  const child = runtime.spawn(argv);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [out] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  await child.exited;
  clearTimeout(timer);
  return out;
}

/** Lines of output after `from` characters that match `re`. */
function linesMatching(out: string, re: RegExp, from = 0): string[] {
  return out.slice(from).split("\n").filter((l) => re.test(l));
}

// ------------------------------------------------------------------------------------------ config

test("health: config reads a check with HAProxy's defaults and keeps it plain data", () => {
  const c = checkOf("{ type: http, path: /healthz }");
  assert.deepEqual(c, {
    intervalMs: 2000, fastinterMs: 2000, downinterMs: 2000, timeoutMs: 1000, rise: 2, fall: 3, initial: "up",
    type: "http", port: null, method: "GET", path: "/healthz", host: null, status: [[200, 399]],
    bodyRegex: null, digest: null, sni: null, verify: true, ca: null, reuseConnection: true,
  });
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c, "a check survives JSON: its identity is its JSON");
  const full = checkOf(`{ type: https, interval: 500ms, fastinter: 100ms, downinter: 1s, timeout: 200ms, rise: 1, fall: 5,
    initial: down, port: 8443, method: head, host: api.example.test, status: [200, "301-302"],
    body_regex: "^ok", digest: 0123456789ABCDEF0123456789abcdef, verify: false }`);
  assert.equal(full.type, "https");
  assert.ok(full.type === "https");
  assert.deepEqual(
    [full.intervalMs, full.fastinterMs, full.downinterMs, full.timeoutMs, full.rise, full.fall, full.initial],
    [500, 100, 1000, 200, 1, 5, "down"],
  );
  assert.deepEqual([full.port, full.method, full.host, full.sni, full.verify], [8443, "HEAD", "api.example.test", "api.example.test", false]);
  assert.deepEqual(full.status, [[200, 200], [301, 302]]);
  assert.equal(full.digest, "0123456789abcdef0123456789abcdef");
  // A short interval shortens the default timeout with it.
  assert.equal(checkOf("{ type: tcp, interval: 300ms }").timeoutMs, 300);
});

test("health: config reads every check type and the pool-level settings", () => {
  const p = poolOf(`
health:
  - { type: tcp, port: 9100 }
  - { type: icmp }
  - { type: udp, send: ping, expect: "^pong" }
  - { type: udp, send: hello }
  - { type: script, command: "test -f /tmp/up", dynamic: true }
  - { type: script, command: [/bin/true, x] }
  - { type: agent, port: 9999, send: "hello\\n" }
slowstart: 30s
outlier: { consecutive_5xx: 3, base_ejection_time: 10s, max_ejection_percent: 50 }
panic_threshold: 50
quorum: 2
sorry_server: 127.0.0.1:9999`);
  const [tcp, icmp, udp, udpNoReply, script, argv, agent] = p.health.checks;
  assert.deepEqual([tcp.type, tcp.type === "tcp" && tcp.port], ["tcp", 9100]);
  assert.equal(icmp.type, "icmp");
  assert.ok(udp.type === "udp" && udp.requireReply && udp.expect === "^pong" && udp.send === "ping");
  assert.ok(udpNoReply.type === "udp" && !udpNoReply.requireReply);
  assert.ok(script.type === "script" && script.dynamic);
  assert.deepEqual(script.type === "script" && script.command, ["/bin/sh", "-c", "test -f /tmp/up"]);
  assert.deepEqual(argv.type === "script" && argv.command, ["/bin/true", "x"]);
  assert.ok(agent.type === "agent" && agent.port === 9999 && agent.send === "hello\n");
  assert.equal(p.health.slowstartMs, 30_000);
  assert.deepEqual(p.health.outlier, { consecutive5xx: 3, baseEjectionMs: 10_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 });
  assert.equal(p.health.panicThreshold, 50);
  assert.equal(p.health.quorum, 2);
  assert.deepEqual(p.health.sorryServer?.address, { host: "127.0.0.1", port: 9999 });
  assert.deepEqual(poolOf("outlier: {}").health.outlier, { consecutive5xx: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 10 });
});

test("health: config errors name the key path and what was expected", () => {
  const cases: [string, string][] = [
    ["health: { type: http, rise: 0 }", "pools.api.health.rise: expected an integer 1..100, got 0"],
    ["health: { type: htp }", `pools.api.health.type: expected one of tcp, http, https, icmp, udp, script, agent, got "htp" (did you mean "http"?)`],
    ["health: { path: /x }", "pools.api.health.type: expected one of tcp, http, https, icmp, udp, script, agent, got nothing"],
    ["health: { type: tcp, path: /x }", "pools.api.health.path: unknown key for a tcp check (path is for http, https checks)"],
    ["health: { type: http, intervall: 2s }", `pools.api.health.intervall: unknown key (did you mean "interval"?)`],
    ["health: { type: http, interval: 1s, timeout: 2s }", `pools.api.health.timeout: expected a duration no longer than interval (1s), got "2s"`],
    ["health: { type: http, interval: 2 }", `pools.api.health.interval: expected a duration like "2s" or "150ms", got 2`],
    ["health: { type: http, status: 700 }", `pools.api.health.status: expected a status like 200, a range like "200-399", or a list of them, got 700`],
    ["health: { type: http, status: [200, 399-200] }", `pools.api.health.status[1]: expected a status like 200, a range like "200-399", or a list of them, got "399-200"`],
    ["health: { type: http, path: healthz }", `pools.api.health.path: expected a path starting with "/" without spaces, got "healthz"`],
    ["health: { type: http, body_regex: \"(\" }", "pools.api.health.body_regex: expected a valid regular expression"],
    ["health: { type: http, digest: abc }", `pools.api.health.digest: expected an MD5 digest of 32 hex digits, got "abc"`],
    ["health: { type: https, verify: no }", `pools.api.health.verify: expected true or false, got "no"`],
    ["health: { type: agent }", "pools.api.health.port: expected an integer 1..65535, got nothing"],
    ["health: { type: udp }", "pools.api.health.send: expected a payload string, got nothing"],
    ["health: { type: script, command: [] }", "pools.api.health.command: expected a command line string or a non-empty list of arguments, got an empty list"],
    ["health: []", "pools.api.health: expected a check mapping or a non-empty list of them, got an empty list"],
    ["health: [{ type: tcp }, { type: tcp, fall: 101 }]", "pools.api.health[1].fall: expected an integer 1..100, got 101"],
    ["quorum: 3", "pools.api.quorum: expected an integer 1..2 (the pool has 2 servers), got 3"],
    ["panic_threshold: 101", "pools.api.panic_threshold: expected an integer 0..100, got 101"],
    ["slowstart: 10", `pools.api.slowstart: expected a duration like "2s" or "150ms", got 10`],
    ["sorry_server: nowhere", `pools.api.sorry_server: expected "host:port" or "[ipv6]:port" with port 1..65535, got "nowhere"`],
    ["outlier: { consecutive_5xx: 0 }", "pools.api.outlier.consecutive_5xx: expected an integer 1..1000, got 0"],
    ["outlier: { base_ejecton_time: 1s }", `pools.api.outlier.base_ejecton_time: unknown key (did you mean "base_ejection_time"?)`],
    ["outlier: { base_ejection_time: 1m, max_ejection_time: 10s }", `pools.api.outlier.max_ejection_time: expected a duration no shorter than base_ejection_time (1m), got "10s"`],
    ["heatlh: { type: tcp }", `pools.api.heatlh: unknown key (did you mean "health"?)`],
    ["health: { type: http, digest: 00000000000000000000000000000000 }", "pools.api.health.digest: expected an MD5 digest of 32 hex digits (quote it, or YAML reads the digits as a number), got 0"],
  ];
  for (const [body, expected] of cases) {
    const lines = errorLines(poolYaml(body));
    assert.ok(lines.some((l) => l.startsWith(expected)), `for ${body}\nexpected ${expected}\ngot\n  ${lines.join("\n  ")}`);
  }
});

// ------------------------------------------------------------------------------------ HTTP checker

test("health: HTTP check passes a good server and names what is wrong with a broken one", async () => {
  const s = await flaky("http1", "all good\n");
  const m = monitorFor(s, `{ type: http, path: /healthz, timeout: 300ms, interval: 1s, body_regex: "good" }`);
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "HTTP 200" });
  s.mode = { status: 503 };
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP 503, expected 200-399" });
  s.mode = { body: "all bad\n" };
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP 200, body does not match /good/" });
  s.mode = "hang";
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP timed out after 300ms waiting for the response" });
  s.mode = "close-mid-response";
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP connection closed mid-response (10 of 100 body bytes)" });
  await s.kill();
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP connect refused" });
  await s.start();
  s.mode = "ok";
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "HTTP 200" }, "came back on the same port");
});

test("health: HTTP check sends method, path and Host, and checks status ranges and the body digest", async () => {
  const seen: string[] = [];
  const net = await import("node:net");
  const server = net.createServer((socket) => {
    socket.setEncoding("latin1");
    socket.on("data", (head: string) => {
      seen.push(head);
      socket.end("HTTP/1.1 302 Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    // MD5("hello") = 5d41402abc4b2a76b9719d911017c592
    const m = monitorFor({ port }, `{ type: http, method: POST, path: "/status?full=1", host: api.example.test,
      status: [200, "300-302"], digest: 5d41402abc4b2a76b9719d911017c592 }`);
    assert.deepEqual(await m.runOnce(), { ok: true, detail: "HTTP 302" });
    assert.match(seen[0], /^POST \/status\?full=1 HTTP\/1\.1\r\n/);
    assert.match(seen[0], /\r\nHost: api\.example\.test\r\n/);
    const wrongDigest = monitorFor({ port }, `{ type: http, digest: "00000000000000000000000000000000", status: 302 }`);
    assert.deepEqual(await wrongDigest.runOnce(), {
      ok: false, detail: "HTTP 302, body digest 5d41402abc4b2a76b9719d911017c592, expected 00000000000000000000000000000000",
    });
    const onlyOk = monitorFor({ port }, "{ type: http, status: 200 }");
    assert.deepEqual(await onlyOk.runOnce(), { ok: false, detail: "HTTP 302, expected 200" });
    // Without a Host of its own the check names the server.
    await monitorFor({ port }, "{ type: http }").runOnce();
    assert.match(seen[seen.length - 1], new RegExp(`\\r\\nHost: 127\\.0\\.0\\.1:${port}\\r\\n`));
  } finally {
    server.close();
  }
});

// ------------------------------------------------------------------------------------- TCP checker

test("health: TCP check is up while something accepts, even a server that never answers", async () => {
  const s = await flaky("tcp1");
  const m = monitorFor(s, "{ type: tcp, timeout: 300ms, interval: 1s }");
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "TCP connect ok" });
  s.mode = "hang";
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "TCP connect ok" }, "TCP_CHECK only connects");
  await s.kill();
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "TCP connect refused" });
  const other = monitorFor({ port: s.port }, `{ type: tcp, port: ${s.port === 65535 ? 65534 : s.port + 1} }`);
  assert.equal(other.target.port, s.port === 65535 ? 65534 : s.port + 1, "a check's own port overrides the server's");
});

// ------------------------------------------------------------------------------- scheduler + state

test("health: rise and fall count consecutive results; fastinter while changing, downinter while down", async () => {
  const s = await flaky("sched1");
  const m = monitorFor(s, "{ type: http, interval: 600ms, fastinter: 60ms, downinter: 300ms, timeout: 50ms, rise: 2, fall: 3 }");
  const transitions: string[] = [];
  m.subscribe((_, c) => { if (c.transition) transitions.push(`${c.transition.up ? "UP" : "DOWN"} ${c.transition.detail} (${c.transition.streak}/${c.transition.needed})`); });
  const before = s.requests;
  m.start(0);
  try {
    await waitFor("the first check", () => m.checks >= 1, 2000);
    assert.equal(m.up, true);
    assert.equal(m.state.nextDelay(), 600, "interval while up");
    s.mode = { status: 500 };
    await waitFor("three failures", () => !m.up, 3000);
    assert.deepEqual(transitions, ["DOWN HTTP 500, expected 200-399 (3/3)"]);
    assert.equal(m.state.nextDelay(), 300, "downinter while down");
    // After the first failure the next two came at fastinter: from the first failure to DOWN took
    // 2 × 60 ms plus the check times, far below 2 × interval.
    s.mode = "ok";
    await waitFor("two successes", () => m.up, 3000);
    assert.deepEqual(transitions.slice(1), ["UP HTTP 200 (2/2)"]);
    assert.ok(s.requests - before >= 6);
  } finally {
    m.stop();
  }
});

test("health: a failure streak shorter than fall, or a success streak shorter than rise, changes nothing", async () => {
  const { CheckState } = await import("../src/health/state.ts");
  const st = new CheckState(checkOf("{ type: tcp, rise: 3, fall: 2 }"));
  const ok = { ok: true, detail: "ok" }, bad = { ok: false, detail: "bad" };
  assert.equal(st.record(bad), null);
  assert.equal(st.record(ok), null, "a success resets the failure streak");
  assert.equal(st.record(bad), null);
  assert.deepEqual(st.record(bad), { up: false, detail: "bad", streak: 2, needed: 2 });
  assert.equal(st.record(ok), null);
  assert.equal(st.record(ok), null);
  assert.equal(st.record(bad), null, "a failure resets the success streak");
  assert.equal(st.record(ok), null);
  assert.equal(st.record(ok), null);
  assert.deepEqual(st.record(ok), { up: true, detail: "ok", streak: 3, needed: 3 });
  // initial: down starts down and the first success brings the server up.
  const fresh = new CheckState(checkOf("{ type: tcp, rise: 3, initial: down }"));
  assert.equal(fresh.up, false);
  assert.deepEqual(fresh.record(ok), { up: true, detail: "ok", streak: 1, needed: 1 });
});

test("health: the first checks start spread over the interval, not all at once", async () => {
  const five = await Promise.all(["s1", "s2", "s3", "s4", "s5"].map((n) => flaky(`spread-${n}`)));
  const registry = new MonitorRegistry();
  const check = checkOf("{ type: tcp, interval: 1s, timeout: 200ms }");
  const firstAt: number[] = [];
  const t0 = performance.now();
  for (const s of five) {
    registry.acquire({ host: "127.0.0.1", port: s.port }, check).subscribe(() => {});
  }
  const monitors = registry.all();
  registry.start();
  try {
    await waitFor("every first check", () => monitors.every((m) => m.checks >= 1), 3000, 5);
    for (const m of monitors) firstAt.push(m.lastCheckAt);
  } finally {
    registry.stop();
  }
  firstAt.sort((a, b) => a - b);
  const gaps = firstAt.slice(1).map((t, i) => t - firstAt[i]);
  // Offsets 0, 200, 400, 600, 800 ms: every gap is about 200 ms.
  assert.ok(gaps.every((g) => g >= 120), `gaps between first checks: ${gaps.join(", ")} ms`);
  assert.ok(performance.now() - t0 >= 700);
});

test("health: one monitor per (address, check): pools with the same check share it", () => {
  const registry = new MonitorRegistry();
  const a = checkOf("{ type: http, path: /healthz }");
  const b = checkOf("{ type: http, path: /healthz }");
  const c = checkOf("{ type: http, path: /other }");
  const addr = { host: "127.0.0.1", port: 9001 };
  assert.equal(registry.acquire(addr, a), registry.acquire(addr, b));
  assert.notEqual(registry.acquire(addr, a), registry.acquire(addr, c));
  assert.notEqual(registry.acquire(addr, a), registry.acquire({ host: "127.0.0.1", port: 9002 }, a));
  assert.equal(registry.all().length, 3);
});

// ---------------------------------------------------------------------------------- end to end

test("health: fulcrum run takes a dying server out within interval × fall + timeout, logs it once, and brings it back", async () => {
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
  let t0 = performance.now();
  b.mode = { status: 503 };
  const bound = interval * fall + timeout + 1000;
  const took503 = await waitFor("the DOWN line", () => f.output().includes(`${label} DOWN`, mark), bound);
  assert.deepEqual(linesMatching(f.output(), /DOWN/, mark).map((l) => l.replace(/^.*?fulcrum: /, "")),
    [`${label} DOWN: HTTP 503, expected 200-399 (3/3)`]);
  for (let i = 0; i < 4; i++) assert.equal(await who(f.url), "e2e-a", "the DOWN server gets no traffic");

  // Back: UP after `rise` successes.
  mark = f.output().length;
  b.mode = "ok";
  await waitFor("the UP line", () => f.output().includes(`${label} UP`, mark), interval * rise + timeout + 1000);
  assert.deepEqual(linesMatching(f.output(), /UP:/, mark).map((l) => l.replace(/^.*?fulcrum: /, "")), [`${label} UP: HTTP 200 (2/2)`]);
  assert.deepEqual(new Set([await who(f.url), await who(f.url)]), new Set(["e2e-a", "e2e-b"]));

  // Dies: connection refused.
  mark = f.output().length;
  t0 = performance.now();
  await b.kill();
  const tookDead = await waitFor("the DOWN line after death", () => f.output().includes(`${label} DOWN`, mark), bound);
  assert.match(f.output().slice(mark), new RegExp(`${label.replace(/[.]/g, "\\.")} DOWN: HTTP connect refused \\(3/3\\)`));
  for (let i = 0; i < 4; i++) assert.equal(await who(f.url), "e2e-a");

  // Hangs after accept: the timeout.
  await b.start();
  await waitFor("UP again", () => f.output().includes(`${label} UP`, mark), interval * rise + timeout + 1000);
  mark = f.output().length;
  b.mode = "hang";
  await waitFor("the DOWN line for a hanging server", () => f.output().includes(`${label} DOWN`, mark), bound);
  assert.match(f.output().slice(mark), /DOWN: HTTP timed out after 100ms waiting for the response \(3\/3\)/);
  b.mode = "ok";
  t0 = performance.now() - t0;
  console.log(`detection: 503 in ${took503.toFixed(0)} ms, refused in ${tookDead.toFixed(0)} ms (bound ${bound - 1000} ms + 1 s slack)`);
  // Each transition is logged exactly once.
  assert.equal(linesMatching(f.output(), new RegExp(`${label.replace(/[.]/g, "\\.")} DOWN`)).length, 3);
});

// ------------------------------------------------------------------------------- in-process edge

interface Harness {
  pools: Map<string, Pool>;
  dp: DataPlane;
  service: HealthService;
  lines: string[];
  events: HealthEvent[];
}

const services: HealthService[] = [];
after(() => { for (const s of services) s.stop(); });

/** Real pools in a real data plane, with health checking started on them (no listener). */
async function harness(yaml: string): Promise<Harness> {
  const config = configOf(`listeners: [{ bind: "127.0.0.1:1" }]\n${yaml}`);
  const dp = await createDataPlane({ seed: 1 });
  const pools = new Map(config.pools.map((p) => [p.name, new Pool(p, dp)]));
  const lines: string[] = [];
  const events: HealthEvent[] = [];
  const service = new HealthService(pools.values(), { log: (l) => lines.push(l) });
  service.subscribe((e) => events.push(e));
  services.push(service);
  service.start();
  return { pools, dp, service, lines, events };
}

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
  await waitFor("UP", () => h.lines.some((l) => l.includes("UP")), 2000, 2);
  const upAt = performance.now();
  const samples: [number, number][] = [];
  while (performance.now() - upAt < slowstart + 300) {
    samples.push([performance.now() - upAt, h.dp.effectiveWeight[server.slot]]);
    await sleep(40);
  }
  const weights = samples.map(([, w]) => w);
  assert.ok(weights[0] <= 15, `starts low: ${weights[0]}`);
  assert.ok(weights.every((w, i) => i === 0 || w >= weights[i - 1]), `never goes down: ${weights.join(" ")}`);
  assert.equal(weights[weights.length - 1], 100, "ends at the configured weight");
  for (const [t, w] of samples) {
    if (t > slowstart) continue;
    const linear = (100 * t) / slowstart;
    assert.ok(Math.abs(w - linear) <= 20, `at ${t.toFixed(0)} ms weight ${w}, linear would be ${linear.toFixed(0)}`);
  }
  assert.ok(h.dp.state[server.slot] === 0 || h.pools.get("api")!.isAvailable(server));
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
  const requestsBefore = s.requests;
  await sleep(500);
  const perSecond = ((s.requests - requestsBefore) * 1000) / 500;
  assert.ok(perSecond <= 25, `two monitors at 10/s each, got ${perSecond}/s (three would be 30/s)`);
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

// -------------------------------------------------------------------------- script, agent, UDP

test("health: script check: exit 0 is up, the exit code and first output line are the reason, a hung script is killed", { skip: needs("ps") }, async () => {
  const codeFile = `/tmp/fulcrum-health-${runtime.name}-${process.pid}-code`;
  tempFiles.push(codeFile);
  await runtime.writeTextFile(codeFile, "0");
  const script = `echo checking $FULCRUM_SERVER_HOST:$FULCRUM_SERVER_PORT >&2; exit $(cat ${codeFile})`;
  const m = monitorFor({ port: 9001 }, `{ type: script, command: ${JSON.stringify(script)}, timeout: 300ms, interval: 1s }`);
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "script exit 0: checking 127.0.0.1:9001" });
  await runtime.writeTextFile(codeFile, "1");
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "script exit 1: checking 127.0.0.1:9001" });
  await runtime.writeTextFile(codeFile, "7");
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "script exit 7: checking 127.0.0.1:9001" }, "without dynamic, any non-zero is down");
  const marker = `${4 + (process.pid % 1000) / 1000}`; // a sleep only this test starts
  const hung = monitorFor({ port: 9001 }, `{ type: script, command: "sleep ${marker}; true", timeout: 200ms, interval: 1s }`);
  const t0 = performance.now();
  assert.deepEqual(await hung.runOnce(), { ok: false, detail: "script timed out after 200ms (killed)" });
  assert.ok(performance.now() - t0 < 2000, "the check does not wait for the script");
  await sleep(100);
  const ps = await capture(["ps", "-eo", "args"]);
  assert.ok(!ps.includes(`sleep ${marker}`), "the script's own children were killed with it");
  const missing = monitorFor({ port: 9001 }, `{ type: script, command: [/nonexistent/fulcrum-check], timeout: 300ms, interval: 1s }`);
  const r = await missing.runOnce();
  assert.equal(r.ok, false);
  assert.match(r.detail, /^script \/nonexistent\/fulcrum-check (could not start|exit \d+)/);
});

test("health: script check with dynamic weight (misc_dynamic) sets the server's weight from the exit code", async () => {
  const codeFile = `/tmp/fulcrum-health-${runtime.name}-${process.pid}-dyn`;
  tempFiles.push(codeFile);
  await runtime.writeTextFile(codeFile, "0");
  const h = await harness(`
pools:
  api:
    servers: [{ address: 127.0.0.1:9001, weight: 50 }, 127.0.0.1:9002]
    health: { type: script, command: "exit $(cat ${codeFile})", dynamic: true, interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }`);
  const [first] = h.pools.get("api")!.servers;
  await waitFor("first checks", () => h.service.registry.all().every((m) => m.checks > 0), 3000);
  assert.equal(h.dp.effectiveWeight[first.slot], 50, "exit 0 leaves the weight as configured");
  await runtime.writeTextFile(codeFile, "12");
  await waitFor("weight 10", () => h.dp.effectiveWeight[first.slot] === 10, 3000);
  assert.ok(h.lines.some((l) => l === `api/127.0.0.1:9001 weight 50 -> 10: script exit 12`), h.lines.join("\n"));
  await runtime.writeTextFile(codeFile, "1");
  await waitFor("DOWN", () => first.down.has("health"), 3000);
  await runtime.writeTextFile(codeFile, "2");
  await waitFor("UP with weight 0", () => !first.down.has("health") && h.dp.effectiveWeight[first.slot] === 0, 3000);
  assert.ok(h.pools.get("api")!.isAvailable(first), "up, but weight 0 takes no new sessions (drained)");
});

/** A TCP agent (HAProxy agent-check) that answers each connection with `reply` and a newline. */
async function startAgent(): Promise<{ port: number; reply: string; received: string[]; close(): void }> {
  const net = await import("node:net");
  const agent = { port: 0, reply: "up", received: [] as string[], close: () => server.close() };
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => agent.received.push(d));
    setTimeout(() => socket.end(`${agent.reply}\n`), 5);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  agent.port = (server.address() as { port: number }).port;
  return agent;
}

test("health: agent check: up, down with a description, drain, ready, N% and weight:N", async () => {
  const agent = await startAgent();
  try {
    const h = await harness(`
pools:
  api:
    servers: [{ address: 127.0.0.1:9001, weight: 10 }, 127.0.0.1:9002]
    health: { type: agent, port: ${agent.port}, send: "hello\\n", interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }`);
    const [first] = h.pools.get("api")!.servers;
    const weight = () => h.dp.effectiveWeight[first.slot];
    await waitFor("first checks", () => h.service.registry.all().every((m) => m.checks > 0), 3000);
    assert.equal(weight(), 10);
    assert.ok(agent.received.includes("hello\n"), "the agent got `send`");
    agent.reply = "75%";
    await waitFor("75% of 10", () => weight() === 8, 3000);
    agent.reply = "drain";
    await waitFor("drained", () => weight() === 0, 3000);
    assert.ok(h.pools.get("api")!.isAvailable(first), "drain keeps the server up with no new sessions");
    agent.reply = "ready";
    await waitFor("ready", () => weight() === 10, 3000);
    agent.reply = "down # maintenance window";
    await waitFor("DOWN", () => first.down.has("health"), 3000);
    assert.ok(h.lines.includes("api/127.0.0.1:9001 DOWN: agent says down (maintenance window) (1/1)"), h.lines.join("\n"));
    agent.reply = "up, weight:3";
    await waitFor("UP at weight 3", () => !first.down.has("health") && weight() === 3, 3000);
    assert.ok(h.lines.includes("api/127.0.0.1:9001 UP: agent says up weight:3 (1/1)"), h.lines.join("\n"));
  } finally {
    agent.close();
  }
});

test("health: UDP check: a matching reply is up, a wrong or missing reply is down", async () => {
  const dgram = await import("node:dgram");
  const echo = dgram.createSocket("udp4");
  let answer = (msg: string) => `pong ${msg}`;
  echo.on("message", (m, peer) => {
    const reply = answer(String(m));
    if (reply) echo.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
  const port = echo.address().port;
  try {
    const m = monitorFor({ port }, `{ type: udp, send: ping, expect: "^pong ping$", timeout: 200ms, interval: 1s }`);
    assert.deepEqual(await m.runOnce(), { ok: true, detail: "UDP reply ok" });
    answer = () => "busy";
    assert.deepEqual(await m.runOnce(), { ok: false, detail: `UDP reply "busy" does not match /^pong ping$/` });
    answer = () => "";
    assert.deepEqual(await m.runOnce(), { ok: false, detail: "UDP no reply after 200ms" });
    const silentOk = monitorFor({ port }, `{ type: udp, send: ping, timeout: 150ms, interval: 1s }`);
    assert.deepEqual(await silentOk.runOnce(), { ok: true, detail: "UDP sent, no ICMP error" }, "no reply needed: silence is up");
  } finally {
    echo.close();
  }
  // Nothing listens now. Bun surfaces the ICMP port unreachable on the connected socket.
  const closed = monitorFor({ port }, `{ type: udp, send: ping, require_reply: true, timeout: 150ms, interval: 1s }`);
  const r = await closed.runOnce();
  assert.equal(r.ok, false);
  assert.match(r.detail, /^UDP (port unreachable|no reply after 150ms)$/);
  if (runtime.name === "bun") {
    const noReply = monitorFor({ port }, `{ type: udp, send: ping, timeout: 150ms, interval: 1s }`);
    assert.deepEqual(await noReply.runOnce(), { ok: false, detail: "UDP port unreachable" });
  }
});

// ------------------------------------------------------------------------------------------- ICMP

// A namespace this file builds for ICMP: a veth pair, the far end inside the namespace.
const NS = `fh${runtime.name[0]}${process.pid % 100000}`;
const SUBNET = 100 + (process.pid % 150);
const HOST_IP = `10.251.${SUBNET}.1`, NS_IP = `10.251.${SUBNET}.2`;
let namespaceBuilt = false;

async function sh(argv: string[]): Promise<void> {
  const child = runtime.spawn(argv);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${argv.join(" ")}: exit ${code}: ${err}`);
}

async function buildNamespace(): Promise<void> {
  namespaceBuilt = true;
  await sh(["ip", "netns", "add", NS]);
  await sh(["ip", "link", "add", `${NS}h`, "type", "veth", "peer", "name", `${NS}n`]);
  await sh(["ip", "link", "set", `${NS}n`, "netns", NS]);
  await sh(["ip", "addr", "add", `${HOST_IP}/30`, "dev", `${NS}h`]);
  await sh(["ip", "link", "set", `${NS}h`, "up"]);
  await sh(["ip", "netns", "exec", NS, "ip", "addr", "add", `${NS_IP}/30`, "dev", `${NS}n`]);
  await sh(["ip", "netns", "exec", NS, "ip", "link", "set", `${NS}n`, "up"]);
  await sh(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"]);
}

after(async () => {
  if (!namespaceBuilt) return;
  await sh(["ip", "link", "del", `${NS}h`]).catch(() => {}); // takes its peer with it
  await sh(["ip", "netns", "del", NS]).catch(() => {});
});

test("health: ICMP check through a raw socket: a host in a namespace answers, stops answering, answers again", { skip: needs("root", "ip", "sysctl") }, async () => {
  await buildNamespace();
  const h = await harness(`
pools:
  api:
    servers: ["${NS_IP}:80"]
    health: { type: icmp, interval: 100ms, timeout: 100ms, rise: 1, fall: 2 }`);
  const monitor = h.service.registry.all()[0];
  await waitFor("an echo reply", () => monitor.checks > 0, 3000);
  assert.match(monitor.state.lastResult!.detail, /^ICMP echo reply in \d+\.\d ms$/);
  assert.equal(monitor.up, true);
  await sh(["ip", "netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"]);
  await waitFor("DOWN", () => h.lines.some((l) => l.includes("DOWN")), 100 * 2 + 100 + 1000);
  assert.ok(h.lines.includes(`api/${NS_IP}:80 DOWN: ICMP no echo reply after 100ms (2/2)`), h.lines.join("\n"));
  await sh(["ip", "netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=0"]);
  await waitFor("UP", () => h.lines.some((l) => l.includes(" UP")), 100 + 100 + 1000);
  assert.match(h.lines.find((l) => l.includes(" UP"))!, /UP: ICMP echo reply in \d+\.\d ms \(1\/1\)$/);
});

test("health: without CAP_NET_RAW, fulcrum run refuses ICMP checks with a clear error", { skip: needs("root") }, async () => {
  const port = await freePort();
  const file = await writeTemp(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api: { servers: ["127.0.0.1:80"], health: { type: icmp } }
`);
  tempFiles.push(file);
  const child = runtime.spawn(["setpriv", "--bounding-set", "-net_raw", ...fulcrumCommand(["run", "--config", file])]);
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  clearTimeout(timer);
  assert.equal(code, 1, out + err);
  assert.match(err, /cannot start: ICMP checks need CAP_NET_RAW to open a raw socket, and this process does not have it/);
  assert.doesNotMatch(out, /listening/);
});

// ---------------------------------------------------------------------------- outlier, panic, quorum

/** Sends n GETs through the balancer; returns how many each backend answered (by X-Backend). */
async function spread(url: string, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await request(`${url}/item/${i}`);
    const who = typeof r.headers["x-backend"] === "string" ? r.headers["x-backend"] : `HTTP ${r.status}`;
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  return counts;
}

test("health: outlier detection ejects a server after consecutive 5xx, longer each time, and lets it back", async () => {
  const [a, b] = [await flaky("out-a"), await flaky("out-b")];
  const port = await freePort();
  const f = await fulcrum(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api:
    scheduler: rr
    servers: [{ address: ${a.address}, max_fails: 0 }, { address: ${b.address}, max_fails: 0 }]
    outlier: { consecutive_5xx: 3, base_ejection_time: 600ms, max_ejection_percent: 50 }
`);
  b.mode = { status: 503 };
  const label = `api/${b.address}`;
  const first = await spread(f.url, 6);
  assert.equal(first.get("out-b"), 3, "rr: b answered 503 three times");
  await waitFor("EJECTED", () => f.output().includes(`${label} EJECTED`), 2000);
  assert.match(f.output(), new RegExp(`${label.replace(/\./g, "\\.")} EJECTED: 3 consecutive 5xx or failed requests, for 600ms \\(ejection 1\\)`));
  assert.deepEqual([...(await spread(f.url, 6))], [["out-a", 6]], "ejected: no traffic");
  await waitFor("RETURNED", () => f.output().includes(`${label} RETURNED`), 600 + 1000);
  // Still failing: ejected again, for twice as long.
  await spread(f.url, 6);
  await waitFor("second ejection", () => f.output().includes("(ejection 2)"), 2000);
  assert.match(f.output(), /EJECTED: 3 consecutive 5xx or failed requests, for 1s200ms \(ejection 2\)|for 1200ms \(ejection 2\)/);
  b.mode = "ok";
  await waitFor("RETURNED again", () => f.output().split(`${label} RETURNED`).length === 3, 1200 + 1500);
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

// ------------------------------------------------------------------------- connection reuse, TLS

test("health: HTTP checks reuse one connection (Envoy's reuse_connection), survive the server closing it, and can open one per check", async () => {
  const s = await flaky("reuse");
  const reused = monitorFor(s, "{ type: http, timeout: 300ms, interval: 1s }");
  for (let i = 0; i < 5; i++) assert.deepEqual(await reused.runOnce(), { ok: true, detail: "HTTP 200" });
  assert.equal(s.connections, 1, "five checks, one connection");
  // The server drops its idle connections (an idle timeout, a restart of workers): not a failure.
  await s.kill();
  await s.start();
  assert.deepEqual(await reused.runOnce(), { ok: true, detail: "HTTP 200" });
  assert.equal(s.connections, 2);
  const fresh = monitorFor(s, "{ type: http, timeout: 300ms, interval: 1s, reuse_connection: false }");
  for (let i = 0; i < 3; i++) assert.deepEqual(await fresh.runOnce(), { ok: true, detail: "HTTP 200" });
  assert.equal(s.connections, 5, "reuse_connection: false opens one per check");
});

test("health: HTTPS check verifies the certificate against a CA, sends SNI, and can skip verification", { skip: needs("openssl") }, async () => {
  const dir = `/tmp/fulcrum-health-tls-${runtime.name}-${process.pid}`;
  await sh(["mkdir", "-p", dir]);
  await sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`,
    "-days", "1", "-subj", "/CN=health.test", "-addext", "subjectAltName=DNS:health.test"]);
  const https = await import("node:https");
  const fs = await import("node:fs");
  const seen: { sni: string; host: string }[] = [];
  const server = https.createServer({ key: fs.readFileSync(`${dir}/key.pem`), cert: fs.readFileSync(`${dir}/cert.pem`) }, (req, res) => {
    seen.push({ sni: (req.socket as { servername?: string }).servername ?? "", host: req.headers.host ?? "" });
    res.end("secure ok\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const noCa = monitorFor({ port }, "{ type: https, host: health.test, timeout: 500ms, interval: 1s }");
    const r = await noCa.runOnce();
    assert.equal(r.ok, false);
    assert.match(r.detail, /^HTTPS TLS handshake failed: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
    const withCa = monitorFor({ port }, `{ type: https, host: health.test, ca: ${dir}/cert.pem, body_regex: "^secure", timeout: 500ms, interval: 1s }`);
    assert.deepEqual(await withCa.runOnce(), { ok: true, detail: "HTTPS 200" });
    assert.deepEqual(seen.at(-1), { sni: "health.test", host: "health.test" }, "SNI and Host from `host`");
    const wrongName = monitorFor({ port }, `{ type: https, host: other.test, ca: ${dir}/cert.pem, timeout: 500ms, interval: 1s }`);
    const w = await wrongName.runOnce();
    assert.equal(w.ok, false, "the certificate is for health.test, not other.test");
    assert.match(w.detail, /^HTTPS TLS handshake failed: ERR_TLS_CERT_ALTNAME_INVALID/);
    const skip = monitorFor({ port }, "{ type: https, verify: false, sni: health.test, timeout: 500ms, interval: 1s }");
    assert.deepEqual(await skip.runOnce(), { ok: true, detail: "HTTPS 200" });
    assert.equal(seen.at(-1)?.sni, "health.test");
  } finally {
    server.close();
    await sh(["rm", "-rf", dir]);
  }
});
