// The health section of the config: HAProxy's defaults, every check type and pool-level
// setting, and errors that name the key path and what was expected.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText as parseConfig } from "../control/schema.ts";
import { formatConfigErrors } from "../config/errors.ts";
import type { Config, PoolConfig } from "../control/schema.ts";
import type { CheckConfig } from "./config.ts";

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
  assert.deepEqual(p.sorryServer?.address, { host: "127.0.0.1", port: 9999 });
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
