// Many nodes behind ECMP (issue 12), in the lab of test/helpers/ecmp-lab.ts: a router spreads the
// flows to each VIP over three Fulcrum nodes by their ports; every node runs the same config, its
// pools from one real etcd (no hash_seed: the nodes agree on it through etcd) and a DR virtual
// server per pool in front of three nginx. Two virtual servers side by side: `web` (mh) and
// `webrr` (rr, the peer a plain director is), so one node loss is measured on both at once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { EcmpLab, type NodeChange, NODES, PREFIX, SERVERS } from "./helpers/ecmp-lab.ts";
import { waitFor } from "./helpers/netns.ts";
import { needs } from "./helpers/peers.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "wrk", "etcd", "etcdctl");

const SUBNET = 70;
/** Per source address (8 of them) and VIP: 200 downloads through each VIP. */
const PER_SOURCE = 25;
let lab: EcmpLab;

interface PoolsView { pools: { name: string; servers: { address: string; state: string; weight: number; admin: string }[] }[] }
interface StatusView { generation: number; reloads: { ok: number; failed: number } }

before(async () => {
  if (noLab) return;
  // 320 KiB at 16 KiB/s: each download lasts 20 s, long enough for all 400 to be open at once
  // (starting them takes seconds at load 15 on 2 cores) and to outlast the loss.
  lab = await EcmpLab.create("ecmp", SUBNET, [{ name: "web", scheduler: "mh" }, { name: "webrr", scheduler: "rr" }], {
    downloadBytes: 320 * 1024, rateBytes: 16 * 1024,
  });
  // One after another: the first creates the shared hash seed, the others read it.
  for (const n of NODES) await lab.startNode(n);
});

after(async () => {
  await lab?.destroy();
});

const serverAddress = (s: string) => `${lab.lab.node(s).ipv4}:80`;
const esc = (s: string) => s.replace(/\./g, "\\.");

async function serverOn(node: string, pool: string, server: string) {
  const view = await lab.api<PoolsView>(node, "/api/pools");
  return view.pools.find((p) => p.name === pool)?.servers.find((s) => s.address === serverAddress(server));
}

/** n requests through a VIP, each a new connection from the next source address; who answered. */
async function through(vip: string, n: number): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await lab.lab.exec("client", ["curl", "-s", "-m", "3", "--interface", lab.sources()[i % lab.sources().length], `http://${vip}/`]);
    assert.equal(r.code, 0, `curl ${i} through ${vip}: exit ${r.code}`);
    answers.push(r.stdout.trim());
  }
  return answers;
}

test("ecmp lab: the three nodes share the hash seed from etcd, and curl through each VIP is answered by the nginx servers over every node", { skip: noLab }, async () => {
  const outputs = NODES.map((n) => lab.nodes.get(n)!.output());
  assert.match(outputs[0], new RegExp(`hash seed from etcd key ${PREFIX}hash_seed \\(created by this node\\)`));
  for (const out of outputs.slice(1)) assert.match(out, new RegExp(`hash seed from etcd key ${PREFIX}hash_seed\\n`));
  for (const svc of lab.services) {
    // 30 connections: a node left without any by chance is 3 x (2/3)^30, about 1 in 60,000.
    const answers = await through(svc.vip, 30);
    assert.ok(answers.every((a) => SERVERS.includes(a)), `${svc.name}: answers ${answers}`);
    assert.ok(new Set(answers).size > 1, `${svc.name}: more than one server answered: ${answers}`);
    // Each node directed some of them: ECMP spread the connections (by their ports).
    for (const n of NODES) {
      const l4 = await lab.api<{ virtual_servers: { name: string; real_servers: { connections?: number; active: number; inactive: number }[] }[] }>(n, "/api/l4");
      const vs = l4.virtual_servers.find((v) => v.name === svc.name)!;
      const total = vs.real_servers.reduce((sum, r) => sum + r.active + r.inactive, 0);
      assert.ok(total > 0, `${n} directed none of 30 connections through ${svc.name}: ${JSON.stringify(vs)}`);
    }
  }
});

test("ecmp lab: an etcd change (a server drained, then a weight) reaches every node's /api/pools without a reload", { skip: noLab }, async () => {
  const before = await Promise.all(NODES.map((n) => lab.api<StatusView>(n, "/api/status")));
  const vip = lab.services[0].vip;
  // The server drained is one that mh gives some source address (of 8) before the change.
  const target = (await through(vip, 8))[0];
  const key = lab.serverKey("web", target);
  const marks = NODES.map((n) => lab.nodes.get(n)!.output().length);
  await lab.etcd.put(key, `{"state":"drain"}`);
  for (const [i, n] of NODES.entries()) {
    await waitFor(`${target} drained on ${n}`, async () => {
      const s = await serverOn(n, "web", target);
      return s?.state === "DRAIN" && s.admin === "drain";
    }, 5000, 50);
    // The director reads its pool's states every 100 ms.
    await lab.nodes.get(n)!.waitForLine(new RegExp(`director: web: real server ${esc(serverAddress(target))} drain`), 5000, marks[i]);
  }
  // New connections (from every source, over every node) avoid it.
  const answers = await through(vip, 16);
  assert.ok(!answers.includes(target), `the drained ${target} took a new connection: ${answers}`);
  await lab.etcd.put(key, `{"weight":3}`);
  for (const n of NODES) {
    await waitFor(`${target} weight 3 and up on ${n}`, async () => {
      const s = await serverOn(n, "web", target);
      return s?.weight === 3 && s.state === "UP" && s.admin === "ready";
    }, 5000, 50);
  }
  await lab.etcd.put(key, "");
  for (const n of NODES) await waitFor(`${target} back to weight 1 on ${n}`, async () => (await serverOn(n, "web", target))?.weight === 1, 5000, 50);
  const after = await Promise.all(NODES.map((n) => lab.api<StatusView>(n, "/api/status")));
  for (const [i, n] of NODES.entries()) {
    assert.equal(after[i].generation, before[i].generation, `${n} still runs its first generation`);
    assert.deepEqual(after[i].reloads, before[i].reloads, `${n} did not reload`);
    assert.match(lab.nodes.get(n)!.output(), new RegExp(`discovery: web/${esc(serverAddress(target))} drain`));
  }
});

test("ecmp lab: etcd SIGKILLed and restarted under wrk through the VIP: 0 failed requests, no server ever left a pool, and every node resyncs", { skip: noLab }, async () => {
  const marks = NODES.map((n) => lab.nodes.get(n)!.output().length);
  const vip = lab.services[0].vip;
  // Bounded: 10 s of wrk; etcd killed 2 s into it, started again once every node noticed.
  const load = lab.wrk(vip, 10);
  let loadEnded = false;
  void load.then(() => loadEnded = true, () => loadEnded = true);
  await new Promise((r) => setTimeout(r, 2000));
  await lab.etcd.kill();
  for (const n of NODES) await lab.nodes.get(n)!.waitForLine(/pool web keeps its last known servers; retrying/, 10_000, marks[NODES.indexOf(n)]);
  for (const n of NODES) {
    const pools = await lab.api<PoolsView>(n, "/api/pools");
    for (const p of pools.pools) assert.equal(p.servers.length, 3, `${n} ${p.name} kept its servers while etcd was down`);
  }
  await lab.etcd.start();
  assert.ok(!loadEnded, "etcd answered again while wrk still ran");
  const r = await load;
  assert.ok(r.requests > 100, `wrk made ${r.requests} requests:\n${r.out}`);
  assert.equal(r.failed, 0, `wrk through the VIP while etcd was killed and restarted:\n${r.out}`);
  for (const [i, n] of NODES.entries()) {
    const peer = lab.nodes.get(n)!;
    for (const pool of ["web", "webrr"]) {
      await peer.waitForLine(new RegExp(`etcd answers again after \\d+ ms: pool ${pool} resynced \\(3 server\\(s\\)\\)`), 15_000, marks[i]);
    }
    // Every removal from a discovered pool is logged: none happened.
    assert.doesNotMatch(peer.output().slice(marks[i]), /discovery: \S+ removed/, `${n} removed a server`);
  }
  // The watch runs again: a change after the restart still reaches every node.
  await lab.etcd.put(lab.serverKey("webrr", "s3"), `{"weight":2}`);
  for (const n of NODES) await waitFor(`weight 2 on ${n}`, async () => (await serverOn(n, "webrr", "s3"))?.weight === 2, 5000, 50);
  await lab.etcd.put(lab.serverKey("webrr", "s3"), "");
  for (const n of NODES) await waitFor(`weight 1 on ${n}`, async () => (await serverOn(n, "webrr", "s3"))?.weight === 1, 5000, 50);
});

/** The change is measured on the downloads established before it. Most must be: on a loaded
 * machine curl has once held 24 of one address's 25 transfers back for over 15 s (not one socket
 * opened), so a whole address's share may be missing; the shares count what was held. */
const mostlyOpen = (c: NodeChange) => c.held.web >= 0.75 * 8 * PER_SOURCE && c.held.webrr >= 0.75 * 8 * PER_SOURCE;

test("ecmp lab: one node SIGKILLed and taken out of the routes under 200 long downloads per VIP and wrk: mh + DR breaks at most 1% of the downloads and no request (the survivors adopt the moved flows), plain rr breaks far more", { skip: noLab }, async () => {
  const loss = await lab.nodeLoss("n1", PER_SOURCE);
  const share = (name: string) => loss.broken[name].length / loss.held[name];
  const detail = JSON.stringify({ held: loss.held, broken: Object.fromEntries(Object.entries(loss.broken).map(([k, v]) => [k, v.length])), adopted: loss.adopted, notSyn: loss.notSyn });
  if (loss.unopened) console.log(`node loss: ${loss.unopened}`);
  assert.ok(mostlyOpen(loss), `${detail} ${loss.unopened}`);
  assert.ok(share("web") <= 0.01, `mh: ${loss.broken.web.length} of ${loss.held.web} broken: ${JSON.stringify(loss.broken.web.slice(0, 5))} ${detail}`);
  // rr: the killed node's flows (about a third) and those ECMP moved between the survivors break:
  // 10% is over 5 standard deviations below a third of 200.
  assert.ok(share("webrr") >= 0.1, `rr: only ${loss.broken.webrr.length} of ${loss.held.webrr} broken ${detail}`);
  assert.ok(loss.adopted > 0, `the survivors adopted the moved mh flows ${detail}`);
  assert.ok(loss.notSyn > 0, `the survivors dropped the moved rr flows as not_syn ${detail}`);
  assert.ok(loss.wrk.requests > 50, `wrk made ${loss.wrk.requests} requests:\n${loss.wrk.out}`);
  assert.equal(loss.wrk.failed, 0, `wrk through the mh VIP across the loss:\n${loss.wrk.out}`);
  console.log(`node loss: mh broke ${loss.broken.web.length}/${loss.held.web}, rr ${loss.broken.webrr.length}/${loss.held.webrr}; adopted ${loss.adopted}, not_syn ${loss.notSyn}; wrk ${loss.wrk.requests} requests, ${loss.wrk.failed} failed`);
});

test("ecmp lab: the lost node started again and put back in the routes under 200 long downloads per VIP and wrk: the flows ECMP moves to it go on with mh + DR (at most 1% broken, no request failed), not with rr", { skip: noLab }, async () => {
  // The previous test left n1 dead and out of the routes; a node starts before it is announced.
  if (!lab.nodes.has("n1")) await lab.startNode("n1");
  const join = await lab.nodeJoin("n1", PER_SOURCE);
  const share = (name: string) => join.broken[name].length / join.held[name];
  const detail = JSON.stringify({ held: join.held, broken: Object.fromEntries(Object.entries(join.broken).map(([k, v]) => [k, v.length])), adopted: join.adopted, notSyn: join.notSyn });
  if (join.unopened) console.log(`node join: ${join.unopened}`);
  assert.ok(mostlyOpen(join), `${detail} ${join.unopened}`);
  assert.ok(share("web") <= 0.01, `mh: ${join.broken.web.length} of ${join.held.web} broken ${detail}`);
  // Adding a third next hop moves about half the flows (hash-threshold regions): 10% is far below.
  assert.ok(share("webrr") >= 0.1, `rr: only ${join.broken.webrr.length} of ${join.held.webrr} broken ${detail}`);
  assert.ok(join.adopted > 0, `the moved mh flows were adopted ${detail}`);
  assert.equal(join.wrk.failed, 0, `wrk through the mh VIP across the join:\n${join.wrk.out}`);
  console.log(`node join: mh broke ${join.broken.web.length}/${join.held.web}, rr ${join.broken.webrr.length}/${join.held.webrr}; adopted ${join.adopted}, not_syn ${join.notSyn}; wrk ${join.wrk.requests} requests, ${join.wrk.failed} failed`);
});
