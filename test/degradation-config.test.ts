// The config keys of least_time, route priority and the overload guard: what they read to, and
// the key-path errors a mistake gets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../src/control/schema.ts";
import type { Config } from "../src/control/schema.ts";

function parse(text: string): { config: Config | null; errors: string[] } {
  const r = parseConfigText(text, "test.yaml");
  return r.ok ? { config: r.config, errors: [] } : { config: null, errors: r.errors.map((e) => `${e.path}: ${e.message}`) };
}

const base = (pool: string) => `
listeners: [{ bind: "127.0.0.1:8080" }]
routes: [{ path_prefix: /, pool: web }]
pools:
  web: { servers: [127.0.0.1:9001], ${pool} }
`;

test("config: least_time reads its measure (header by default) and decay (10 s by default)", () => {
  const d = parse(base("scheduler: least_time"));
  assert.deepEqual(d.errors, []);
  assert.deepEqual(d.config!.pools[0].leastTime, { measure: "header", decayMs: 10_000 });
  const set = parse(base("scheduler: least_time, least_time: last_byte, least_time_decay: 2s"));
  assert.deepEqual(set.config!.pools[0].leastTime, { measure: "last_byte", decayMs: 2_000 });
  assert.equal(parse(base("scheduler: wlc")).config!.pools[0].leastTime, undefined);
});

test("config: least_time keys get key-path errors: a wrong measure, a zero decay, and either key on another scheduler", () => {
  assert.deepEqual(parse(base("scheduler: least_time, least_time: body")).errors,
    [`pools.web.least_time: expected one of header, last_byte, got "body"`]);
  assert.match(parse(base("scheduler: least_time, least_time_decay: 0s")).errors.join("\n"), /^pools\.web\.least_time_decay: expected a duration greater than zero/);
  assert.deepEqual(parse(base("scheduler: wlc, least_time: header")).errors,
    ["pools.web.least_time: least_time applies to scheduler least_time only (this pool's is wlc)"]);
  assert.deepEqual(parse(base("scheduler: rr, least_time_decay: 1s")).errors,
    ["pools.web.least_time_decay: least_time_decay applies to scheduler least_time only (this pool's is rr)"]);
});

const routes = (route: string) => `
listeners: [{ bind: "127.0.0.1:8080" }]
routes: [${route}]
pools:
  web: { servers: [127.0.0.1:9001] }
`;

test("config: a route's priority is 0..9 or high, normal, low; absent it is left to the default", () => {
  const of = (v: string) => parse(routes(`{ pool: web, priority: ${v} }`)).config!.routes[0].priority;
  assert.deepEqual([of("0"), of("7"), of("9"), of("high"), of("normal"), of("low")], [0, 7, 9, 9, 5, 0]);
  assert.equal(parse(routes("{ pool: web }")).config!.routes[0].priority, undefined);
});

test("config: a bad priority gets a key-path error", () => {
  for (const v of ["10", "-1", "2.5", "urgent"]) {
    const shown = /^[a-z]/.test(v) ? `"${v}"` : v;
    assert.deepEqual(parse(routes(`{ pool: web, priority: ${v} }`)).errors,
      [`routes[0].priority: expected a priority 0..9 (higher first) or one of high, normal, low, got ${shown}`], v);
  }
});

const listener = (overload: string, protocol = "") => `
listeners: [{ name: web, bind: "127.0.0.1:8080", ${protocol}overload: ${overload} }]
routes: [{ pool: web }]
pools:
  web: { servers: [127.0.0.1:9001] }
`;

test("config: a listener's overload guard reads its bounds (1GB, 512MB forms) and retry_after (5 s by default); tcp listeners too", () => {
  const c = parse(listener("{ max_event_loop_lag: 200ms, max_memory: 1GB }"));
  assert.deepEqual(c.errors, []);
  assert.deepEqual(c.config!.listeners[0].overload, { maxEventLoopLagMs: 200, maxMemoryBytes: 1024 ** 3, retryAfterMs: 5_000 });
  assert.deepEqual(parse(listener("{ max_memory: 512MB, retry_after: 2s }")).config!.listeners[0].overload,
    { maxEventLoopLagMs: 0, maxMemoryBytes: 512 * 1024 ** 2, retryAfterMs: 2_000 });
  const tcp = parse(listener("{ max_event_loop_lag: 1s }", "protocol: tcp, pool: web, "));
  assert.deepEqual(tcp.errors, []);
  assert.deepEqual(tcp.config!.l4Listeners[0].overload, { maxEventLoopLagMs: 1000, maxMemoryBytes: 0, retryAfterMs: 5_000 });
});

test("config: overload mistakes get key-path errors", () => {
  const errors = (o: string, protocol = "") => parse(listener(o, protocol)).errors;
  assert.deepEqual(errors("{ retry_after: 5s }"), ["listeners[0].overload: expected max_event_loop_lag or max_memory (a guard with no bound sheds nothing)"]);
  assert.deepEqual(errors("{ max_memory: lots }"), [`listeners[0].overload.max_memory: expected a memory size like 512MB or 1GB, got "lots"`]);
  assert.match(errors("{ max_event_loop_lag: 0ms }").join("\n"), /^listeners\[0\]\.overload\.max_event_loop_lag: expected a duration greater than zero/);
  assert.ok(errors("{ max_lag: 1s, max_memory: 1GB }").includes("listeners[0].overload.max_lag: unknown key (allowed keys: max_event_loop_lag, max_memory, retry_after)"));
  assert.deepEqual(errors("{ max_memory: 1GB }", "protocol: udp, pool: web, "), ["listeners[0].overload: overload is for tcp and http listeners"]);
});
