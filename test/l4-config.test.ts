// The L4 parts of the config: tcp/udp listeners (read by src/l4/config.ts through the edge's
// listener dispatch) and a pool's send_proxy, through the real schema.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../src/control/schema.ts";
import { formatConfigErrors } from "../src/config/errors.ts";

function valid(text: string) {
  const r = parseConfigText(text, "test.yaml");
  if (!r.ok) assert.fail(formatConfigErrors("test.yaml", r.errors));
  return r.config;
}

function errors(text: string): string[] {
  const r = parseConfigText(text, "test.yaml");
  if (r.ok) assert.fail("expected config errors");
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

const POOLS = `pools:
  a: { send_proxy: v2, servers: [127.0.0.1:1] }
  b: { servers: [127.0.0.1:2] }
`;

test("l4 config: tcp and udp listeners with defaults; several pools need no HTTP routes without HTTP listeners", () => {
  const c = valid(`listeners:
  - { name: t, bind: 127.0.0.1:53, protocol: tcp, pool: a }
  - { name: u, bind: 127.0.0.1:53, protocol: udp, pool: b, responses: 1 }
  - name: sni
    bind: 127.0.0.1:443
    protocol: tcp
    routes: [{ sni: [API.example.com, "*.example.com"], pool: a }, { pool: b }]
${POOLS}`);
  assert.deepEqual(c.listeners, []);
  assert.deepEqual(c.routes, []);
  const [t, u, sni] = c.l4Listeners;
  assert.deepEqual(t, {
    name: "t", bind: { host: "127.0.0.1", port: 53 }, protocol: "tcp", pool: "a", routes: [], badClientHello: "close",
    acceptProxy: false, prereadTimeoutMs: 5000, idleTimeoutMs: 600_000, sessionTimeoutMs: 0, maxConnections: 10_000, responses: 0,
    connLimit: null,
    access: null,
  });
  assert.equal(u.protocol, "udp");
  assert.equal(u.responses, 1);
  assert.equal(u.idleTimeoutMs, 30_000);
  assert.deepEqual(sni.routes, [{ sni: ["api.example.com", "*.example.com"], pool: "a" }, { sni: null, pool: "b" }]);
  assert.deepEqual(c.pools.map((p) => p.l4.sendProxy), ["v2", null]);
});

test("l4 config: an HTTP listener beside L4 ones keeps its own section and accept_proxy", () => {
  const c = valid(`listeners:
  - { name: web, bind: 127.0.0.1:80, accept_proxy: true }
  - { name: t, bind: 127.0.0.1:81, protocol: tcp, pool: a }
routes: [{ pool: b }]
${POOLS}`);
  assert.equal(c.listeners.length, 1);
  assert.equal(c.listeners[0].acceptProxy, true);
  assert.equal(c.l4Listeners.length, 1);
});

const ERRORS: [string, string, string][] = [
  ["no pool or routes", `{ bind: ":9", protocol: tcp }`, `listeners[0]: expected a tcp listener with pool (or routes for TLS passthrough)`],
  ["pool and routes", `{ bind: ":9", protocol: tcp, pool: a, routes: [{ pool: b }] }`, `listeners[0].routes: expected pool or routes, not both`],
  ["routes on udp", `{ bind: ":9", protocol: udp, routes: [{ pool: b }] }`, `listeners[0].routes: SNI routes are for tcp listeners (TLS passthrough)`],
  ["an unknown pool", `{ bind: ":9", protocol: tcp, pool: c }`, `listeners[0].pool: expected the name of a defined pool, got "c" (did you mean "a"?)`],
  ["an HTTP key on a tcp listener", `{ bind: ":9", protocol: tcp, pool: a, tls: {} }`, `listeners[0].tls: unknown key (allowed keys: name, bind, protocol, pool, routes, bad_client_hello, accept_proxy, preread_timeout, idle_timeout, session_timeout, max_connections, responses, overload, access_log, conn_limit, allow, deny, allow_file, deny_file)`],
  ["a misspelt key", `{ bind: ":9", protocol: tcp, pool: a, acept_proxy: true }`, `listeners[0].acept_proxy: unknown key (did you mean "accept_proxy"?)`],
  ["a bad SNI name", `{ bind: ":9", protocol: tcp, routes: [{ sni: "a b", pool: a }] }`, `listeners[0].routes[0].sni: expected a server name like "api.example.com" or "*.example.com", got "a b"`],
  ["a bad bad_client_hello", `{ bind: ":9", protocol: tcp, pool: a, bad_client_hello: drop }`, `listeners[0].bad_client_hello: expected one of default, close, got "drop"`],
  ["two tcp listeners on one address", `{ bind: ":9", protocol: tcp, pool: a }, { name: x, bind: ":9", protocol: tcp, pool: b }`, `listeners[1].bind: expected a bind address no other listener uses, got 0.0.0.0:9 again (listeners[0])`],
];

for (const [what, listeners, expected] of ERRORS) {
  test(`l4 config: error, ${what}`, () => {
    const lines = errors(`listeners: [${listeners}]\n${POOLS}`);
    assert.ok(lines.includes(expected), `expected\n  ${expected}\ngot\n  ${lines.join("\n  ")}`);
  });
}

test("l4 config: error, send_proxy other than v1 or v2", () => {
  const lines = errors(`listeners: [{ bind: ":9", protocol: tcp, pool: a }]
pools:
  a: { send_proxy: v3, servers: [127.0.0.1:1] }`);
  assert.ok(lines.includes(`pools.a.send_proxy: expected one of v1, v2, got "v3" (did you mean "v1"?)`), lines.join("\n"));
});
