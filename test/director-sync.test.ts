// Connection sync between two directors (LVS's sync daemon), NAT mode, in a lab of network
// namespaces laid out as keepalived's LVS-NAT: two directors running `fulcrum run`, Fulcrum to
// Fulcrum VRRP holding the VIP outside and the servers' gateway address inside (a sync group, so
// they move together), three nginx servers routed through that gateway, a client outside.
//
//   client 10.201.73.10 ── br1 ── eth1 [d1 .1 | d2 .2, VIP 10.201.73.100] eth0 ── br0 ── s1 s2 s3
//                                           10.200.73.1 | .2, gateway .254     10.200.73.3-5:8080
//
// Downloads through the VIP (curl --limit-rate) survive SIGKILL of the master with director_sync;
// without it they break: the new master has no entry for them, so it drops the clients' segments
// (not_syn: no SYN, and NAT cannot adopt a flow) and the servers' replies (no_service).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Lab, run, sleep, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum, waitForAddress } from "./helpers/vrrp.ts";
import { tempDir } from "./helpers/l4.ts";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { needs } from "./helpers/peers.ts";
import type { Child } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl");

const SUBNET = 73;
const VIP = `10.201.${SUBNET}.100`;
const GATEWAY = `10.200.${SUBNET}.254`;
const CLIENT = `10.201.${SUBNET}.10`;
const SERVERS = ["s1", "s2", "s3"];
const SIZE = 1 << 20;
/** Downloads in flight at the failover (each a connection through the VIP). */
const DOWNLOADS = 6;
let lab: Lab;
const nginx: Child[] = [];
const running = new Set<Peer>();

before(async () => {
  if (noLab) return;
  lab = await Lab.create("dsync", ["d1", "d2", ...SERVERS], SUBNET);
  // The outside segment: a second bridge in the switch namespace, the directors' eth1 and the client.
  const sw = lab.switchNs;
  await run(["ip", "-n", sw, "link", "add", "br1", "type", "bridge"]);
  await run(["ip", "-n", sw, "link", "set", "br1", "up"]);
  for (const [i, d] of ["d1", "d2"].entries()) {
    await lab.addLink(d, "eth1");
    await run(["ip", "-n", sw, "link", "set", `eth1-${lab.node(d).port}`, "master", "br1"]);
    await run(["ip", "-n", lab.node(d).ns, "addr", "add", `10.201.${SUBNET}.${i + 1}/24`, "dev", "eth1"]);
  }
  const ns = `${lab.prefix}client`;
  await run(["ip", "netns", "add", ns]);
  await run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "pc", "netns", sw]);
  await run(["ip", "-n", sw, "link", "set", "pc", "master", "br1"]);
  await run(["ip", "-n", sw, "link", "set", "pc", "up"]);
  await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
  await run(["ip", "-n", ns, "addr", "add", `${CLIENT}/24`, "dev", "eth0"]);
  await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
  lab.nodes.set("client", { name: "client", ns, ipv4: CLIENT, ipv6: "", port: "pc", mac: "" });
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "route", "add", "default", "via", GATEWAY]);
    const dir = tempDir(`dsync-${s}`);
    writeFileSync(`${dir}/big`, new Uint8Array(SIZE).fill(0x61));
    nginx.push(spawnLabNginx(lab, s, dir, `    listen ${lab.node(s).ipv4}:8080;
    location = /big { alias ${dir}/big; }`));
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", "-o", "/dev/null", `http://${lab.node(s).ipv4}:8080/big`])).code === 0, 10_000, 100);
  }
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of nginx) child.kill("SIGKILL");
  await lab?.destroy();
});

function config(priority: number, sync: boolean): string {
  const servers = SERVERS.map((s) => `${lab.node(s).ipv4}:8080`).join(", ");
  return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web:
    scheduler: rr
    servers: [${servers}]
    health: { type: tcp, interval: 500ms, timeout: 300ms, rise: 1, fall: 2 }
virtual_servers:
  - { name: web, address: ${VIP}:80, protocol: tcp, lb_kind: nat, interface: eth1, pool: web }
vrrp:
  instances:
    - { name: VI_OUT, interface: eth1, virtual_router_id: 61, priority: ${priority}, version: 3, advert_int: 0.5, virtual_ipaddress: [${VIP}/24] }
    - { name: VI_IN, interface: eth0, virtual_router_id: 62, priority: ${priority}, version: 3, advert_int: 0.5, virtual_ipaddress: [${GATEWAY}/24] }
  sync_groups:
    G: { group: [VI_OUT, VI_IN] }
${sync ? "director_sync: { interface: eth0, vrrp_instance: VI_OUT }\n" : ""}`;
}

async function start(node: string, priority: number, sync: boolean): Promise<Peer> {
  const peer = await startFulcrum(lab, node, config(priority, sync), 1, /directing tcp:\/\//g);
  running.add(peer);
  return peer;
}

/** The director's counters as GET /api/l4 shows them. */
async function counters(node: string): Promise<Record<string, number>> {
  const r = await lab.exec(node, ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/api/l4"]);
  assert.equal(r.code, 0, `GET /api/l4 on ${node}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { director: { counters: Record<string, number> } }).director.counters;
}

interface Download { done: Promise<{ code: number; out: string }> }

/** A 1 MiB download through the VIP at 128 KiB/s (about 8 s); curl gives up after 8 s without a
 * byte (a broken connection), and after 40 s in all. */
function download(): Download {
  const child = lab.spawn("client", [
    "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--limit-rate", "128k",
    "--speed-limit", "1", "--speed-time", "8", "-m", "40", `http://${VIP}/big`,
  ]);
  let out = "";
  const reader = (async () => { for await (const c of child.stdout) out += new TextDecoder().decode(c); })();
  return { done: child.exited.then(async (code) => { await reader; return { code, out }; }) };
}

/** Starts both directors (d1 the master), runs the downloads, SIGKILLs d1 once `ready` holds on
 * d2, and returns each download's outcome with d2's counters after. */
async function failover(sync: boolean, ready: (c: Record<string, number>) => boolean) {
  const d1 = await start("d1", 150, sync);
  await d1.waitForLine(/VI_OUT BACKUP -> MASTER/, 10_000);
  await waitForAddress(lab, "d1", VIP, 5000, "eth1");
  const d2 = await start("d2", 100, sync);
  await d2.waitForLine(/VI_OUT INIT -> BACKUP|VI_OUT .*-> BACKUP/, 10_000);
  const downloads = Array.from({ length: DOWNLOADS }, () => download());
  // Every connection established on d1 (and, with sync, on d2's table too) before the crash.
  await waitFor("the downloads established on d1", async () => (await counters("d1")).forward_out >= DOWNLOADS * 4, 10_000, 100);
  await waitFor("d2 ready for the failover", async () => ready(await counters("d2")), 10_000, 100);
  // Past the client's and the servers' ARP locktime (1 s), so the new master's gratuitous ARPs move their entries.
  await sleep(1100);
  await d1.kill();
  running.delete(d1);
  await d2.waitForLine(/VI_OUT BACKUP -> MASTER/, 10_000);
  const outcomes = await Promise.all(downloads.map((d) => d.done));
  const after = await counters("d2");
  await d2.stop();
  running.delete(d2);
  return { outcomes, after };
}

const complete = (o: { code: number; out: string }) => o.code === 0 && o.out === `200 ${SIZE}`;

test("director sync: downloads through the VIP survive SIGKILL of the master with director_sync (all bytes, the new master applied the synced entries); without it every one breaks (the new master drops their segments as not_syn)", { skip: noLab }, async () => {
  const withSync = await failover(true, (c) => c.sync_records_imported >= DOWNLOADS);
  const broken = withSync.outcomes.filter((o) => !complete(o));
  assert.deepEqual(broken, [], `with sync every download finished with all ${SIZE} bytes: ${JSON.stringify(withSync.outcomes)}`);
  assert.ok(withSync.after.sync_received >= 1, "d2 received sync datagrams");
  assert.equal(withSync.after.sync_rejected_checksum + withSync.after.sync_rejected_sync_id + withSync.after.sync_rejected_version, 0);
  assert.ok(withSync.after.sync_records_imported >= DOWNLOADS, `d2 applied the master's entries: ${withSync.after.sync_records_imported}`);
  assert.equal(withSync.after.not_syn, 0, "d2 had an entry for every segment after the failover");
  assert.ok(withSync.after.forward_in > 0 && withSync.after.forward_out > 0, "d2 forwarded both ways after the failover");

  const noSync = await failover(false, () => true);
  const finished = noSync.outcomes.filter(complete);
  assert.deepEqual(finished, [], `without sync no download finishes: ${JSON.stringify(noSync.outcomes)}`);
  for (const o of noSync.outcomes) assert.notEqual(o.code, 0, `curl gave up: ${JSON.stringify(o)}`);
  assert.ok(noSync.after.not_syn > 0, `d2 dropped the clients' mid-flow segments as not_syn: ${noSync.after.not_syn}`);
  assert.equal(noSync.after.sync_received, undefined, "no sync daemon ran");
  console.log(`director sync: ${DOWNLOADS} downloads in flight at SIGKILL of the master: broken with sync ${broken.length}, `
    + `without ${DOWNLOADS - finished.length} (new master without sync: not_syn ${noSync.after.not_syn}, no_service ${noSync.after.no_service})`);
});
