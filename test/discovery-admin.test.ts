// A pool added through the admin API with `"discovery": "etcd"` is followed as a config pool is
// (a full read of its prefix, then the watch), and is no longer followed once removed through the
// API. A real etcd on loopback; the watches counted are etcd's own (its /metrics), so "no watch is
// left" is what etcd sees, not what Fulcrum says about itself.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { runCli, type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { getJson, request } from "./helpers/http.ts";
import { type Etcd, startEtcd } from "./helpers/etcd.ts";
import { needs } from "./helpers/peers.ts";

const skip = needs("etcd");
const TOKEN = "test-token-discovery-admin";
const PREFIX = "/t-admin/";
let etcd: Etcd;
let backends: Backend[] = [];
let fulcrum: Running, plain: Running;
let admin: string, plainAdmin: string, configFile: string;

interface ServerView { address: string; checks: { checks: number; up: boolean | null }[] }

before(async () => {
  if (skip) return;
  etcd = await startEtcd();
  backends = await Promise.all(["a1", "a2", "a3", "c1"].map((n) => startBackend(n)));
  const tokenFile = await writeTemp(`${TOKEN}\n`, "token");
  const [adminPort, port, plainAdminPort, plainPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  admin = `http://127.0.0.1:${adminPort}`;
  plainAdmin = `http://127.0.0.1:${plainAdminPort}`;
  // One config pool follows etcd too: its watch is the baseline, and its changes show when
  // Fulcrum has seen a later revision.
  const config = `
admin: { bind: 127.0.0.1:${adminPort}, token_file: ${tokenFile} }
discovery:
  etcd: { endpoints: [${etcd.url}], prefix: ${PREFIX} }
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  cfg: { scheduler: rr, discovery: etcd }
`;
  configFile = await writeTemp(config);
  fulcrum = await startFulcrum(config);
  // The same without a discovery section.
  plain = await startFulcrum(`
admin: { bind: 127.0.0.1:${plainAdminPort}, token_file: ${tokenFile} }
listeners: [{ bind: 127.0.0.1:${plainPort} }]
pools:
  web: { servers: [${backends[3].address}] }
`);
});

after(async () => {
  for (const f of [fulcrum, plain]) await f?.stop().catch(() => {});
  await Promise.all(backends.map((b) => b.stop()));
  await etcd?.remove();
});

const key = (pool: string, b: Backend) => `${PREFIX}pools/${pool}/servers/${b.address}`;
const post = (base: string, path: string, body?: unknown) => request(`${base}${path}`, {
  method: "POST",
  headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});
const poolNames = async (base: string) => (await getJson<{ pools: { name: string }[] }>(`${base}/api/pools`)).pools.map((p) => p.name);
async function servers(pool: string): Promise<ServerView[] | null> {
  const r = await request(`${admin}/api/pools/${pool}`);
  return r.status === 404 ? null : (JSON.parse(r.body) as { servers: ServerView[] }).servers;
}

/** Polls `probe` until `done` holds; bounded (100 tries of 100 ms: a change reaches the pool
 * asynchronously, and etcd closes a canceled watch a moment after its stream ended). */
async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, what: string): Promise<T> {
  let last!: T;
  for (let i = 0; i < 100; i++) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not seen in 100 tries; last ${JSON.stringify(last)}\n${fulcrum.output()}`);
}

/** The watches etcd holds open now (its own gauge). */
async function watchers(): Promise<number> {
  const text = (await request(`${etcd.url}/metrics`)).body;
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  assert.ok(m, "etcd reports etcd_debugging_mvcc_watcher_total");
  return Number(m[1]);
}

const addresses = (list: ServerView[] | null) => (list ?? []).map((s) => s.address).sort();

test("discovery admin: a pool added with discovery etcd takes etcd's servers (read, then watched); removed, its watch ends and etcd changes recreate nothing", { skip }, async () => {
  const [a1, a2, a3, c1] = backends;
  assert.equal(await until(watchers, (n) => n === 1, "the config pool's watch"), 1);
  // Already in etcd before the pool exists: the first read finds it.
  await etcd.client.put(key("canary", a1), "");
  const added = await post(admin, "/api/pools", { name: "canary", discovery: "etcd", health: { type: "http", path: "/", interval: "100ms" } });
  assert.equal(added.status, 200, added.body);
  const body = JSON.parse(added.body);
  assert.equal(body.discovery, "etcd");
  assert.match(body.message, /added pool canary, and servers from etcd; .*until the next reload/);
  const read = await until(() => servers("canary"), (s) => addresses(s).join() === a1.address && (s![0].checks[0]?.checks ?? 0) > 0, "a1 from the first read, checked");
  assert.equal(read![0].checks[0].up, true);
  // Health checks are requests from the live balancer to the discovered server.
  assert.ok(a1.hits > 0, "the discovered server was reached");
  // A change after the read arrives through the watch.
  await etcd.client.put(key("canary", a2), `{"weight":3}`);
  await until(() => servers("canary"), (s) => addresses(s).join() === [a1.address, a2.address].sort().join(), "a2 from the watch");
  assert.equal(await until(watchers, (n) => n === 2, "the added pool's watch"), 2);

  const removed = await post(admin, "/api/pools/canary/remove");
  assert.equal(removed.status, 200, removed.body);
  assert.equal(await until(watchers, (n) => n === 1, "the added pool's watch closed"), 1, "only the config pool's watch is left");
  const mark = fulcrum.output().length;
  await etcd.client.put(key("canary", a3), "");
  await etcd.client.delete(key("canary", a1));
  // A later change to the config pool shows Fulcrum has seen those revisions go by.
  await etcd.client.put(key("cfg", c1), "");
  await until(() => servers("cfg"), (s) => addresses(s).join() === c1.address, "the config pool still follows etcd");
  assert.equal(await servers("canary"), null, "no pool canary came back");
  assert.doesNotMatch(fulcrum.output().slice(mark), /discovery: canary\//, "nothing was applied to the removed pool");
  assert.equal(await watchers(), 1);

  // Added again, it is followed again from a full read (the old feed is gone, not doubled).
  const again = await post(admin, "/api/pools", { name: "canary", discovery: "etcd" });
  assert.equal(again.status, 200, again.body);
  await until(() => servers("canary"), (s) => addresses(s).join() === [a2.address, a3.address].sort().join(), "the current set on a second add");
  assert.equal(await until(watchers, (n) => n === 2, "one watch for it again"), 2);
  assert.equal((await post(admin, "/api/pools/canary/remove")).status, 200);
  assert.equal(await until(watchers, (n) => n === 1, "closed again"), 1);
});

test("discovery admin: discovery on a config without discovery.etcd, or an unknown kind, is 400 naming the field and changes nothing", { skip }, async () => {
  const plainBefore = await poolNames(plainAdmin);
  const noEtcd = await post(plainAdmin, "/api/pools", { name: "x", discovery: "etcd" });
  assert.equal(noEtcd.status, 400, noEtcd.body);
  assert.match(JSON.parse(noEtcd.body).error, /pools\.x\.discovery: discovery: etcd needs a discovery\.etcd section/);
  assert.deepEqual(JSON.parse(noEtcd.body).issues.map((i: { path: string }) => i.path), ["pools.x.discovery"]);
  assert.deepEqual(await poolNames(plainAdmin), plainBefore);

  const before = await poolNames(admin);
  const watching = await watchers();
  const unknown = await post(admin, "/api/pools", { name: "y", discovery: "consul" });
  assert.equal(unknown.status, 400, unknown.body);
  assert.match(JSON.parse(unknown.body).error, /pools\.y\.discovery: expected one of etcd, got "consul"/);
  assert.deepEqual(await poolNames(admin), before);
  assert.equal(await watchers(), watching, "no watch was opened");
  assert.equal((await request(`${admin}/healthz`)).status, 200, "still serving");
});

test("discovery admin: ctl add-pool --discovery etcd follows the pool; without servers or --discovery it is a usage error", { skip }, async () => {
  await etcd.client.put(key("viactl", backends[2]), "");
  const base = await watchers();
  const usage = await runCli(["ctl", "--config", configFile, "add-pool", "viactl"]);
  assert.equal(usage.code, 2, usage.stderr);
  assert.match(usage.stderr, /add-pool takes POOL HOST:PORT\.\.\. \(or --discovery etcd\)/);
  const added = await runCli(["ctl", "--config", configFile, "add-pool", "viactl", "--discovery", "etcd"]);
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /added pool viactl, and servers from etcd/);
  await until(() => servers("viactl"), (s) => addresses(s).join() === backends[2].address, "the ctl-added pool's server from etcd");
  assert.equal(await until(watchers, (n) => n === base + 1, "its watch"), base + 1);
  const removed = await runCli(["ctl", "--config", configFile, "remove-pool", "viactl"]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(await until(watchers, (n) => n === base, "its watch closed"), base);
});
