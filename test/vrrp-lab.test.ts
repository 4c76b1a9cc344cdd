// Fulcrum ↔ Fulcrum VRRP in a lab of network namespaces: nodes a and b run `fulcrum run`, c is a
// client on the same L2 segment. VIP presence is read with `ip -n NS addr`, and the client's ARP
// cache shows who the network believes holds it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../src/runtime/index.ts";
import { parseIPv4 } from "../src/vrrp/ip.ts";
import { type Advert, AUTH_PASS, encodeAdvert, internetChecksum, passwordBytes } from "../src/vrrp/packet.ts";
import { Capture, Lab, sleep } from "./helpers/netns.ts";
import { fulcrumConfig, holdsFor, type Peer, startFulcrum, waitForAddress, waitForNoAddress } from "./helpers/vrrp.ts";
import { needs } from "./helpers/peers.ts";

const noLab = needs("root", "ip", "ping", "tcpdump"); // every test here runs in a lab of network namespaces and captures packets

const VIP = "10.200.1.100";
let lab: Lab;
const running = new Set<Peer>();

before(async () => {
  if (noLab) return;
  lab = await Lab.create("lab", ["a", "b", "c"], 1);
});

after(async () => {
  for (const peer of running) await peer.stop();
  await lab?.destroy();
});

async function start(node: string, config: string, instances = 1): Promise<Peer> {
  const peer = await startFulcrum(lab, node, config, instances);
  running.add(peer);
  return peer;
}

async function stop(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

async function crash(peer: Peer): Promise<void> {
  await peer.kill();
  running.delete(peer);
}

/** The client reaches the VIP and returns the MAC it resolved it to. */
async function clientSeesVip(): Promise<string> {
  const ping = await lab.exec("c", ["ping", "-c", "1", "-W", "1", VIP]);
  assert.equal(ping.code, 0, `client ping of ${VIP}: ${ping.stdout}${ping.stderr}`);
  return (await lab.neighbour("c", VIP))!;
}

async function stopAll(): Promise<void> {
  for (const peer of [...running]) await stop(peer);
}

// A gratuitous ARP for the VIP as tcpdump prints it with -e: the sender's MAC, then a broadcast
// request for the VIP from the VIP itself (RFC 5227's announcement).
const garp = (mac: string) => new RegExp(`^${mac} > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has ${VIP.replace(/\./g, "\\.")} tell ${VIP.replace(/\./g, "\\.")},`);

test("vrrp: election: the higher priority becomes master, holds the VIP, announces it as garp_master_* say, and the client resolves it to its MAC", { skip: noLab }, async () => {
  const capture = await Capture.start(lab, "c", "arp");
  try {
    const garpSettings = ["garp_master_delay: 1", "garp_master_repeat: 3", "garp_master_refresh: 2"];
    const a = await start("a", fulcrumConfig({ priority: 150, extra: garpSettings }));
    const b = await start("b", fulcrumConfig({ priority: 100, extra: garpSettings }));
    await a.waitForLine(/VI_1 BACKUP -> MASTER \(master down timer expired\)/, 5000);
    await waitForAddress(lab, "a", VIP, 5000);
    await holdsFor("b stays backup without the VIP", async () => !(await lab.hasAddress("b", VIP)), 2500);
    assert.doesNotMatch(b.output(), /-> MASTER/);
    // On becoming master: 3 (repeat) at once, 3 more after garp_master_delay (1 s), then 1 every
    // garp_master_refresh (2 s). Times are the capture's.
    const announced = await capture.waitFor(garp(lab.node("a").mac), 3 + 3 + 1, 3000);
    const t0 = announced[0].at;
    const offsets = announced.map((p) => Math.round((p.at - t0) * 1000));
    const shown = offsets.join(", ");
    const burst = (from: number, count: number, planned: number) => {
      const at = offsets.slice(from, from + count);
      // Timers fire late, never early (10 ms for the capture's and the timer's clocks to differ);
      // the upper bound is widened for a loaded machine, and still keeps the bursts apart.
      assert.ok(at.every((o) => o >= planned - 10 && o <= planned + 400), `burst at ${planned} ms: offsets ${shown}`);
      assert.ok(at[at.length - 1] - at[0] <= 50, `a burst goes out at once: offsets ${shown}`);
    };
    burst(0, 3, 0);
    burst(3, 3, 1000);
    burst(6, 1, 2000);
    assert.equal(capture.matching(garp(lab.node("b").mac)).length, 0, "the backup announces nothing");
    assert.equal(await clientSeesVip(), lab.node("a").mac);
  } finally {
    await capture.stop();
    await stopAll();
  }
});

test("vrrp: crash failover: after SIGKILL of the master the backup takes the VIP and the client's ARP entry moves", { skip: noLab }, async () => {
  try {
    const a = await start("a", fulcrumConfig({ priority: 150 }));
    await a.waitForLine(/-> MASTER/, 5000);
    const b = await start("b", fulcrumConfig({ priority: 100 }));
    await waitForAddress(lab, "a", VIP, 5000);
    assert.equal(await clientSeesVip(), lab.node("a").mac);
    await sleep(1100); // past the client's ARP locktime, so the gratuitous ARP may update the entry
    await crash(a);
    // 3 × 0.5 s + skew (0.3 s) is the RFC master-down interval; 5 s is a generous bound.
    await waitForAddress(lab, "b", VIP, 5000);
    await b.waitForLine(/VI_1 BACKUP -> MASTER \(master down timer expired\)/, 1000);
    assert.equal(await lab.neighbour("c", VIP), lab.node("b").mac, "the gratuitous ARP moved the client's entry");
    assert.equal(await clientSeesVip(), lab.node("b").mac);
  } finally {
    await stopAll();
  }
});

test("vrrp: clean failover: SIGTERM sends priority 0, the master releases the VIP and the backup takes over at once", { skip: noLab }, async () => {
  try {
    const a = await start("a", fulcrumConfig({ priority: 150, interval: 2 }));
    await a.waitForLine(/-> MASTER/, 10_000);
    const b = await start("b", fulcrumConfig({ priority: 100, interval: 2 }));
    await waitForAddress(lab, "a", VIP, 5000);
    await sleep(500);
    const capture = await Capture.start(lab, "c", "ip proto 112");
    try {
      assert.equal(await stop(a), 0, "SIGTERM exits 0");
      await waitForAddress(lab, "b", VIP, 4000);
      await b.waitForLine(/VI_1 BACKUP -> MASTER \(master gave up \(priority 0 advert\)\)/, 1000);
      // From the capture's times, not the test's (which would include a's shutdown): b's first
      // advert follows a's priority-0 advert after b's skew time, (256 - 100) × 2 s / 256 = 1.22 s,
      // where a silent master would be noticed only after 3 × 2 s + skew = 7.22 s.
      const [gaveUp] = await capture.waitFor(/10\.200\.1\.1 > 224\.0\.0\.18: VRRPv3, Advertisement, vrid 51, prio 0,/, 1, 2000);
      const [took] = await capture.waitFor(/10\.200\.1\.2 > 224\.0\.0\.18: VRRPv3, Advertisement, vrid 51, prio 100,/, 1, 2000);
      const skew = (156 * 2) / 256;
      const after = took.at - gaveUp.at;
      // Not before the skew (10 ms for clocks); the upper bound is widened for a loaded machine.
      assert.ok(after >= skew - 0.01 && after <= skew + 1.5, `b took over ${after.toFixed(3)} s after the priority-0 advert`);
    } finally {
      await capture.stop();
    }
    assert.equal(await lab.hasAddress("a", VIP), false, "the stopped master removed its VIP");
    assert.match(a.output(), /VI_1 MASTER -> INIT \(shutdown\)/);
  } finally {
    await stopAll();
  }
});

test("vrrp: preemption: a higher-priority node that joins takes over from a lower-priority master", { skip: noLab }, async () => {
  try {
    const b = await start("b", fulcrumConfig({ priority: 100 }));
    await b.waitForLine(/-> MASTER/, 5000);
    await waitForAddress(lab, "b", VIP, 2000);
    const a = await start("a", fulcrumConfig({ priority: 200 }));
    await a.waitForLine(/VI_1 BACKUP -> MASTER/, 5000);
    await b.waitForLine(/VI_1 MASTER -> BACKUP \(higher priority 200 from 10\.200\.1\.1\)/, 3000);
    await waitForAddress(lab, "a", VIP, 2000);
    await waitForNoAddress(lab, "b", VIP, 2000);
  } finally {
    await stopAll();
  }
});

test("vrrp: a reload with the instance unchanged keeps it running: no new election, the master stays master, the VIP stays", { skip: noLab }, async () => {
  try {
    const a = await start("a", fulcrumConfig({ priority: 150 }));
    await a.waitForLine(/VI_1 BACKUP -> MASTER/, 5000);
    const b = await start("b", fulcrumConfig({ priority: 100 }));
    await b.waitForLine(/VI_1 INIT -> BACKUP/, 5000);
    const mark = a.output().length;
    a.child.kill("SIGHUP");
    await a.waitForLine(/generation 2 serving .*VRRP instances kept as they run: VI_1/, 10_000, mark);
    // Three master-down intervals at 0.5 s: an election would have happened by then.
    await holdsFor("a keeps the VIP", () => lab.hasAddress("a", VIP), 1800);
    assert.doesNotMatch(a.output().slice(mark), /VI_1 \w+ -> /, "no transition on the reloaded node");
    assert.doesNotMatch(b.output(), /-> MASTER/, "the backup never took over");
  } finally {
    await stopAll();
  }
});

test("vrrp: nopreempt: a higher-priority backup leaves a live master alone, and takes over when it dies", { skip: noLab }, async () => {
  try {
    const b = await start("b", fulcrumConfig({ priority: 100 }));
    await b.waitForLine(/-> MASTER/, 5000);
    const a = await start("a", fulcrumConfig({ priority: 200, extra: ["nopreempt: true"] }));
    await holdsFor("b keeps the VIP", () => lab.hasAddress("b", VIP), 4000); // > 2 master-down intervals
    assert.doesNotMatch(a.output(), /-> MASTER/);
    await crash(b);
    await a.waitForLine(/VI_1 BACKUP -> MASTER/, 5000);
    await waitForAddress(lab, "a", VIP, 2000);
  } finally {
    await stopAll();
  }
});

test("vrrp: preempt_delay: a higher-priority node preempts only after the delay", { skip: noLab }, async () => {
  try {
    const b = await start("b", fulcrumConfig({ priority: 100 }));
    await b.waitForLine(/-> MASTER/, 5000);
    // Taken before a is started: a cannot have preempted earlier than 3 s after this, however slow its start.
    const t0 = performance.now();
    const a = await start("a", fulcrumConfig({ priority: 200, extra: ['preempt_delay: "3s"'] }));
    await a.waitForLine(/VI_1 BACKUP -> MASTER \(preempt_delay over, preempting a lower-priority master\)/, 8000);
    const waited = performance.now() - t0;
    assert.ok(waited >= 3000, `preempted after ${waited.toFixed(0)} ms, before the 3 s delay`);
    await waitForAddress(lab, "a", VIP, 2000);
    await waitForNoAddress(lab, "b", VIP, 2000);
  } finally {
    await stopAll();
  }
});

test("vrrp: unicast mode: adverts reach the configured peer as unicast, none go to the multicast group, and failover works", { skip: noLab }, async () => {
  try {
    const peerOf = (self: string, other: string) => [`unicast_src_ip: 10.200.1.${self}`, `unicast_peer: [10.200.1.${other}]`];
    const a = await start("a", fulcrumConfig({ priority: 150, extra: peerOf("1", "2") }));
    const b = await start("b", fulcrumConfig({ priority: 100, extra: peerOf("2", "1") }));
    await a.waitForLine(/-> MASTER/, 5000);
    // What b receives are unicast adverts from a, not multicast ones.
    const capture = await lab.exec("b", ["timeout", "3", "tcpdump", "--immediate-mode", "-n", "-i", "eth0", "-c", "3", "ip proto 112"], 5000);
    assert.match(capture.stdout, /10\.200\.1\.1 > 10\.200\.1\.2: VRRPv3, Advertisement, vrid 51, prio 150/);
    assert.doesNotMatch(capture.stdout, /224\.0\.0\.18/);
    await holdsFor("b stays backup", async () => !(await lab.hasAddress("b", VIP)), 2000);
    await crash(a);
    await waitForAddress(lab, "b", VIP, 5000);
    await b.waitForLine(/VI_1 BACKUP -> MASTER/, 1000);
  } finally {
    await stopAll();
  }
});

test("vrrp: crafted bad adverts are dropped and counted by reason, and random garbage cannot disturb the master", { skip: noLab }, async () => {
  const auth = ["authentication: { auth_type: PASS, auth_pass: fulcrum1 }"];
  try {
    const a = await start("a", fulcrumConfig({ priority: 150, version: 2, interval: 1, extra: auth }));
    await a.waitForLine(/-> MASTER/, 5000);
    const advert = (over: Partial<Advert> = {}) => encodeAdvert({
      version: 2, vrid: 51, priority: 200, intervalCs: 100, addresses: [parseIPv4(VIP)!], authType: AUTH_PASS,
      authData: passwordBytes("fulcrum1"), ...over,
    }, 4, null);
    // Same message with a field changed and the checksum made right again, so only that field is wrong.
    const edited = (edit: (m: Uint8Array) => void) => {
      const m = advert();
      edit(m);
      m[6] = m[7] = 0;
      const sum = internetChecksum(m);
      m[6] = sum >> 8;
      m[7] = sum & 0xff;
      return m;
    };
    // Every one claims priority 200 (above the master's 150): accepting any would make the master step down.
    const crafted: [string, Uint8Array, number][] = [
      ["ttl", advert(), 64],
      ["checksum", advert().map((b, i) => i === 6 ? b ^ 0xff : b), 255],
      ["version", edited((m) => { m[0] = 0x41; }), 255],
      ["type", edited((m) => { m[0] = 0x22; }), 255],
      ["vrid", advert({ vrid: 99 }), 255],
      ["count", edited((m) => { m[3] = 2; }), 255],
      ["auth", advert({ authData: passwordBytes("guess") }), 255],
      ["interval", advert({ intervalCs: 300 }), 255],
      ["addresses", advert({ addresses: [parseIPv4("10.200.1.99")!] }), 255],
      ["length", Uint8Array.of(0x21), 255],
    ];
    await inject(crafted.map(([, bytes, ttl]) => ({ destination: "224.0.0.18", ttl, hex: toHex(bytes) })));
    for (const [reason] of crafted) {
      await a.waitForLine(new RegExp(`VI_1 dropped advert from ${lab.node("c").ipv4.replace(/\./g, "\\.")}: ${reason} \\(`), 3000);
    }
    const counted = await a.waitForLine(/dropped so far: .*length=1/, 1000);
    for (const [reason] of crafted) assert.match(counted, new RegExp(`\\b${reason}=1\\b`));

    // Random bytes for VRID 51, to the group and to the master's own address.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    const garbage = Array.from({ length: 400 }, (_, i) => {
      const bytes = Uint8Array.from({ length: rand() % 64 }, () => rand() & 0xff);
      if (bytes.length > 1) bytes[1] = 51;
      return { destination: i % 2 ? "224.0.0.18" : lab.node("a").ipv4, ttl: 255, hex: toHex(bytes) };
    });
    for (let i = 0; i < garbage.length; i += 100) await inject(garbage.slice(i, i + 100)); // within a socket buffer
    await sleep(1500);
    assert.doesNotMatch(a.output(), /MASTER -> /, "still master");
    assert.equal(await lab.hasAddress("a", VIP), true);
    assert.equal(await stop(a), 0);
    const summary = a.output().split("\n").find((l) => /VI_1 stopped; adverts sent \d+, received 0, dropped: /.test(l));
    assert.ok(summary, a.output());
    const total = [...summary.matchAll(/=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(total >= crafted.length + 400, `every bad advert counted: ${summary}`);
  } finally {
    await stopAll();
  }
});

const INJECT = new URL("./helpers/vrrp-inject.ts", import.meta.url).pathname;
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function inject(packets: { destination: string; ttl: number; hex: string }[]): Promise<void> {
  const r = await lab.exec("c", [...runtime.scriptCommand(INJECT), JSON.stringify(packets)], 20_000);
  assert.equal(r.code, 0, r.stderr);
}
