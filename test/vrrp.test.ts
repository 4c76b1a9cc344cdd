// VRRP pure parts: the packet codec (v2/v3, IPv4/IPv6, checksums, crafted bad packets), the state
// machine driven with explicit times, and the vrrp config section.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compareAddresses, formatIP, parseIP, parseIPv4, parseIPv6 } from "../src/vrrp/ip.ts";
import {
  type Advert, AUTH_NONE, AUTH_PASS, checkAdvert, decodeAdvert, encodeAdvert, type Expectation, internetChecksum,
  parseIPv4Packet, passwordBytes, type ReceiveContext, VRRP_GROUP_V4, VRRP_GROUP_V6,
} from "../src/vrrp/packet.ts";
import { type Effect, type MachineOptions, VrrpMachine } from "../src/vrrp/machine.ts";
import { parseConfigText as parseConfig } from "../src/control/schema.ts";
import { runCli, writeTemp } from "./helpers/fulcrum.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));
const ip = (s: string) => parseIP(s)!.bytes;

// ---------------------------------------------------------------------------------- addresses

test("vrrp: IPv4 and IPv6 addresses parse and format canonically", () => {
  assert.deepEqual(parseIPv4("10.200.1.100"), Uint8Array.of(10, 200, 1, 100));
  assert.equal(parseIPv4("10.200.1.256"), null);
  assert.equal(parseIPv4("10.200.01.1"), null);
  assert.equal(formatIP(parseIPv6("FE80:0:0:0:0:0:0:1")!), "fe80::1");
  assert.equal(formatIP(parseIPv6("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
  assert.equal(formatIP(parseIPv6("ff02::12")!), "ff02::12");
  assert.equal(formatIP(parseIPv6("::ffff:10.0.0.1")!), "::ffff:a00:1");
  assert.equal(formatIP(parseIPv6("2001:db8:1:1:1:1:0:1")!), "2001:db8:1:1:1:1:0:1");
  for (const bad of ["1::2::3", "12345::", "fe80::g", "1:2:3:4:5:6:7:8:9", ":::"]) assert.equal(parseIPv6(bad), null, bad);
  assert.ok(compareAddresses(ip("10.0.0.2"), ip("10.0.0.10")) < 0);
});

// -------------------------------------------------------------------------------------- codec

const v4 = (source: string, destination = "224.0.0.18") => ({ source: ip(source), destination: ip(destination) });

function rx(family: 4 | 6, endpoints: { source: Uint8Array; destination: Uint8Array }, extra: Partial<ReceiveContext> = {}): ReceiveContext {
  return { family, hopLimit: 255, endpoints, checksumMode: "pseudo-header", ...extra };
}

function advert(over: Partial<Advert> = {}): Advert {
  return {
    version: 3, vrid: 7, priority: 150, intervalCs: 100, addresses: [ip("10.200.1.100"), ip("10.200.1.101")],
    authType: AUTH_NONE, authData: new Uint8Array(8), ...over,
  };
}

test("vrrp: v2 advert with PASS auth encodes to the reference bytes and decodes back", () => {
  const a = advert({ version: 2, vrid: 51, priority: 100, addresses: [ip("10.200.1.100")], authType: AUTH_PASS, authData: passwordBytes("secret") });
  const bytes = encodeAdvert(a, 4, null);
  // Reference computed independently (Python struct + RFC 1071 sum).
  assert.deepEqual(bytes, hex("21 33 64 01 01 01 3152 0ac80164 736563726574 0000"));
  const d = decodeAdvert(bytes, rx(4, v4("10.200.1.1")));
  assert.ok(d.ok, JSON.stringify(d));
  assert.equal(d.advert.intervalCs, 100);
  assert.equal(d.advert.authType, AUTH_PASS);
  assert.deepEqual(d.advert.authData, passwordBytes("secret"));
});

test("vrrp: v3 IPv4 checksum covers the pseudo-header, or not with v2-style (v3_checksum_as_v2)", () => {
  const ends = v4("10.200.1.1");
  const pseudo = encodeAdvert(advert(), 4, ends);
  assert.deepEqual(pseudo, hex("31 07 96 02 00 64 33dd 0ac80164 0ac80165"));
  const asV2 = encodeAdvert(advert(), 4, ends, "v2-style");
  assert.equal((asV2[6] << 8) | asV2[7], 0x2039);
  assert.ok(decodeAdvert(pseudo, rx(4, ends)).ok);
  assert.ok(decodeAdvert(asV2, rx(4, ends, { checksumMode: "v2-style" })).ok);
  // Each mode rejects the other's checksum, and the pseudo-header binds the addresses.
  assert.equal(decodeAdvert(asV2, rx(4, ends)).ok, false);
  const moved = decodeAdvert(pseudo, rx(4, v4("10.200.1.2")));
  assert.ok(!moved.ok && moved.reason === "checksum");
});

test("vrrp: v3 IPv6 advert uses the IPv6 pseudo-header", () => {
  const ends = { source: ip("fe80::1"), destination: VRRP_GROUP_V6 };
  const a = advert({ vrid: 9, priority: 200, intervalCs: 50, addresses: [ip("2001:db8::9")] });
  const bytes = encodeAdvert(a, 6, ends, "v2-style"); // the mode does not apply to IPv6
  assert.deepEqual(bytes.subarray(0, 8), hex("31 09 c8 01 00 32 dae1"));
  const d = decodeAdvert(bytes, rx(6, ends));
  assert.ok(d.ok);
  assert.equal(formatIP(d.advert.addresses[0]), "2001:db8::9");
  assert.throws(() => encodeAdvert(advert({ version: 2 }), 6, ends), /IPv4 only/);
});

test("vrrp: v3 interval uses 12 bits of centiseconds", () => {
  const bytes = encodeAdvert(advert({ intervalCs: 4095 }), 4, v4("10.0.0.1"));
  assert.equal(bytes[4], 0x0f);
  assert.equal(bytes[5], 0xff);
  const d = decodeAdvert(bytes, rx(4, v4("10.0.0.1")));
  assert.ok(d.ok && d.advert.intervalCs === 4095);
});

test("vrrp: crafted bad adverts are rejected with their reason", () => {
  const ends = v4("10.200.1.1");
  const good = encodeAdvert(advert(), 4, ends);
  const withChecksum = (m: Uint8Array) => {
    const fixed = m.slice();
    fixed[6] = fixed[7] = 0;
    const sum = internetChecksum(Uint8Array.of(10, 200, 1, 1, 224, 0, 0, 18, 0, 112, 0, fixed.length), fixed);
    fixed[6] = sum >> 8;
    fixed[7] = sum & 0xff;
    return fixed;
  };
  const mutate = (f: (m: Uint8Array) => void) => { const m = good.slice(); f(m); return withChecksum(m); };
  const cases: [string, Uint8Array, Partial<ReceiveContext>, string][] = [
    ["ttl", good, { hopLimit: 64 }, "ttl"],
    ["empty", new Uint8Array(0), {}, "length"],
    ["short", good.subarray(0, 5), {}, "length"],
    ["version 4", mutate((m) => { m[0] = 0x41; }), {}, "version"],
    ["version 1", mutate((m) => { m[0] = 0x11; }), {}, "version"],
    ["type 2", mutate((m) => { m[0] = 0x32; }), {}, "type"],
    ["count too high", mutate((m) => { m[3] = 3; }), {}, "count"],
    ["count zero", mutate((m) => { m[3] = 0; }), {}, "count"],
    ["truncated list", withChecksum(good.subarray(0, 14)), {}, "count"],
    ["trailing bytes", withChecksum(Uint8Array.from([...good, 0, 0, 0, 0])), {}, "count"],
    ["checksum", mutate(() => {}).map((b, i) => i === 7 ? b ^ 1 : b), {}, "checksum"],
    ["flipped address bit", good.map((b, i) => i === 9 ? b ^ 0x10 : b), {}, "checksum"],
  ];
  for (const [name, bytes, ctx, reason] of cases) {
    const d = decodeAdvert(bytes, rx(4, ends, ctx));
    assert.equal(d.ok, false, name);
    if (!d.ok) assert.equal(d.reason, reason, `${name}: ${d.detail}`);
  }
  const v2OverV6 = decodeAdvert(encodeAdvert(advert({ version: 2 }), 4, null), rx(6, ends));
  assert.ok(!v2OverV6.ok && v2OverV6.reason === "version");
});

test("vrrp: every 1- and 2-byte truncation and random garbage is rejected without throwing", () => {
  const ends = v4("10.200.1.1");
  const good = encodeAdvert(advert({ version: 2, authType: AUTH_PASS, authData: passwordBytes("pw") }), 4, null);
  for (let n = 0; n < good.length; n++) assert.equal(decodeAdvert(good.subarray(0, n), rx(4, ends)).ok, false);
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 2000; i++) {
    const bytes = Uint8Array.from({ length: rand() % 80 }, () => rand() & 0xff);
    const d = decodeAdvert(bytes, rx(i % 2 ? 4 : 6, i % 2 ? ends : { source: ip("fe80::1"), destination: VRRP_GROUP_V6 }));
    if (d.ok) assert.ok(d.advert.addresses.length > 0); // a random valid packet is fine, a throw is not
    assert.equal(parseIPv4Packet(bytes) === null || parseIPv4Packet(bytes)!.payload.length <= bytes.length, true);
  }
});

test("vrrp: instance checks reject wrong auth, interval, version and address list", () => {
  const expect: Expectation = {
    version: 2, intervalCs: 100, authType: AUTH_PASS, authData: passwordBytes("secret"), addresses: [ip("10.200.1.100")],
  };
  const a = advert({ version: 2, addresses: [ip("10.200.1.100")], authType: AUTH_PASS, authData: passwordBytes("secret") });
  assert.deepEqual(checkAdvert(a, expect), { ok: true });
  const reasonOf = (over: Partial<Advert>) => {
    const r = checkAdvert({ ...a, ...over }, expect);
    return r.ok ? "ok" : r.reason;
  };
  assert.equal(reasonOf({ authData: passwordBytes("secreT") }), "auth");
  assert.equal(reasonOf({ authType: AUTH_NONE }), "auth");
  assert.equal(reasonOf({ intervalCs: 200 }), "interval");
  assert.equal(reasonOf({ intervalCs: 0 }), "interval");
  assert.equal(reasonOf({ version: 3 }), "version");
  assert.equal(reasonOf({ addresses: [ip("10.200.1.99")] }), "addresses");
  assert.equal(reasonOf({ addresses: [ip("10.200.1.99")], priority: 255 }), "ok", "the address owner is authoritative");
  // v3 learns the master's interval instead of requiring ours; auth does not exist in v3.
  const v3: Expectation = { ...expect, version: 3, authType: AUTH_NONE };
  assert.deepEqual(checkAdvert({ ...a, version: 3, intervalCs: 25, authType: AUTH_NONE }, v3), { ok: true });
});

test("vrrp: an IPv4 header is split from the VRRP payload", () => {
  const payload = encodeAdvert(advert(), 4, v4("10.200.1.1"));
  const header = hex("45 c0 0000 0000 0000 ff 70 0000 0ac80101 e0000012");
  header[3] = 20 + payload.length;
  const p = parseIPv4Packet(Uint8Array.from([...header, ...payload]))!;
  assert.equal(p.ttl, 255);
  assert.equal(p.protocol, 112);
  assert.equal(formatIP(p.source), "10.200.1.1");
  assert.deepEqual(p.destination, VRRP_GROUP_V4);
  assert.deepEqual(p.payload, payload);
  assert.equal(parseIPv4Packet(hex("46 00 0014")), null);
});

// ------------------------------------------------------------------------------ state machine

function machine(over: Partial<MachineOptions> = {}): VrrpMachine {
  return new VrrpMachine({
    version: 3, priority: 100, intervalCs: 100, preempt: true, preemptDelayMs: 0, localAddress: ip("10.0.0.2"), ...over,
  });
}
const transitions = (effects: Effect[]) => effects.filter((e) => e.kind === "transition").map((e) => e.kind === "transition" && `${e.from}->${e.to}`);
const sends = (effects: Effect[]) => effects.filter((e) => e.kind === "send").map((e) => e.kind === "send" && e.priority);
const peer = (priority: number, source = "10.0.0.9", intervalCs = 100) => ({ priority, intervalCs, source: ip(source) });

test("vrrp: master-down interval and skew follow RFC 9568 (v3) and RFC 3768 (v2)", () => {
  const m = machine({ priority: 100, intervalCs: 100 });
  assert.equal(m.skewMs(), (156 * 100 * 10) / 256); // 609.375 ms
  assert.equal(m.masterDownMs(), 3000 + 609.375);
  const fast = machine({ priority: 200, intervalCs: 10 });
  assert.equal(fast.masterDownMs(), 300 + (56 * 10 * 10) / 256);
  const v2 = machine({ version: 2, priority: 100, intervalCs: 300 });
  assert.equal(v2.skewMs(), (156 / 256) * 1000);
  assert.equal(v2.masterDownMs(), 9000 + (156 / 256) * 1000);
});

test("vrrp: a lone backup becomes master when the master-down timer expires, then advertises", () => {
  const m = machine();
  assert.deepEqual(transitions(m.start(0)), ["INIT->BACKUP"]);
  const down = m.nextDeadline()!;
  assert.equal(down, m.masterDownMs());
  assert.deepEqual(m.tick(down - 1), []);
  const effects = m.tick(down);
  assert.deepEqual(transitions(effects), ["BACKUP->MASTER"]);
  assert.deepEqual(sends(effects), [100]);
  assert.match(JSON.stringify(effects), /master down timer expired/);
  assert.equal(m.nextDeadline(), down + 1000);
  assert.deepEqual(sends(m.tick(down + 1000)), [100]);
});

test("vrrp: the address owner (255) starts as master", () => {
  const m = machine({ priority: 255 });
  const effects = m.start(0);
  assert.deepEqual(transitions(effects), ["INIT->MASTER"]);
  assert.deepEqual(sends(effects), [255]);
});

test("vrrp: adverts from an equal or higher master hold a backup down; v3 learns the master's interval", () => {
  const m = machine({ priority: 100 });
  m.start(0);
  m.receive(3000, peer(100, "10.0.0.9", 50));
  assert.equal(m.masterIntervalCs, 50);
  assert.equal(m.nextDeadline(), 3000 + m.masterDownMs());
  assert.equal(m.masterDownMs(), 1500 + (156 * 50 * 10) / 256);
  assert.deepEqual(m.tick(3100), []);
  assert.equal(m.state, "BACKUP");
});

test("vrrp: a backup with preempt ignores a lower-priority master and takes over at master-down", () => {
  const m = machine({ priority: 200 });
  m.start(0);
  const down = m.nextDeadline()!;
  m.receive(1000, peer(100));
  m.receive(2000, peer(100));
  assert.equal(m.nextDeadline(), down, "lower-priority adverts do not reset the timer");
  assert.deepEqual(transitions(m.tick(down)), ["BACKUP->MASTER"]);
});

test("vrrp: nopreempt keeps a higher-priority backup behind a live lower-priority master", () => {
  const m = machine({ priority: 200, preempt: false });
  m.start(0);
  for (let t = 1000; t <= 20_000; t += 1000) {
    m.receive(t, peer(100));
    assert.deepEqual(m.tick(t), []);
  }
  assert.equal(m.state, "BACKUP");
  assert.deepEqual(transitions(m.tick(20_000 + m.masterDownMs())), ["BACKUP->MASTER"], "it still takes over when the master dies");
});

test("vrrp: preempt_delay tolerates a lower-priority master for the delay, then preempts", () => {
  const m = machine({ priority: 200, preemptDelayMs: 5000 });
  m.start(0);
  for (let t = 1000; t < 6000; t += 1000) {
    m.receive(t, peer(100));
    assert.deepEqual(m.tick(t), [], `still backup at ${t}`);
  }
  assert.equal(m.nextDeadline(), 6000);
  const effects = m.tick(6000);
  assert.deepEqual(transitions(effects), ["BACKUP->MASTER"]);
  assert.match(JSON.stringify(effects), /preempt_delay over/);
  // An equal or higher advert in between cancels the pending preemption.
  const n = machine({ priority: 200, preemptDelayMs: 5000 });
  n.start(0);
  n.receive(1000, peer(100));
  n.receive(2000, peer(250));
  assert.equal(n.nextDeadline(), 2000 + n.masterDownMs());
});

test("vrrp: a priority-0 advert makes the backup take over after only its skew time", () => {
  const m = machine({ priority: 100 });
  m.start(0);
  m.receive(1000, peer(150));
  m.receive(1500, peer(0));
  assert.equal(m.nextDeadline(), 1500 + m.skewMs());
  const effects = m.tick(1500 + m.skewMs());
  assert.deepEqual(transitions(effects), ["BACKUP->MASTER"]);
  assert.match(JSON.stringify(effects), /master gave up \(priority 0 advert\)/);
  assert.equal(effects[0].kind, "send", "the advert goes out before the addresses are taken");
});

test("vrrp: a master steps down for a higher priority, and for an equal one from a higher address", () => {
  const up = machine({ priority: 100, localAddress: ip("10.0.0.5") });
  up.start(0);
  up.tick(up.nextDeadline()!);
  assert.equal(up.state, "MASTER");
  const effects = up.receive(5000, peer(150, "10.0.0.1", 20));
  assert.deepEqual(transitions(effects), ["MASTER->BACKUP"]);
  assert.deepEqual(sends(effects), [100], "one last advert, so a split-brain winner learns of us");
  assert.equal(up.masterIntervalCs, 20);

  const tie = machine({ priority: 100, localAddress: ip("10.0.0.5") });
  tie.start(0);
  tie.tick(tie.nextDeadline()!);
  assert.deepEqual(transitions(tie.receive(5000, peer(100, "10.0.0.4"))), [], "a lower address loses the tie");
  assert.deepEqual(transitions(tie.receive(5100, peer(100, "10.0.0.6"))), ["MASTER->BACKUP"]);
});

test("vrrp: a master hearing a lower-priority master re-asserts and re-announces, rate limited", () => {
  const m = machine({ priority: 150 });
  m.start(0);
  m.tick(m.nextDeadline()!);
  const first = m.receive(10_000, peer(100));
  assert.deepEqual(sends(first), [150]);
  assert.ok(first.some((e) => e.kind === "announce"));
  const again = m.receive(10_500, peer(100));
  assert.deepEqual(sends(again), [150]);
  assert.ok(!again.some((e) => e.kind === "announce"), "not twice within a master-down interval");
  assert.ok(m.receive(20_000, peer(100)).some((e) => e.kind === "announce"));
});

test("vrrp: shutdown and fault from master send priority 0; recovery rejoins as backup", () => {
  const m = machine();
  m.start(0);
  m.tick(m.nextDeadline()!);
  const fault = m.fault(5000, "eth1 down");
  assert.deepEqual(sends(fault), [0]);
  assert.deepEqual(transitions(fault), ["MASTER->FAULT"]);
  assert.equal(m.nextDeadline(), null);
  assert.deepEqual(m.receive(5100, peer(50)), [], "adverts are ignored in FAULT");
  assert.deepEqual(transitions(m.recover(6000, "eth1 up")), ["FAULT->BACKUP"]);
  const stop = m.stop(7000);
  assert.deepEqual(sends(stop), [], "a backup has nothing to give up");
  assert.deepEqual(transitions(stop), ["BACKUP->INIT"]);
});

test("vrrp: a master whose priority drops advertises it at once; a sync group can force states", () => {
  const m = machine({ priority: 150 });
  m.start(0);
  m.tick(m.nextDeadline()!);
  assert.deepEqual(sends(m.setPriority(5000, 90)), [90]);
  assert.equal(m.priority, 90);
  assert.deepEqual(transitions(m.force(5100, "BACKUP", "sync group")), ["MASTER->BACKUP"]);
  assert.deepEqual(transitions(m.force(5200, "MASTER", "sync group")), ["BACKUP->MASTER"]);
  assert.deepEqual(transitions(m.force(5300, "FAULT", "sync group")), ["MASTER->FAULT"]);
  assert.deepEqual(m.force(5400, "MASTER", "sync group"), [], "a faulted member stays in FAULT");
});

// ----------------------------------------------------------------------------------- config

function vrrpErrors(text: string): string[] {
  const result = parseConfig(text, "test.yaml");
  if (result.ok) assert.fail("expected config errors, got a valid config");
  return result.errors.map((e) => `${e.path}: ${e.message}`);
}

const MINIMAL = `vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      virtual_ipaddress: [10.200.1.100/24]
`;

test("vrrp: a config with only a vrrp section is valid, with keepalived's defaults", () => {
  const result = parseConfig(MINIMAL, "test.yaml");
  assert.ok(result.ok, result.ok ? "" : result.message);
  assert.deepEqual(result.config.listeners, []);
  assert.deepEqual(result.config.pools, []);
  const i = result.config.vrrp!.instances[0];
  assert.equal(i.version, 2);
  assert.equal(i.priority, 100);
  assert.equal(i.intervalCs, 100);
  assert.equal(i.preempt, true);
  assert.equal(i.checksumMode, "pseudo-header");
  assert.deepEqual(i.garp, { masterDelayMs: 5000, masterRepeat: 5, refreshMs: 0, refreshRepeat: 1 });
  assert.equal(i.addresses[0].prefixLength, 24);
  // Without vrrp, listeners and pools are still required; an edge config has vrrp null.
  assert.ok(vrrpErrors("hash_seed: 1\n").some((e) => e.startsWith("listeners:")));
  const edge = parseConfig("listeners: [{ bind: 127.0.0.1:8080 }]\npools:\n  web: { servers: [127.0.0.1:9001] }\n", "t.yaml");
  assert.ok(edge.ok && edge.config.vrrp === null);
});

test("vrrp: the full keepalived vocabulary is read", () => {
  const result = parseConfig(`vrrp:
  scripts:
    chk_web: { script: "test -f /tmp/ok", interval: 0.5, weight: -30, rise: 2, fall: 3 }
  instances:
    - name: VI_6
      interface: eth1
      virtual_router_id: 7
      priority: 200
      advert_int: 0.1
      virtual_ipaddress: ["2001:db8::10/64", "2001:db8::11"]
      nopreempt: true
      preempt_delay: 2.5
      unicast_src_ip: "fd00::1"
      unicast_peer: ["fd00::2", "fd00::3"]
      track_interface: [uplink, { interface: eth2, weight: -20 }]
      track_script: [chk_web, { script: chk_web, weight: 10 }]
      notify: /usr/local/bin/vrrp-notify
      notify_master: "logger master"
      garp_master_delay: 1
      garp_master_refresh: 60
      use_vmac: true
    - name: VI_4
      interface: eth1
      virtual_router_id: 7
      priority: 90
      advert_int: "250ms"
      version: 3
      v3_checksum_as_v2: true
      virtual_ipaddress: [10.0.0.1]
      authentication: null
  sync_groups:
    G1: { group: [VI_6, VI_4], notify_fault: "logger fault" }
`, "t.yaml");
  assert.ok(result.ok, result.ok ? "" : result.message);
  const [v6, v4] = result.config.vrrp!.instances;
  assert.equal(v6.family, 6);
  assert.equal(v6.version, 3, "IPv6 defaults to VRRPv3");
  assert.equal(v6.intervalCs, 10);
  assert.equal(v6.preempt, false);
  assert.equal(v6.preemptDelayMs, 2500);
  assert.equal(v6.addresses[1].prefixLength, 128);
  assert.equal(v6.unicastPeers.length, 2);
  assert.deepEqual(v6.trackInterfaces, [{ name: "uplink", weight: 0 }, { name: "eth2", weight: -20 }]);
  assert.deepEqual(v6.trackScripts, [{ name: "chk_web", weight: -30 }, { name: "chk_web", weight: 10 }]);
  assert.equal(v6.notify.any, "/usr/local/bin/vrrp-notify");
  assert.equal(v6.vmac, "vrrp.7");
  assert.equal(v6.garp.refreshMs, 60_000);
  assert.equal(v4.intervalCs, 25);
  assert.equal(v4.checksumMode, "v2-style");
  const vrrp = result.config.vrrp!;
  assert.deepEqual(vrrp.scripts[0], { name: "chk_web", script: "test -f /tmp/ok", intervalMs: 500, timeoutMs: 500, weight: -30, rise: 2, fall: 3 });
  assert.deepEqual(vrrp.syncGroups[0].instances, ["VI_6", "VI_4"]);
});

test("vrrp: config errors name the key path, what was expected and what was found", () => {
  const errors = vrrpErrors(`vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 0
      priority: 300
      advert_int: 1.5
      virtual_ipaddress: [10.0.0.1, "fe80::1", 10.0.0.300]
      prempt: true
      authentication: { auth_type: AH, auth_pass: "much too long" }
      track_script: [chk_nope]
    - name: VI_1
      interface: "a-very-long-interface-name"
      virtual_router_id: 9
      version: 3
      advert_int: 0.005
      virtual_ipaddress: [10.0.0.2]
      preempt: true
      nopreempt: true
  sync_groups:
    G: { group: [VI_1, VI_9] }
`);
  const expected = [
    "vrrp.instances[0].virtual_router_id: expected an integer 1..255, got 0",
    "vrrp.instances[0].priority: expected an integer 1..255, got 300",
    "vrrp.instances[0].advert_int: expected whole seconds 1..255 with version 2, got 1.5",
    "vrrp.instances[0].virtual_ipaddress[1]: expected an IPv4 address like the first one (one family per instance), got \"fe80::1\"",
    "vrrp.instances[0].virtual_ipaddress[2]: expected an IPv4 or IPv6 address, optionally with a prefix length like /24, got \"10.0.0.300\"",
    "vrrp.instances[0].prempt: unknown key (did you mean \"preempt\"?)",
    "vrrp.instances[0].authentication.auth_type: expected one of PASS, got \"AH\"",
    "vrrp.instances[0].authentication.auth_pass: expected a password of 1..8 bytes (the advert carries 8), got \"much too long\"",
    "vrrp.instances[0].track_script[0]: expected the name of a defined vrrp script, got \"chk_nope\"",
    "vrrp.instances[1].name: expected a unique instance name, got \"VI_1\" again (vrrp.instances[0])",
    "vrrp.instances[1].interface: expected an interface name of 1..15 characters, got \"a-very-long-interface-name\"",
    "vrrp.instances[1].advert_int: expected 0.01..40.95 seconds in steps of 0.01 with version 3, got 0.005",
    "vrrp.instances[1].nopreempt: expected nopreempt to be the opposite of preempt, got both true",
    "vrrp.sync_groups.G.group[1]: expected the name of a defined VRRP instance, got \"VI_9\" (did you mean \"VI_1\"?)",
  ];
  for (const line of expected) assert.ok(errors.includes(line), `missing:\n  ${line}\ngot:\n  ${errors.join("\n  ")}`);
  assert.ok(vrrpErrors(MINIMAL.replace("virtual_router_id: 51", "virtual_router_id: 51\n      version: 2\n      virtual_ipaddress: [\"2001:db8::1\"]").replace("      virtual_ipaddress: [10.200.1.100/24]\n", ""))
    .includes("vrrp.instances[0].version: expected 3 for IPv6 virtual addresses (VRRPv2 is IPv4 only), got 2"));
  const pools = "listeners: [{ bind: 127.0.0.1:8080 }]\npools:\n  web: { servers: [127.0.0.1:9001] }\n";
  assert.ok(vrrpErrors(pools + MINIMAL.replace("virtual_router_id: 51", "virtual_router_id: 51\n      track_pool: [wbe]"))
    .includes('vrrp.instances[0].track_pool[0]: expected the name of a defined pool, got "wbe" (did you mean "web"?)'));
  const tracked = parseConfig(pools + MINIMAL.replace("virtual_router_id: 51", "virtual_router_id: 51\n      track_pool: [{ pool: web, weight: -30 }]"), "t");
  assert.ok(tracked.ok && tracked.config.vrrp!.instances[0].trackPools[0].weight === -30);
  assert.ok(vrrpErrors(MINIMAL + "    - { name: VI_2, interface: eth0, virtual_router_id: 51, virtual_ipaddress: [10.0.0.9] }\n")
    .some((e) => e.startsWith("vrrp.instances[1].virtual_router_id: expected a virtual_router_id no other IPv4 instance on eth0 uses")));
});

test("vrrp: fulcrum check accepts a vrrp-only file; fulcrum run names a missing interface and exits 1", async () => {
  const file = await writeTemp(MINIMAL.replace("interface: eth0", "interface: fvr-none0"));
  const check = await runCli(["check", "--config", file]);
  assert.equal(check.code, 0, check.stderr);
  const run = await runCli(["run", "--config", file]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /fulcrum: cannot start: VI_1: interface fvr-none0 does not exist/);
});
