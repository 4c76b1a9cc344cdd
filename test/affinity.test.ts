// Session affinity on the socket engine, beyond the defaults (test/l7-semantics.test.ts): a sticky
// cookie with indirect and nocache off, re-pinning when the pinned server goes down, and source
// persistence that lasts while used and expires after persistence_timeout.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { request, type RequestOptions } from "./helpers/http.ts";
import { sleep } from "./helpers/health-servers.ts";

const PERSISTENCE_MS = 600;
let s1: Backend, s2: Backend, r1: Backend, r2: Backend, p1: Backend, p2: Backend;
let fulcrum: Running;

before(async () => {
  [s1, s2, r1, r2, p1, p2] = await Promise.all(["s1", "s2", "r1", "r2", "p1", "p2"].map((n) => startBackend(n)));
  const port = await freePort();
  fulcrum = await startFulcrum(`
listeners: [{ bind: 127.0.0.1:${port} }]
routes:
  - { path_prefix: /direct, pool: direct }
  - { path_prefix: /repin, pool: repin }
  - { path_prefix: /persist, pool: persist }
pools:
  direct:
    scheduler: rr
    sticky: { cookie: SRV, indirect: false, nocache: false }
    servers: [${s1.address}, ${s2.address}]
  repin:
    scheduler: rr
    sticky: { cookie: SRV }
    # A long fail_timeout: once down, r1 stays out for the whole test.
    servers: [{ address: ${r1.address}, fail_timeout: 60s }, { address: ${r2.address}, fail_timeout: 60s }]
  persist:
    scheduler: rr
    persistence_timeout: ${PERSISTENCE_MS}ms
    servers: [${p1.address}, ${p2.address}]
`);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([s1, s2, r1, r2, p1, p2].map((b) => b?.stop()));
});

async function get(path: string, options: RequestOptions = {}) {
  const r = await request(`${fulcrum.url}${path}`, options);
  assert.equal(r.status, 200, r.body);
  const setCookie = r.headers["set-cookie"];
  return { echo: JSON.parse(r.body) as Echo, headers: r.headers, cookie: setCookie ? String(setCookie).split(";")[0] : null };
}

test("sticky indirect: false passes the cookie to the server; nocache: false leaves Cache-Control alone", async () => {
  const first = await get("/direct/a");
  assert.match(first.cookie ?? "", /^SRV=[0-9a-f]{8}$/);
  assert.equal(first.headers["cache-control"], undefined, "no Cache-Control: private with nocache: false");
  const pinned = first.echo.backend;
  for (let i = 0; i < 4; i++) {
    const r = await get(`/direct/${i}`, { headers: { cookie: `${first.cookie}; other=1` } });
    assert.equal(r.echo.backend, pinned, "rr would alternate; the cookie pins");
    assert.equal(r.echo.headers["cookie"], `${first.cookie}; other=1`, "indirect: false: the server sees SRV");
    assert.equal(r.cookie, null, "no new cookie while pinned");
  }
});

test("sticky: when the pinned server goes down the client is re-pinned to a server that is up, and stays there", async () => {
  const first = await get("/repin/a");
  const pinnedTo = first.echo.backend, other = pinnedTo === "r1" ? "r2" : "r1";
  const [down, up] = pinnedTo === "r1" ? [r1, r2] : [r2, r1];
  assert.equal((await get("/repin/b", { headers: { cookie: first.cookie! } })).echo.backend, pinnedTo);
  await down.stop(); // refused from now on; the first failure takes it out (max_fails 1)
  const moved = await get("/repin/c", { headers: { cookie: first.cookie! } });
  assert.equal(moved.echo.backend, other, "a GET to the dead server is retried on the one up");
  assert.match(moved.cookie ?? "", /^SRV=[0-9a-f]{8}$/);
  assert.notEqual(moved.cookie, first.cookie, "re-pinned: a cookie naming the new server");
  const hits = up.hits;
  for (let i = 0; i < 3; i++) {
    const r = await get(`/repin/d${i}`, { headers: { cookie: moved.cookie! } });
    assert.equal(r.echo.backend, other);
    assert.equal(r.cookie, null, "pinned to the new server: no new cookie");
  }
  assert.equal(up.hits, hits + 3);
  const stale = await get("/repin/e", { headers: { cookie: first.cookie! } });
  assert.equal(stale.echo.backend, other, "the old cookie names a server that is down");
  assert.equal(stale.cookie, moved.cookie);
});

test("persistence_timeout: a client stays on its server while it keeps coming, and is placed afresh once idle past the timeout", async () => {
  const client = { localAddress: "127.0.0.50" };
  const first = (await get("/persist/0", client)).echo.backend;
  // rr alternates without persistence. Requests 100 ms apart (a sixth of the timeout) for longer
  // than the timeout: each use renews the entry.
  const t0 = performance.now();
  for (let i = 1; i <= 7; i++) {
    await sleep(100);
    assert.equal((await get(`/persist/${i}`, client)).echo.backend, first, `request ${i}`);
  }
  assert.ok(performance.now() - t0 > PERSISTENCE_MS, "the uses spanned more than the timeout");
  // Idle well past the timeout: the entry is gone, and rr (whose turn was left on `first`, as
  // pinned requests bypass it) places the client on the other server.
  await sleep(PERSISTENCE_MS + 400);
  const later = (await get("/persist/8", client)).echo.backend;
  assert.notEqual(later, first, "placed afresh after persistence_timeout");
  assert.equal((await get("/persist/9", client)).echo.backend, later, "and persists there");
});
