// Discovery from a real etcd (started here on loopback ports with its own data directory): a pool
// with `discovery: etcd` takes its servers from <prefix>pools/<pool>/servers/<host:port>, follows
// the watch (add, remove, weight, drain, maint) without a reload, keeps its servers while etcd is
// gone and resyncs when it is back. Every claim is shown by traffic through the running Fulcrum.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { type Etcd, startEtcd } from "./helpers/etcd.ts";
import { needs } from "./helpers/peers.ts";

const skip = needs("etcd");
let etcd: Etcd;
let backends: Backend[] = [];
const running: Running[] = [];

before(async () => {
  if (skip) return;
  etcd = await startEtcd();
  backends = await Promise.all(["d1", "d2", "d3"].map((n) => startBackend(n)));
});

after(async () => {
  for (const f of running) await f.stop().catch(() => {});
  await Promise.all(backends.map((b) => b.stop()));
  await etcd?.remove();
});

const key = (prefix: string, pool: string, b: Backend) => `${prefix}pools/${pool}/servers/${b.address}`;

async function fulcrumFor(prefix: string, pool: string, scheduler = "rr", extra = ""): Promise<Running> {
  const port = await freePort();
  const f = await startFulcrum(`
discovery:
  etcd: { endpoints: [${etcd.url}], prefix: ${prefix} }
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  ${pool}:
    scheduler: ${scheduler}
    discovery: etcd
${extra}`);
  running.push(f);
  return f;
}

/** Which backend answered each of `n` requests. */
async function spread(f: Running, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(`${f.url}/`);
    assert.equal(r.status, 200, r.body);
    out.push((JSON.parse(r.body) as Echo).backend);
  }
  return out;
}

const count = (names: string[]) => Object.fromEntries([...new Set(names)].sort().map((n) => [n, names.filter((x) => x === n).length]));

/** Sends rounds of `n` requests until `done` holds for a round; bounded (40 rounds, about 10 s
 * on a loaded machine) since a change reaches the pool asynchronously. Returns the last round. */
async function until(f: Running, n: number, done: (names: string[]) => boolean, what: string): Promise<string[]> {
  let last: string[] = [];
  for (let i = 0; i < 40; i++) {
    last = await spread(f, n);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${what}: not seen within 40 rounds; last round ${JSON.stringify(count(last))}\n${f.output()}`);
}

test("discovery: a pool with no servers listed serves exactly the servers etcd holds at start", { skip }, async () => {
  const prefix = "/t-full/";
  await etcd.client.put(key(prefix, "api", backends[0]), "");
  await etcd.client.put(key(prefix, "api", backends[1]), `{"weight":1}`);
  await etcd.client.put(`${prefix}pools/other/servers/${backends[2].address}`, ""); // another pool's
  const f = await fulcrumFor(prefix, "api");
  // rr over the two: 20 requests, 10 each; d3 belongs to another pool.
  assert.deepEqual(count(await spread(f, 20)), { d1: 10, d2: 10 });
  assert.match(f.output(), /discovery: api\/127\.0\.0\.1:\d+ added/);
});

test("discovery: watched adds, removals, weights, drain and maint reach the running pool without a reload", { skip }, async () => {
  const prefix = "/t-watch/";
  const [d1, d2, d3] = backends;
  await etcd.client.put(key(prefix, "web", d1), "");
  const f = await fulcrumFor(prefix, "web", "wrr");
  assert.deepEqual(count(await spread(f, 4)), { d1: 4 });

  await etcd.client.put(key(prefix, "web", d2), "");
  await until(f, 4, (r) => r.includes("d2"), "d2 added");
  await etcd.client.delete(key(prefix, "web", d1));
  await until(f, 8, (r) => !r.includes("d1"), "d1 removed");

  await etcd.client.put(key(prefix, "web", d3), `{"weight":3}`);
  // Smooth wrr over weights 1 and 3 is exact over every 4 picks once applied.
  const weighted = await until(f, 8, (r) => r.filter((n) => n === "d3").length === 6, "d3 at weight 3");
  assert.deepEqual(count(weighted), { d2: 2, d3: 6 });

  await etcd.client.put(key(prefix, "web", d3), `{"weight":3,"state":"drain"}`);
  assert.deepEqual(count(await until(f, 8, (r) => !r.includes("d3"), "d3 drained")), { d2: 8 });
  await etcd.client.put(key(prefix, "web", d3), `{"weight":3,"state":"up"}`);
  await until(f, 8, (r) => r.includes("d3"), "d3 back up");
  await etcd.client.put(key(prefix, "web", d2), `{"state":"maint"}`);
  assert.deepEqual(count(await until(f, 8, (r) => !r.includes("d2"), "d2 in maint")), { d3: 8 });
  assert.match(f.output(), /web\/127\.0\.0\.1:\d+ drain/);
});

test("discovery: a bad etcd value is logged and ignored; the pool keeps serving the good keys", { skip }, async () => {
  const prefix = "/t-bad/";
  await etcd.client.put(key(prefix, "api", backends[0]), "");
  await etcd.client.put(key(prefix, "api", backends[1]), `{"weight":"heavy"}`);
  await etcd.client.put(`${prefix}pools/api/servers/not-an-address`, "");
  const f = await fulcrumFor(prefix, "api");
  assert.deepEqual(count(await spread(f, 6)), { d1: 6 });
  assert.match(f.output(), /ignoring etcd key \/t-bad\/pools\/api\/servers\/127\.0\.0\.1:\d+: weight: expected an integer 0\.\.256, got "heavy"/);
  assert.match(f.output(), /ignoring etcd key \/t-bad\/pools\/api\/servers\/not-an-address/);
});

test("discovery: etcd killed under load: 0 failed requests, servers kept; restarted: resynced and watched again", { skip }, async () => {
  const prefix = "/t-outage/";
  const [d1, d2, d3] = backends;
  await etcd.client.put(key(prefix, "api", d1), "");
  await etcd.client.put(key(prefix, "api", d2), "");
  const f = await fulcrumFor(prefix, "api");
  assert.deepEqual(count(await spread(f, 4)), { d1: 2, d2: 2 });

  // Bounded load: at most 400 requests or 30 s, whichever first; etcd dies after the 50th.
  const seen: string[] = [];
  let failed = 0, sent = 0, killedAt = -1;
  const deadline = Date.now() + 30_000;
  while (sent < 400 && Date.now() < deadline) {
    if (sent === 50) { await etcd.kill(); killedAt = sent; }
    const r = await request(`${f.url}/`).catch(() => null);
    sent++;
    if (r?.status === 200) seen.push((JSON.parse(r.body) as Echo).backend);
    else failed++;
  }
  assert.equal(killedAt, 50);
  assert.equal(failed, 0, `${failed} of ${sent} requests failed while etcd was down`);
  assert.deepEqual(count(seen.slice(killedAt)), { d1: (sent - killedAt) / 2, d2: (sent - killedAt) / 2 }, "both servers kept");
  assert.match(f.output(), /pool api keeps its last known servers; retrying/);

  await etcd.start();
  // The restarted etcd still holds d1 and d2; d3 is new. The node resyncs and follows it.
  await etcd.client.put(key(prefix, "api", d3), "");
  await until(f, 6, (r) => r.includes("d3"), "d3 added after the restart");
  await etcd.client.delete(key(prefix, "api", d1));
  assert.deepEqual(count(await until(f, 6, (r) => !r.includes("d1"), "d1 removed after the restart")), { d2: 3, d3: 3 });
  assert.match(f.output(), /etcd answers again after \d+ ms: pool api resynced/);
});

test("discovery: a pool with static servers serves them while etcd is unreachable at start", { skip }, async () => {
  const port = await freePort();
  const dead = await freePort(); // nothing listens: etcd unreachable from the start
  const f = await startFulcrum(`
hash_seed: 1
discovery:
  etcd: { endpoints: [http://127.0.0.1:${dead}], prefix: /t-dead/ }
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  api: { scheduler: rr, discovery: etcd, servers: [${backends[0].address}, ${backends[1].address}] }
`);
  running.push(f);
  assert.deepEqual(count(await spread(f, 4)), { d1: 2, d2: 2 });
  assert.match(f.output(), /etcd unreachable .*pool api serves its configured servers until the first read/);
});

test("discovery config: naming etcd needs the section; a bad endpoint and a lone username are named by key; servers may be absent", async () => {
  const { validateConfig } = await import("../src/control/schema.ts");
  const r = validateConfig({ listeners: [{ bind: "127.0.0.1:1" }], pools: { api: { discovery: "etcd" } } });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(r.issues.map((i) => `${i.path.join(".")}: ${i.message}`), ["pools.api.discovery: discovery: etcd needs a discovery.etcd section"]);
  const bad = validateConfig({
    discovery: { etcd: { endpoints: ["127.0.0.1:2379"], username: "u" } },
    listeners: [{ bind: "127.0.0.1:1" }], pools: { api: { discovery: "etcd" } },
  });
  assert.equal(bad.ok, false);
  if (bad.ok) return;
  assert.deepEqual(bad.issues.map((i) => i.path.join(".")), ["discovery.etcd.endpoints.0", "discovery.etcd.username"]);
  const ok = validateConfig({
    discovery: { etcd: { endpoints: ["http://127.0.0.1:2379"] } },
    listeners: [{ bind: "127.0.0.1:1" }], pools: { api: { discovery: "etcd" } },
  });
  assert.equal(ok.ok, true);
  if (ok.ok) assert.deepEqual([ok.config.pools[0].servers, ok.config.discovery?.etcd?.prefix], [[], "/fulcrum/"]);
});

test("etcd client: a watch from a compacted revision is canceled with the compact revision (the source then reads again)", { skip }, async () => {
  const prefix = "/t-compact/";
  const first = await etcd.client.put(`${prefix}a`, "1");
  const last = await etcd.client.put(`${prefix}a`, "2");
  await etcd.client.call("/v3/kv/compaction", { revision: String(last) });
  const abort = new AbortController();
  const messages = [];
  for await (const m of etcd.client.watchPrefix(prefix, first, abort.signal)) {
    messages.push(m);
    if (m.canceled || messages.length >= 3) break;
  }
  abort.abort();
  const end = messages[messages.length - 1];
  assert.equal(end.canceled, true, JSON.stringify(messages));
  assert.equal(end.compactRevision, last);
});

test("discovery: etcd frozen (SIGSTOP, connections open, no answers): the node notices, keeps serving; thawed: resynced", { skip }, async () => {
  const prefix = "/t-frozen/";
  const [d1, d2, d3] = backends;
  await etcd.client.put(key(prefix, "api", d1), "");
  await etcd.client.put(key(prefix, "api", d2), "");
  const f = await fulcrumFor(prefix, "api");
  assert.deepEqual(count(await spread(f, 4)), { d1: 2, d2: 2 });
  etcd.freeze(true);
  try {
    // The watch stays open and quiet; the liveness read (every 5 s, 2 s timeout) fails. Bounded:
    // up to 30 s of rounds on a loaded machine; every request must still succeed.
    let noticed = false;
    for (let i = 0; i < 120 && !noticed; i++) {
      assert.deepEqual(count(await spread(f, 2)), { d1: 1, d2: 1 });
      noticed = /etcd watch lost \(etcd stopped answering/.test(f.output());
      if (!noticed) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(noticed, f.output());
  } finally {
    etcd.freeze(false);
  }
  await etcd.client.put(key(prefix, "api", d3), "");
  await until(f, 6, (r) => r.includes("d3"), "d3 added after etcd thawed");
  assert.match(f.output(), /etcd answers again after \d+ ms: pool api resynced/);
});
