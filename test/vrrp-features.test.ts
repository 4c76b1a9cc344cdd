// VRRP beyond the election, Fulcrum ↔ Fulcrum in a namespace lab: tracking (interfaces, scripts
// with weights), sync groups, notify hooks, the virtual MAC, IPv6, split brain, and captures that
// tshark decodes without complaint.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { Capture, exec, Lab, sleep, waitFor } from "./helpers/netns.ts";
import { fulcrumConfig, holdsFor, type Peer, startFulcrum, waitForAddress, waitForNoAddress } from "./helpers/vrrp.ts";
import { needs } from "./helpers/peers.ts";

const noLab = needs("root", "ip", "ping", "tcpdump", "tshark"); // every test here runs in a lab of network namespaces, some capture and decode packets

const VIP = "10.200.3.100";
const VIP2 = "10.200.3.101";
let lab: Lab;
const running = new Set<Peer>();
const scratch = `/tmp/fvr-${process.pid}-${runtime.name}`;

before(async () => {
  if (noLab) return;
  lab = await Lab.create("ft", ["a", "b", "c"], 3);
  await lab.addLink("a", "uplink");
  await exec(["mkdir", "-p", scratch]);
});

after(async () => {
  for (const peer of running) await peer.stop();
  await lab?.destroy();
  await exec(["rm", "-rf", scratch]);
});

async function start(node: string, config: string, instances = 1): Promise<Peer> {
  const peer = await startFulcrum(lab, node, config, instances);
  running.add(peer);
  return peer;
}

async function stopAll(): Promise<void> {
  for (const peer of [...running]) {
    await peer.stop();
    running.delete(peer);
  }
}

const cfg = (priority: number, extra: string[] = [], more: Partial<Parameters<typeof fulcrumConfig>[0]> = {}) =>
  fulcrumConfig({ priority, vip: `${VIP}/24`, extra, ...more });

/** The far end of a's uplink, in the switch namespace: downing it is pulling the cable. */
async function uplinkCable(up: boolean): Promise<void> {
  const far = `uplink-${lab.node("a").port}`;
  const r = await exec(["ip", "-n", lab.switchNs, "link", "set", far, up ? "up" : "down"]);
  assert.equal(r.code, 0, r.stderr);
}

test("vrrp: track_interface: losing the tracked link puts the master in FAULT and the backup takes over; it comes back", { skip: noLab }, async () => {
  try {
    const a = await start("a", cfg(150, ["track_interface: [uplink]"]));
    await a.waitForLine(/-> MASTER/, 5000);
    const b = await start("b", cfg(100));
    await waitForAddress(lab, "a", VIP, 2000);
    await uplinkCable(false);
    await a.waitForLine(/VI_1 MASTER -> FAULT \(interface uplink down\)/, 3000);
    // The faulting master sent priority 0, so b does not wait out a master-down interval.
    await b.waitForLine(/VI_1 BACKUP -> MASTER \(master gave up \(priority 0 advert\)\)/, 3000);
    await waitForAddress(lab, "b", VIP, 2000);
    assert.equal(await lab.hasAddress("a", VIP), false);
    await uplinkCable(true);
    await a.waitForLine(/VI_1 FAULT -> BACKUP \(interface uplink up\)/, 3000);
    await a.waitForLine(/VI_1 BACKUP -> MASTER/, 5000);
    await waitForAddress(lab, "a", VIP, 2000);
    await waitForNoAddress(lab, "b", VIP, 2000);
  } finally {
    await uplinkCable(true);
    await stopAll();
  }
});

test("vrrp: weighted track_script, track_interface and track_pool add up: each lowers the master's priority by its weight, the backup preempts once it is below, and the master takes over again as they recover", { skip: noLab }, async () => {
  const scriptFlag = `${scratch}/fail-check`, poolFlag = `${scratch}/pool-weight-down`;
  const aConfig = [
    "listeners: [{ bind: 127.0.0.1:18081 }]", // a's own namespace: its loopback is its own
    "pools:",
    "  web:",
    "    servers: [127.0.0.1:9]",
    `    health: { type: script, command: "test ! -e ${poolFlag}", interval: 200ms, rise: 1, fall: 1 }`,
    fulcrumConfig({
      priority: 150, vip: `${VIP}/24`,
      top: ["  scripts:", `    chk: { script: "test ! -e ${scriptFlag}", interval: 0.2, weight: -30 }`],
      extra: ["track_script: [chk]", "track_interface: [{ interface: uplink, weight: -30 }]", "track_pool: [{ pool: web, weight: -30 }]"],
    }),
  ].join("\n");
  const restore = async () => {
    await exec(["rm", "-f", scriptFlag, poolFlag]);
    await uplinkCable(true);
  };
  try {
    const a = await start("a", aConfig);
    await a.waitForLine(/-> MASTER/, 5000);
    const b = await start("b", cfg(100));
    await waitForAddress(lab, "a", VIP, 2000);

    await runtime.writeTextFile(scriptFlag, "");
    await a.waitForLine(/VI_1 priority 150 -> 120 \(script chk down\)/, 3000);
    // 120 is still above the backup's 100: it stays backup past its master-down interval (1.8 s).
    await holdsFor("b stays backup while a is at 120", async () => !(await lab.hasAddress("b", VIP)), 2200);
    assert.doesNotMatch(b.output(), /-> MASTER/);

    await uplinkCable(false);
    await a.waitForLine(/VI_1 priority 120 -> 90 \(interface uplink down\)/, 3000);
    await b.waitForLine(/VI_1 BACKUP -> MASTER/, 5000);
    await a.waitForLine(/VI_1 MASTER -> BACKUP \(higher priority 100 from 10\.200\.3\.2\)/, 3000);
    await waitForAddress(lab, "b", VIP, 2000);
    assert.doesNotMatch(a.output(), /FAULT/, "a weighted track lowers the priority, it does not fault");

    await runtime.writeTextFile(poolFlag, "");
    await a.waitForLine(/VI_1 priority 90 -> 60 \(pool web down\)/, 3000);

    const mark = a.output().length;
    await exec(["rm", "-f", poolFlag]);
    await a.waitForLine(/VI_1 priority 60 -> 90 \(pool web up\)/, 3000, mark);
    await uplinkCable(true);
    await a.waitForLine(/VI_1 priority 90 -> 120 \(interface uplink up\)/, 3000, mark);
    await a.waitForLine(/VI_1 BACKUP -> MASTER/, 5000, mark);
    await exec(["rm", "-f", scriptFlag]);
    await a.waitForLine(/VI_1 priority 120 -> 150 \(script chk up\)/, 3000, mark);
    await waitForAddress(lab, "a", VIP, 2000);
    await waitForNoAddress(lab, "b", VIP, 2000);
  } finally {
    await restore();
    await stopAll();
  }
});

test("vrrp: sync group: when one member faults, every member fails over together", { skip: noLab }, async () => {
  const two = (priority: number, track: boolean) => [
    "vrrp:",
    "  instances:",
    ...[["VI_1", 51, VIP], ["VI_2", 52, VIP2]].flatMap(([name, vrid, vip]) => [
      `    - name: ${name}`,
      "      interface: eth0",
      `      virtual_router_id: ${vrid}`,
      `      priority: ${priority}`,
      "      version: 3",
      "      advert_int: 0.5",
      `      virtual_ipaddress: [${vip}/24]`,
      ...(track && name === "VI_1" ? ["      track_interface: [uplink]"] : []),
    ]),
    "  sync_groups:",
    "    G1: { group: [VI_1, VI_2] }",
    "",
  ].join("\n");
  try {
    const a = await start("a", two(150, true), 2);
    await a.waitForLine(/VI_2 BACKUP -> MASTER/, 5000);
    await start("b", two(100, false), 2);
    await waitForAddress(lab, "a", VIP, 2000);
    await waitForAddress(lab, "a", VIP2, 2000);
    await uplinkCable(false);
    await a.waitForLine(/VI_1 MASTER -> FAULT \(interface uplink down\)/, 3000);
    await a.waitForLine(/VI_2 MASTER -> FAULT \(sync group G1: VI_1 interface uplink down\)/, 1000);
    await waitForAddress(lab, "b", VIP, 3000);
    await waitForAddress(lab, "b", VIP2, 3000);
    assert.deepEqual((await lab.addresses("a")).filter((x) => x === VIP || x === VIP2), []);
    await uplinkCable(true);
    await a.waitForLine(/VI_2 FAULT -> BACKUP/, 3000);
    await waitForAddress(lab, "a", VIP, 5000);
    await waitForAddress(lab, "a", VIP2, 5000);
  } finally {
    await uplinkCable(true);
    await stopAll();
  }
});

test("vrrp: notify hooks run on every transition with instance, state and priority; a failing hook is only logged", { skip: noLab }, async () => {
  const log = `${scratch}/notify.log`;
  const hook = `${scratch}/notify.sh`;
  await runtime.writeTextFile(hook, `#!/bin/sh\necho "$@" >> ${log}\n`);
  await exec(["chmod", "+x", hook]);
  try {
    const a = await start("a", cfg(150, [`notify: ${hook}`, 'notify_master: "exit 3"']));
    await a.waitForLine(/-> MASTER/, 5000);
    await a.waitForLine(/notify "exit 3" failed with exit 3/, 3000);
    await waitFor("the notify log", async () => (await runtime.readTextFile(log).catch(() => "")).includes("MASTER"), 3000);
    assert.equal(await a.stop(), 0, "a failing hook is not fatal");
    running.delete(a);
    const lines = (await runtime.readTextFile(log)).trim().split("\n");
    assert.deepEqual(lines, ["INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150", "INSTANCE VI_1 STOP 150"]);
  } finally {
    await stopAll();
  }
});

test("vrrp: use_vmac: the VIP lives on a macvlan with the virtual MAC, so the client's ARP entry survives failover", { skip: noLab }, async () => {
  const vmac = "00:00:5e:00:01:33"; // VRID 51
  try {
    const a = await start("a", cfg(150, ["use_vmac: true"]));
    await a.waitForLine(/-> MASTER/, 5000);
    const b = await start("b", cfg(100, ["use_vmac: true"]));
    await waitForAddress(lab, "a", VIP, 2000, "vrrp.51");
    const ping = await lab.exec("c", ["ping", "-c", "1", "-W", "1", VIP]);
    assert.equal(ping.code, 0, ping.stdout);
    assert.equal(await lab.neighbour("c", VIP), vmac);
    await sleep(1100); // past the ARP locktime
    await a.kill();
    running.delete(a);
    await waitForAddress(lab, "b", VIP, 5000, "vrrp.51");
    await b.waitForLine(/-> MASTER/, 1000);
    assert.equal(await lab.neighbour("c", VIP), vmac, "same MAC: nothing to relearn");
    const again = await lab.exec("c", ["ping", "-c", "1", "-W", "1", VIP]);
    assert.equal(again.code, 0, again.stdout);
    await b.stop();
    running.delete(b);
    const links = await exec(["ip", "-n", lab.node("b").ns, "link", "show", "vrrp.51"]);
    assert.notEqual(links.code, 0, "the macvlan is removed on stop");
  } finally {
    await stopAll();
  }
});

test("vrrp: IPv6 (VRRPv3 to ff02::12): failover moves the VIP and unsolicited neighbour advertisements move the client", { skip: noLab }, async () => {
  const vip6 = "fd00:200:3::100";
  const v6 = (priority: number) => fulcrumConfig({ priority, vip: `${vip6}/64` });
  try {
    const a = await start("a", v6(150));
    await a.waitForLine(/-> MASTER/, 5000);
    const b = await start("b", v6(100));
    await waitForAddress(lab, "a", vip6, 2000);
    await holdsFor("b stays backup", async () => !(await lab.hasAddress("b", vip6)), 2000);
    const ping = await lab.exec("c", ["ping", "-6", "-c", "1", "-W", "1", vip6]);
    assert.equal(ping.code, 0, ping.stdout + ping.stderr);
    assert.equal(await lab.neighbour("c", vip6), lab.node("a").mac);
    const capture = await Capture.start(lab, "c", "icmp6 and ip6[40] == 136"); // neighbour advertisements
    try {
      await a.kill();
      running.delete(a);
      await waitForAddress(lab, "b", vip6, 5000);
      await b.waitForLine(/VI_1 BACKUP -> MASTER/, 1000);
      await waitFor("the client's neighbour entry to move", async () => (await lab.neighbour("c", vip6)) === lab.node("b").mac, 2000);
      // What moved it: b's unsolicited advertisement for the VIP, to all nodes.
      await capture.waitFor(new RegExp(`^${lab.node("b").mac} > 33:33:00:00:00:01, .* > ff02::1: ICMP6, neighbor advertisement, tgt is ${vip6},`), 1, 2000);
    } finally {
      await capture.stop();
    }
    assert.doesNotMatch(b.output(), /dropped advert/);
  } finally {
    await stopAll();
  }
});

test("vrrp: split brain: both nodes master while cut off; on healing the lower steps down and the winner re-announces", { skip: noLab }, async () => {
  try {
    const a = await start("a", cfg(150));
    const b = await start("b", cfg(100));
    await waitForAddress(lab, "a", VIP, 5000);
    await lab.isolate("a", true);
    await lab.isolate("b", true); // a and b can no longer hear each other; the client still hears both
    await b.waitForLine(/VI_1 BACKUP -> MASTER \(master down timer expired\)/, 5000);
    assert.equal(await lab.hasAddress("a", VIP), true);
    assert.equal(await lab.hasAddress("b", VIP), true);
    await sleep(1100);
    await lab.isolate("a", false);
    await lab.isolate("b", false);
    await b.waitForLine(/VI_1 MASTER -> BACKUP \(higher priority 150 from 10\.200\.3\.1\)/, 3000);
    await a.waitForLine(/VI_1 announcing 10\.200\.3\.100 again \(lower-priority master 10\.200\.3\.2 \(priority 100\) seen\)/, 3000);
    await waitForNoAddress(lab, "b", VIP, 2000);
    await waitFor("the client's entry to point at a", async () => (await lab.neighbour("c", VIP)) === lab.node("a").mac, 3000);
  } finally {
    await lab.isolate("a", false);
    await lab.isolate("b", false);
    await stopAll();
  }
});

test("vrrp: tshark decodes Fulcrum's v2, v3 and IPv6 adverts, at least 3 of each captured, with valid checksums and no malformed or expert warnings", { skip: noLab }, async () => {
  const file = `${scratch}/adverts.pcap`;
  const each = 3;
  const configs = [
    fulcrumConfig({ vrid: 61, priority: 150, version: 2, interval: 1, vip: `${VIP}/24`, extra: ["authentication: { auth_type: PASS, auth_pass: pw }"] }),
    fulcrumConfig({ vrid: 62, priority: 150, version: 3, interval: 0.2, vip: `${VIP2}/24` }),
    fulcrumConfig({ vrid: 63, priority: 150, version: 3, interval: 0.2, vip: "fd00:200:3::63/64" }).replace("VI_1", "VI_6"),
  ];
  const capture = await Capture.start(lab, "c", "ip proto 112 or ip6 proto 112", file);
  try {
    await Promise.all([start("a", configs[0]), start("b", configs[1]), start("a", configs[2])]);
    // Until each kind has been captured `each` times: the v2 node, with 1 s adverts, becomes master
    // last (3 × 1 s + skew), so a capture of fixed length could end before it sent any.
    await capture.waitFor(/ > 224\.0\.0\.18: VRRPv2, Advertisement, vrid 61, prio 150,/, each, 10_000);
    await capture.waitFor(/ > 224\.0\.0\.18: VRRPv3, Advertisement, vrid 62, prio 150,/, each, 5000);
    await capture.waitFor(/ > ff02::12: VRRPv3, Advertisement, vrid 63, prio 150,/, each, 5000);
  } finally {
    await capture.stop();
    await stopAll();
  }
  // One decoding pass over every VRRP frame (tshark starts slowly), then one for problems.
  const tshark = async (filter: string, fields: string[]) => {
    const r = await exec(["tshark", "-n", "-r", file, "-Y", filter, "-T", "fields", "-E", "separator=,", ...fields.flatMap((f) => ["-e", f])]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split("\n").filter(Boolean);
  };
  // Per frame: the IPv6 header's version (empty over IPv4), VRRP version, VRID, checksum status (1: good).
  const frames = await tshark("vrrp", ["ipv6.version", "vrrp.version", "vrrp.virt_rtr_id", "vrrp.checksum.status"]);
  const good = (family: "4" | "6", version: string, vrid: string) =>
    frames.filter((f) => f === `${family === "6" ? "6" : ""},${version},${vrid},1`).length;
  const v2 = good("4", "2", "61"), v3 = good("4", "3", "62"), v6 = good("6", "3", "63");
  assert.ok(v2 >= each && v3 >= each && v6 >= each, `decoded with good checksums: v2 ${v2}, v3 ${v3}, IPv6 ${v6}`);
  assert.deepEqual(frames.filter((f) => !f.endsWith(",1")), [], "every checksum verified");
  assert.deepEqual(await tshark("_ws.malformed || _ws.expert.severity >= 4194304", ["frame.number"]), [], "no malformed packets or warnings");
});

test("vrrp: track_pool: when a pool's health checks find no healthy server the master faults, and recovers with it", { skip: noLab }, async () => {
  const flag = `${scratch}/pool-down`;
  const withPool = (priority: number) => [
    "listeners: [{ bind: 127.0.0.1:18080 }]",
    "pools:",
    "  web:",
    "    servers: [127.0.0.1:9]",
    `    health: { type: script, command: "test ! -e ${flag}", interval: 200ms, fastinter: 100ms, downinter: 100ms, rise: 1, fall: 1 }`,
    cfg(priority, ["track_pool: [web]"]),
  ].join("\n");
  try {
    const a = await start("a", withPool(150));
    await a.waitForLine(/-> MASTER/, 5000);
    const b = await start("b", cfg(100));
    await waitForAddress(lab, "a", VIP, 2000);
    await runtime.writeTextFile(flag, "");
    await a.waitForLine(/VI_1 MASTER -> FAULT \(pool web down\)/, 3000);
    await b.waitForLine(/VI_1 BACKUP -> MASTER/, 3000);
    await waitForAddress(lab, "b", VIP, 2000);
    await exec(["rm", "-f", flag]);
    await a.waitForLine(/VI_1 FAULT -> BACKUP \(pool web up\)/, 3000);
    await waitForAddress(lab, "a", VIP, 5000);
  } finally {
    await exec(["rm", "-f", flag]);
    await stopAll();
  }
});
