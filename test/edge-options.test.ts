// Config for listeners' traffic handling and pools' retries and affinity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText as parseConfig } from "../src/control/schema.ts";

function parse(text: string) {
  const r = parseConfig(text);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
  return r.config;
}

function errorsOf(text: string): string[] {
  const r = parseConfig(text);
  assert.equal(r.ok, false, "expected errors");
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

test("edge options: listener limits read nginx-style sizes and durations", () => {
  const c = parse(`
listeners:
  - bind: 127.0.0.1:8080
    engine: socket
    max_header_size: 8k
    max_body_size: 1m
    max_headers: 50
    max_connections: 200
    header_timeout: 2s
    keepalive_timeout: 30s
    request_id: false
    tls: { cert: /etc/fulcrum/a.pem, key: /etc/fulcrum/a.key, server_names: [A.example.com] }
pools:
  web: { servers: [127.0.0.1:9001] }
`);
  const l = c.listeners[0];
  assert.equal(l.requestId, false);
  assert.deepEqual(l.tls, [{ cert: "/etc/fulcrum/a.pem", key: "/etc/fulcrum/a.key", serverNames: ["a.example.com"] }]);
  assert.deepEqual(l.limits, {
    maxConnections: 200, maxHeaderBytes: 8192, maxHeaderCount: 50, maxBodyBytes: 1048576,
    headerTimeoutMs: 2000, bodyTimeoutMs: 60_000, idleTimeoutMs: 30_000,
  });
});

test("edge options: engine: fetch is refused with the reason, naming the key path", () => {
  const errors = errorsOf(`
listeners:
  - bind: 127.0.0.1:8080
  - bind: 127.0.0.1:8081
    engine: fetch
pools:
  web: { servers: [127.0.0.1:9001] }
`);
  assert.deepEqual(errors, ["listeners[1].engine: the fetch engine was removed: the socket path serves every listener (remove this key)"]);
});

test("edge options: next_upstream speaks nginx's vocabulary; sticky and persistence", () => {
  const c = parse(`
listeners: [{ bind: 127.0.0.1:8080 }]
pools:
  web:
    next_upstream: [error, timeout, http_503, non_idempotent]
    next_upstream_tries: 2
    next_upstream_timeout: 3s
    sticky: { cookie: SERVERID, indirect: false }
    persistence_timeout: 5m
    servers: [127.0.0.1:9001]
  off:
    next_upstream: off
    servers: [127.0.0.1:9002]
routes: [{ path_prefix: /off, pool: off }, { pool: web }]
`);
  const [web, off] = c.pools;
  assert.deepEqual(web.http.retry, { tries: 2, timeoutMs: 3000, on: new Set(["error", "timeout"]), statuses: new Set([503]), nonIdempotent: true });
  assert.deepEqual(web.http.sticky, { name: "SERVERID", indirect: false, nocache: true });
  assert.equal(web.persistenceMs, 300_000);
  assert.equal(off.http.retry.tries, 1, "off: one attempt only");
});

test("edge options: bad values name the key path, with did-you-mean", () => {
  const errors = errorsOf(`
listeners:
  - bind: 127.0.0.1:8080
    engine: turbo
    max_header_size: huge
    keepalive_timout: 5s
    tls: { cert: a.pem }
pools:
  web:
    next_upstream: [error, http_599]
    sticky: { cookie: "bad cookie", indirekt: true }
    next_upstream_trys: 2
    servers: [127.0.0.1:9001]
`);
  const has = (re: RegExp) => assert.ok(errors.some((e) => re.test(e)), `no error like ${re}: ${errors.join("\n")}`);
  has(/^listeners\[0\]\.engine: expected socket \(the only engine; the key may be left out\), got "turbo"/);
  has(/^listeners\[0\]\.max_header_size: expected a size like 32k, 1m/);
  has(/^listeners\[0\]\.tls\.key: expected a PEM private key file path, got nothing/);
  has(/^pools\.web\.next_upstream\[1\]: expected one of error, timeout, .*got "http_599"/);
  has(/^pools\.web\.sticky\.cookie: expected a cookie name \(token characters\), got "bad cookie"/);
  has(/^listeners\[0\]\.keepalive_timout: unknown key \(did you mean "keepalive_timeout"\?\)/);
  has(/^pools\.web\.sticky\.indirekt: unknown key \(did you mean "indirect"\?\)/);
  has(/^pools\.web\.next_upstream_trys: unknown key \(did you mean "next_upstream_tries"\?\)/);
});
