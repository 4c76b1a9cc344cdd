// Many nodes over one etcd: nodes sharing a prefix agree on the hash seed (created once in
// <prefix>hash_seed) so `mh` picks the same server for the same key on each; a node that cannot
// reach etcd at start says it uses a random seed; `fulcrum register` keeps a backend in the pool
// under a lease, and a backend whose registration dies leaves the pool by itself.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startCli, startFulcrum } from "./helpers/fulcrum.ts";
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
  backends = await Promise.all(["n1", "n2", "n3"].map((n) => startBackend(n)));
});

after(async () => {
  for (const f of running) await f.stop().catch(() => {});
  await Promise.all(backends.map((b) => b.stop()));
  await etcd?.remove();
});

async function node(prefix: string, endpoint = etcd.url): Promise<Running> {
  const port = await freePort();
  const f = await startFulcrum(`
discovery:
  etcd: { endpoints: [${endpoint}], prefix: ${prefix} }
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  api:
    scheduler: mh
    hash_key: "header:X-User"
    discovery: etcd
    servers: [${backends.map((b) => b.address).join(", ")}]
`);
  running.push(f);
  return f;
}

const KEYS = Array.from({ length: 60 }, (_, i) => `user-${i}`);

async function placement(f: Running): Promise<string[]> {
  const out: string[] = [];
  for (const k of KEYS) {
    const r = await request(`${f.url}/`, { headers: { "x-user": k } });
    assert.equal(r.status, 200, r.body);
    out.push((JSON.parse(r.body) as Echo).backend);
  }
  return out;
}

async function putServers(prefix: string): Promise<void> {
  for (const b of backends) await etcd.client.put(`${prefix}pools/api/servers/${b.address}`, "");
}

test("hash seed: two nodes with one prefix and no hash_seed pick the same mh server for 60 keys; the seed is created once", { skip }, async () => {
  await putServers("/t-seed/");
  const a = await node("/t-seed/");
  const b = await node("/t-seed/");
  const pa = await placement(a), pb = await placement(b);
  assert.deepEqual(pb, pa);
  assert.equal(new Set(pa).size, 3, "the keys spread over every server, so agreeing is not trivial");
  assert.match(a.output(), /hash seed from etcd key \/t-seed\/hash_seed \(created by this node\)/);
  assert.match(b.output(), /hash seed from etcd key \/t-seed\/hash_seed\n/);
  const stored = await etcd.client.get("/t-seed/hash_seed");
  assert.match(stored?.value ?? "", /^\d+$/);
});

test("hash seed: nodes under two prefixes draw two seeds, and place keys differently", { skip }, async () => {
  await putServers("/t-seed-x/");
  await putServers("/t-seed-y/");
  const pa = await placement(await node("/t-seed-x/"));
  const pb = await placement(await node("/t-seed-y/"));
  // Independent seeds agree on a key with chance about 1/3: about 40 of 60 differ (SD 3.7).
  const differ = pa.filter((s, i) => s !== pb[i]).length;
  assert.ok(differ >= 20, `only ${differ} of 60 keys placed differently under two prefixes`);
  const [x, y] = [await etcd.client.get("/t-seed-x/hash_seed"), await etcd.client.get("/t-seed-y/hash_seed")];
  assert.notEqual(x?.value, y?.value);
});

test("hash seed: etcd unreachable at start: the node warns it uses a random seed and serves its configured servers", { skip }, async () => {
  const f = await node("/t-seed-dead/", `http://127.0.0.1:${await freePort()}`);
  assert.match(f.output(), /WARNING: no hash seed from etcd within 3000 ms .*using a random hash key/);
  assert.equal(new Set(await placement(f)).size, 3);
});

test("register: a registered backend joins the pool; when its registration dies, the lease expires and it leaves", { skip }, async () => {
  const prefix = "/t-reg/";
  const [r1, r2] = backends;
  await etcd.client.put(`${prefix}pools/web/servers/${r1.address}`, "");
  const port = await freePort();
  const f = await startFulcrum(`
discovery:
  etcd: { endpoints: [${etcd.url}], prefix: ${prefix} }
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  web: { scheduler: rr, discovery: etcd }
`);
  running.push(f);
  const reg = await startCli(["register", "--etcd", etcd.url, "--prefix", prefix, "--pool", "web", "--address", r2.address, "--ttl", "2s"], 0);
  running.push(reg);
  const seen = async (n: number) => {
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push((JSON.parse((await request(`${f.url}/`)).body) as Echo).backend);
    return names;
  };
  // Bounded waits (40 rounds of 250 ms, about 10 s): the change travels register -> etcd -> watch.
  let joined = false;
  for (let i = 0; i < 40 && !joined; i++) { joined = (await seen(4)).includes("n2"); if (!joined) await new Promise((r) => setTimeout(r, 250)); }
  assert.ok(joined, `n2 never received traffic after registering:\n${reg.output()}`);
  const kv = await etcd.client.get(`${prefix}pools/web/servers/${r2.address}`);
  assert.ok(kv, "the key exists while registered");

  reg.child.kill("SIGKILL"); // a dead backend host: nobody revokes the lease
  await reg.child.exited;
  let left = false;
  // The 2 s lease runs out; etcd expires it within about a second more. Up to 40 rounds.
  for (let i = 0; i < 40 && !left; i++) { left = !(await seen(4)).includes("n2"); if (!left) await new Promise((r) => setTimeout(r, 250)); }
  assert.ok(left, "n2 still received traffic after its lease should have expired");
  assert.equal(await etcd.client.get(`${prefix}pools/web/servers/${r2.address}`), null);
});

test("register: SIGTERM revokes the lease, so the entry goes at once", { skip }, async () => {
  const prefix = "/t-reg-term/";
  const address = backends[2].address;
  const reg = await startCli(["register", "--etcd", etcd.url, "--prefix", prefix, "--pool", "web", "--address", address, "--ttl", "60s", "--weight", "3"], 0);
  let kv = null;
  for (let i = 0; i < 50 && !kv; i++) { kv = await etcd.client.get(`${prefix}pools/web/servers/${address}`); if (!kv) await new Promise((r) => setTimeout(r, 100)); }
  assert.equal(kv?.value, `{"weight":3}`);
  assert.equal(await reg.stop(), 0);
  // Gone although the 60 s lease had long to run: revoked, not expired.
  assert.equal(await etcd.client.get(`${prefix}pools/web/servers/${address}`), null);
  assert.match(reg.output(), /deregistered/);
});
