// The L7 proxy end to end: a real `fulcrum run` in front of real loopback backends.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { getJson, request } from "./helpers/http.ts";
import { SCHEDULERS } from "../src/core/schedulers.ts";

let a1: Backend, a2: Backend, a3: Backend, b1: Backend, hang: Backend;
let fulcrum: Running;

before(async () => {
  [a1, a2, a3, b1] = await Promise.all(["a1", "a2", "a3", "b1"].map((n) => startBackend(n)));
  hang = await startBackend("hang", "hang");
  fulcrum = await startFulcrum(await proxyConfig());
});

async function proxyConfig(): Promise<string> {
  const refused = await freePort(), refused2 = await freePort(), port = await freePort();
  const schedulerRoutes = SCHEDULERS.map((s) => `  - { path_prefix: /s/${s}/, pool: s-${s} }`).join("\n");
  const schedulerPools = SCHEDULERS.map((s) =>
    `  s-${s}:
    scheduler: ${s}
    servers:
      - { address: ${a1.address}, weight: 3 }
      - ${a2.address}
      - ${a3.address}
      - { address: ${b1.address}, backup: true }`
  ).join("\n");
  return `
hash_seed: 7
listeners:
  - name: main
    bind: 127.0.0.1:${port}
routes:
  - { name: by-host, host: api.example.test, pool: b }
  - { name: wildcard, host: "*.wild.test", pool: b }
  - { name: exact, path: /exact, pool: b }
  - { name: regex, path_regex: "^/re/[0-9]+$", pool: b }
  - { name: post, path_prefix: /m, method: POST, pool: b }
  - { name: header, path_prefix: /h, headers: { X-Env: prod }, pool: b }
  - name: rewrite
    path_prefix: /rw
    pool: b
    request_headers: { set: { X-Team: core }, add: { X-Trace: one }, remove: [X-Debug] }
    response_headers: { set: { X-Served-By: fulcrum }, remove: [X-Remove-Me] }
  - { path_prefix: /refused, pool: refused }
  - { path_prefix: /down, pool: alldown }
  - { path_prefix: /slow, pool: slow }
  - { path_prefix: /passive, pool: passive }
${schedulerRoutes}
  - { name: default, pool: a }
pools:
  a: { scheduler: rr, servers: [${a1.address}, ${a2.address}, ${a3.address}] }
  b: { servers: [${b1.address}] }
  refused: { servers: [{ address: 127.0.0.1:${refused}, max_fails: 0 }] }
  alldown: { servers: [{ address: ${a1.address}, down: true }] }
  slow:
    connect_timeout: 200ms
    read_timeout: 300ms
    servers: [{ address: ${hang.address}, max_fails: 0 }]
  passive:
    scheduler: rr
    next_upstream: off
    servers:
      - { address: 127.0.0.1:${refused2}, max_fails: 1, fail_timeout: 2s }
      - ${a1.address}
${schedulerPools}
`;
}

after(async () => {
  await fulcrum?.stop();
  await Promise.all([a1, a2, a3, b1, hang].map((b) => b?.stop()));
});

const who = async (path: string, headers?: Record<string, string>) =>
  (await getJson<Echo>(`${fulcrum.url}${path}`, headers)).backend;

test(`proxy: routes by host, wildcard host, exact path, regex, method and header; default last`, async () => {
  assert.equal(await who("/anything", { host: "api.example.test" }), "b1");
  assert.equal(await who("/anything", { host: "x.wild.test:8080" }), "b1");
  assert.notEqual(await who("/anything", { host: "wild.test" }), "b1", "*.wild.test needs a subdomain");
  assert.equal(await who("/exact"), "b1");
  assert.notEqual(await who("/exact/more"), "b1");
  assert.equal(await who("/re/42"), "b1");
  assert.notEqual(await who("/re/4x"), "b1");
  assert.equal(await who("/h", { "x-env": "prod" }), "b1");
  assert.notEqual(await who("/h", { "x-env": "dev" }), "b1");
  const post = await request(`${fulcrum.url}/m`, { method: "POST", body: "x" });
  assert.equal(JSON.parse(post.body).backend, "b1");
  assert.notEqual(await who("/m"), "b1", "GET /m is not the POST route");
});

test(`proxy: rr pool spreads requests evenly over its servers`, async () => {
  const seen = new Map<string, number>();
  for (let i = 0; i < 9; i++) {
    const b = await who(`/rr-even/${i}`);
    seen.set(b, (seen.get(b) ?? 0) + 1);
  }
  assert.deepEqual([...seen.values()], [3, 3, 3]);
});

// What each scheduler picks is shown in test/schedulers-proxy.test.ts (held requests, many
// keys) and src/core/schedulers.test.ts; here, that every one serves through this config.
for (const s of SCHEDULERS) {
  test(`proxy: ${s} serves 30 requests from its primaries, never the backup`, async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const b = await who(`/s/${s}/item-${i}`);
      counts.set(b, (counts.get(b) ?? 0) + 1);
    }
    assert.ok(!counts.has("b1"), `the backup served: ${[...counts]}`);
    assert.ok([...counts.keys()].every((b) => ["a1", "a2", "a3"].includes(b)), `${[...counts]}`);
  });
}

test(`proxy: URI-keyed schedulers send the same URI to the same server`, async () => {
  for (const s of ["dh", "lblc", "lblcr"]) {
    const first = await who(`/s/${s}/same`);
    for (let i = 0; i < 5; i++) assert.equal(await who(`/s/${s}/same`), first, s);
  }
});

test(`proxy: request headers: X-Forwarded-*, X-Real-IP, Via, set/add/remove, hop-by-hop stripped`, async () => {
  const r = await request(`${fulcrum.url}/rw/path?q=1`, {
    headers: {
      host: "shop.example.test",
      "x-forwarded-for": "203.0.113.9",
      "x-debug": "1",
      connection: "x-hop",
      "x-hop": "secret",
      "keep-alive": "timeout=9",
      te: "trailers",
      via: "1.0 edge",
    },
  });
  assert.equal(r.status, 200);
  const e = JSON.parse(r.body) as Echo;
  assert.equal(e.target, "/rw/path?q=1");
  assert.equal(e.headers["host"], "shop.example.test", "Host passes through");
  assert.equal(e.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
  assert.equal(e.headers["x-real-ip"], "127.0.0.1");
  assert.equal(e.headers["x-forwarded-proto"], "http");
  assert.equal(e.headers["x-forwarded-host"], "shop.example.test");
  assert.equal(e.headers["via"], "1.0 edge, 1.1 fulcrum");
  assert.equal(e.headers["x-team"], "core");
  assert.equal(e.headers["x-trace"], "one");
  for (const gone of ["x-debug", "x-hop", "keep-alive", "te"]) assert.equal(e.headers[gone], undefined, gone);
  // Response side: set and remove apply, the upstream's hop-by-hop Keep-Alive does not leak.
  assert.equal(r.headers["x-served-by"], "fulcrum");
  assert.equal(r.headers["x-remove-me"], undefined);
  assert.notEqual(r.headers["keep-alive"], "timeout=5");
});

test(`proxy: 502 when the upstream refuses, 503 when no server is up, 504 when it does not answer`, async () => {
  const refused = await request(`${fulcrum.url}/refused`);
  assert.equal(refused.status, 502);
  assert.equal(refused.headers["x-fulcrum-error"], "upstream_refused");
  const down = await request(`${fulcrum.url}/down`);
  assert.equal(down.status, 503);
  assert.equal(down.headers["x-fulcrum-error"], "no_server");
  const hits = hang.hits;
  const slow = await request(`${fulcrum.url}/slow`);
  assert.equal(slow.status, 504);
  assert.equal(slow.headers["x-fulcrum-error"], "upstream_timeout");
  assert.equal(hang.hits, hits + 1, "the request did reach the silent server");
  assert.match(fulcrum.output(), /slow\/127\.0\.0\.1:\d+ 504 upstream timed out \(GET \/slow\)/, fulcrum.output());
});

test(`proxy: max_fails takes a failing server out for fail_timeout, then it is tried again`, async () => {
  const first = await request(`${fulcrum.url}/passive`);
  assert.equal(first.status, 502, "rr starts on the refusing server");
  for (let i = 0; i < 5; i++) {
    const r = await request(`${fulcrum.url}/passive`);
    assert.equal(r.status, 200, `request ${i} after the failure should avoid the failed server`);
  }
  await new Promise((r) => setTimeout(r, 2200));
  let retried = false;
  for (let i = 0; i < 4 && !retried; i++) retried = (await request(`${fulcrum.url}/passive`)).status === 502;
  assert.ok(retried, "after fail_timeout the server is given traffic again");
  assert.match(fulcrum.output(), /passive\/127\.0\.0\.1:\d+ out for 2000 ms: 1 failure\(s\) within fail_timeout/);
  assert.match(fulcrum.output(), /passive\/127\.0\.0\.1:\d+ back after fail_timeout/);
});

test(`proxy: request and response bodies stream through intact`, async () => {
  const body = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) & 255);
  let sum = 0;
  for (const x of body) sum = (sum + x) % 65521;
  const r = await request(`${fulcrum.url}/m`, { method: "POST", body });
  const e = JSON.parse(r.body) as Echo;
  assert.equal(e.bodyBytes, body.length);
  assert.equal(e.bodySum, sum);
  const big = await request(`${fulcrum.url}/big?size=3000000`);
  assert.equal(big.status, 200);
  assert.equal(big.bytes, 3_000_000);
});
