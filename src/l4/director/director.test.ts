// The director's rewrites, on both kernels (WASM and the TS twin): NAT, FULLNAT with TOA, DR,
// TUN with its ICMP "too big", ICMP errors of tracked connections, refused fragments. Every
// checksum is verified by a full computation of its own (packet-checks.ts), not the kernels' incremental code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director, type VirtualServerSpec } from "./director.ts";
import { Simulator, buildPacket, buildIcmpError, type PacketSpec } from "./simulator.ts";
import { be16, hex, ip4, sum16, verify } from "./packet-checks.ts";

const IMPLS = ["wasm", "ts"] as const;

async function director(impl: "wasm" | "ts", spec: Partial<VirtualServerSpec> = {}): Promise<{ d: Director; sim: Simulator }> {
  const d = await Director.create({ capacity: 1024, impl, seed: 11 });
  d.addService({
    name: "web", address: "10.0.0.100", port: 80, protocol: "tcp", kind: "nat", scheduler: "rr",
    servers: [{ address: "10.0.1.1", port: 8080, mac: "02:00:00:00:01:01" }], mac: "02:00:00:00:00:aa",
    gatewayMac: "02:00:00:00:00:fe", ...spec,
  });
  return { d, sim: new Simulator(d, 5000) };
}

const client = (over: Partial<PacketSpec> = {}): PacketSpec => ({
  src: "192.168.7.9", dst: "10.0.0.100", sport: 40001, dport: 80, protocol: "tcp", flags: { syn: true }, ...over,
});

for (const impl of IMPLS) {
  test(`${impl}: NAT rewrites the destination to the server and replies back to the VIP, checksums valid`, async () => {
    const { d, sim } = await director(impl);
    const out = sim.one(buildPacket(client({ payload: 33 })));
    assert.equal(out.verdict, "to_server");
    const l4 = verify(out.bytes);
    assert.equal(ip4(out.bytes, 12), "192.168.7.9");
    assert.equal(ip4(out.bytes, 16), "10.0.1.1");
    assert.equal(be16(out.bytes, l4), 40001);
    assert.equal(be16(out.bytes, l4 + 2), 8080);
    const back = sim.one(buildPacket({ src: "10.0.1.1", dst: "192.168.7.9", sport: 8080, dport: 40001, protocol: "tcp", flags: { syn: true, ack: true }, payload: 7 }));
    assert.equal(back.verdict, "to_client");
    const l4b = verify(back.bytes);
    assert.equal(ip4(back.bytes, 12), "10.0.0.100");
    assert.equal(be16(back.bytes, l4b), 80);
    assert.equal(ip4(back.bytes, 16), "192.168.7.9");
    assert.deepEqual([d.counters().forward_in, d.counters().forward_out], [1, 1]);
  });

  test(`${impl}: NAT over IPv6 UDP, and IPv4 UDP without a checksum keeps none`, async () => {
    const { sim } = await director(impl, { address: "2001:db8::100", port: 53, protocol: "udp", servers: [{ address: "2001:db8:1::1", port: 5353 }] });
    const out = sim.one(buildPacket({ src: "2001:db8:9::9", dst: "2001:db8::100", sport: 5000, dport: 53, protocol: "udp", payload: 41 }));
    assert.equal(out.verdict, "to_server");
    const l4 = verify(out.bytes);
    assert.equal(hex(out.bytes.subarray(24, 40)), "20010db8000100000000000000000001");
    assert.equal(be16(out.bytes, l4 + 2), 5353);
    const { sim: sim4 } = await director(impl, { port: 53, protocol: "udp" });
    const bare = sim4.one(buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 5000, dport: 53, protocol: "udp", payload: 9, noUdpChecksum: true }));
    assert.equal(bare.verdict, "to_server");
    verify(bare.bytes);
    assert.equal(be16(bare.bytes, 20 + 6), 0, "no checksum stays no checksum");
    assert.equal(ip4(bare.bytes, 16), "10.0.1.1");
  });

  test(`${impl}: FULLNAT rewrites both ends, puts TOA on the SYN and the completing ACK only, and maps replies back`, async () => {
    const { d, sim } = await director(impl, { kind: "fullnat", localAddresses: ["10.0.2.50", "10.0.2.51"], toa: true });
    const syn = sim.one(buildPacket(client()));
    assert.equal(syn.verdict, "to_server");
    const l4 = verify(syn.bytes);
    assert.equal(ip4(syn.bytes, 16), "10.0.1.1");
    assert.ok(["10.0.2.50", "10.0.2.51"].includes(ip4(syn.bytes, 12)));
    const laddr = ip4(syn.bytes, 12), lport = be16(syn.bytes, l4);
    assert.ok(lport >= 1025 && lport <= 65535);
    assert.equal(be16(syn.bytes, 2), 40 + 8, "total length grew by the option");
    assert.equal(syn.bytes[l4 + 12] >> 4, 7, "data offset 28 bytes");
    // TOA: kind 254, length 8, the client's port and address.
    assert.deepEqual(Array.from(syn.bytes.subarray(l4 + 20, l4 + 28)), [254, 8, 40001 >> 8, 40001 & 0xff, 192, 168, 7, 9]);
    const synAck = sim.one(buildPacket({ src: "10.0.1.1", dst: laddr, sport: 8080, dport: lport, protocol: "tcp", flags: { syn: true, ack: true } }));
    assert.equal(synAck.verdict, "to_client");
    const l4b = verify(synAck.bytes);
    assert.deepEqual([ip4(synAck.bytes, 12), be16(synAck.bytes, l4b), ip4(synAck.bytes, 16), be16(synAck.bytes, l4b + 2)], ["10.0.0.100", 80, "192.168.7.9", 40001]);
    const ack = sim.one(buildPacket(client({ flags: { ack: true }, payload: 10 })));
    const l4c = verify(ack.bytes);
    assert.equal(ack.bytes[l4c + 12] >> 4, 7, "TOA on the handshake's ACK");
    assert.equal(ack.bytes[l4c + 20], 254);
    assert.equal(ack.bytes.length, 20 + 28 + 10);
    const data = sim.one(buildPacket(client({ flags: { ack: true, psh: true }, payload: 10 })));
    const l4d = verify(data.bytes);
    assert.equal(data.bytes[l4d + 12] >> 4, 5, "no TOA after the handshake");
    assert.equal(d.listConnections()[0].local, `${laddr}:${lport}`);
  });

  test(`${impl}: FULLNAT over IPv6 carries a 20-byte TOA`, async () => {
    const { sim } = await director(impl, {
      kind: "fullnat", address: "2001:db8::100", localAddresses: ["2001:db8:2::50"], toa: true,
      servers: [{ address: "2001:db8:1::1", port: 8080 }],
    });
    const out = sim.one(buildPacket({ src: "2001:db8:9::9", dst: "2001:db8::100", sport: 40001, dport: 80, protocol: "tcp", flags: { syn: true } }));
    const l4 = verify(out.bytes);
    assert.equal(out.bytes[l4 + 20], 254);
    assert.equal(out.bytes[l4 + 21], 20);
    assert.equal(hex(out.bytes.subarray(l4 + 24, l4 + 40)), "20010db8000900000000000000000009");
    assert.equal(hex(out.bytes.subarray(8, 24)), "20010db8000200000000000000000050");
  });

  test(`${impl}: DR rewrites only the MACs and refuses a bare IP packet`, async () => {
    const { d, sim } = await director(impl, { kind: "dr" });
    const l2 = { src: "02:00:00:00:00:01", dst: "02:00:00:00:00:aa" };
    const frame = buildPacket(client({ l2, payload: 20 }));
    const out = sim.one(frame, true);
    assert.equal(out.verdict, "to_server");
    assert.equal(hex(out.bytes.subarray(0, 12)), "020000000101" + "0200000000aa");
    assert.equal(hex(out.bytes.subarray(12)), hex(frame.subarray(12)), "IP packet untouched");
    verify(out.bytes, 14);
    const bare = sim.one(buildPacket(client({ sport: 40002 })));
    assert.deepEqual([bare.verdict, bare.reason], ["drop", "needs_l2"]);
    assert.equal(d.counters().needs_l2, 1);
  });

  test(`${impl}: TUN encapsulates IPv4 in IPv4 and IPv6 in IPv6 from the director's address`, async () => {
    const { sim } = await director(impl, { kind: "tun", sourceAddress: "10.0.3.1" });
    const inner = buildPacket(client({ payload: 100 }));
    const out = sim.one(inner);
    assert.equal(out.verdict, "to_server");
    assert.equal(out.bytes[9], 4, "IPIP");
    assert.equal(be16(out.bytes, 2), inner.length + 20);
    verify(out.bytes, 20);
    assert.equal(sum16(out.bytes, 0, 20), 0xffff, "outer header checksum");
    assert.deepEqual([ip4(out.bytes, 12), ip4(out.bytes, 16)], ["10.0.3.1", "10.0.1.1"]);
    assert.equal(hex(out.bytes.subarray(20)), hex(inner), "inner packet untouched");
    const { sim: sim6 } = await director(impl, { kind: "tun", address: "2001:db8::100", sourceAddress: "2001:db8:3::1", servers: [{ address: "2001:db8:1::1", port: 80 }] });
    const inner6 = buildPacket({ src: "2001:db8:9::9", dst: "2001:db8::100", sport: 40001, dport: 80, protocol: "tcp", flags: { syn: true } });
    const out6 = sim6.one(inner6);
    assert.equal(out6.bytes[6], 41, "IPv6 in IPv6");
    assert.equal(be16(out6.bytes, 4), inner6.length);
    assert.equal(hex(out6.bytes.subarray(40)), hex(inner6));
  });

  test(`${impl}: TUN answers a packet too big for the tunnel with frag-needed / packet-too-big`, async () => {
    const { d, sim } = await director(impl, { kind: "tun", mtu: 1400 });
    const big = buildPacket(client({ flags: { ack: true }, payload: 1360 }));
    sim.one(buildPacket(client()));
    const out = sim.one(big);
    assert.deepEqual([out.verdict, out.reason], ["to_client", "frag_needed_sent"]);
    const l4 = verify(out.bytes);
    assert.deepEqual([out.bytes[9], out.bytes[l4], out.bytes[l4 + 1]], [1, 3, 4]);
    assert.equal(be16(out.bytes, l4 + 6), 1380, "next-hop MTU leaves room for the outer header");
    assert.deepEqual([ip4(out.bytes, 12), ip4(out.bytes, 16)], ["10.0.0.100", "192.168.7.9"]);
    assert.equal(hex(out.bytes.subarray(l4 + 8, l4 + 28)), hex(big.subarray(0, 20)), "quotes the packet");
    const noDf = sim.one(buildPacket(client({ flags: { ack: true }, payload: 1360, df: false })));
    assert.deepEqual([noDf.verdict, noDf.reason], ["drop", "too_big"]);
    const { sim: sim6 } = await director(impl, { kind: "tun", mtu: 1400, address: "2001:db8::100", servers: [{ address: "2001:db8:1::1", port: 80 }] });
    const s6 = { src: "2001:db8:9::9", dst: "2001:db8::100", sport: 40001, dport: 80, protocol: "tcp" as const };
    sim6.one(buildPacket({ ...s6, flags: { syn: true } }));
    const out6 = sim6.one(buildPacket({ ...s6, flags: { ack: true }, payload: 1340 }));
    assert.equal(out6.reason, "frag_needed_sent");
    const l46 = verify(out6.bytes);
    assert.equal(out6.bytes[l46], 2, "packet too big");
    assert.equal(new DataView(out6.bytes.buffer, out6.bytes.byteOffset).getUint32(l46 + 4), 1360, "MTU less the outer header");
    assert.equal(d.counters().frag_needed_sent, 1);
  });

  test(`${impl}: ICMP errors of a tracked NAT connection are translated both ways`, async () => {
    const { d, sim } = await director(impl, { port: 53, protocol: "udp" });
    const query = buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 5000, dport: 53, protocol: "udp", payload: 30 });
    const toServer = sim.one(query);
    // The server says port unreachable about the packet it got.
    const unreach = sim.one(buildIcmpError("10.0.1.1", "192.168.7.9", 3, 3, toServer.bytes));
    assert.deepEqual([unreach.verdict, unreach.reason], ["to_client", "forward_icmp_out"]);
    verify(unreach.bytes);
    assert.equal(ip4(unreach.bytes, 12), "10.0.0.100", "from the VIP");
    assert.equal(ip4(unreach.bytes, 28 + 16), "10.0.0.100", "quoted destination is the VIP");
    assert.equal(be16(unreach.bytes, 48 + 2), 53);
    const qUdp = 28 + 20;
    assert.equal(sum16(unreach.bytes, qUdp, unreach.bytes.length, sum16(unreach.bytes, 28 + 12, 28 + 20, 17 + (unreach.bytes.length - qUdp))), 0xffff, "quoted UDP checksum");
    // A router on the client's side reports a reply of ours (vip -> client) as too big.
    const reply = buildPacket({ src: "10.0.0.100", dst: "192.168.7.9", sport: 53, dport: 5000, protocol: "udp", payload: 30 });
    const fragNeeded = sim.one(buildIcmpError("192.168.50.1", "10.0.0.100", 3, 4, reply, 28));
    assert.deepEqual([fragNeeded.verdict, fragNeeded.reason], ["to_server", "forward_icmp_in"]);
    verify(fragNeeded.bytes);
    assert.equal(ip4(fragNeeded.bytes, 16), "10.0.1.1");
    assert.equal(ip4(fragNeeded.bytes, 28 + 12), "10.0.1.1", "quoted source is the server");
    assert.equal(be16(fragNeeded.bytes, 48), 8080, "quoted source port is the server's");
    const stray = sim.one(buildIcmpError("192.168.50.1", "10.0.0.100", 3, 4, buildPacket({ src: "10.0.0.100", dst: "192.168.7.9", sport: 53, dport: 5999, protocol: "udp" })));
    assert.equal(stray.reason, "icmp_untracked");
    assert.equal(d.counters().icmp_untracked, 1);
  });

  test(`${impl}: ICMPv6 errors of a FULLNAT connection are translated, pseudo-header included`, async () => {
    const { sim } = await director(impl, {
      kind: "fullnat", address: "2001:db8::100", localAddresses: ["2001:db8:2::50"], port: 53, protocol: "udp",
      servers: [{ address: "2001:db8:1::1", port: 5353 }],
    });
    const out = sim.one(buildPacket({ src: "2001:db8:9::9", dst: "2001:db8::100", sport: 5000, dport: 53, protocol: "udp", payload: 12 }));
    const err = sim.one(buildIcmpError("2001:db8:1::1", "2001:db8:2::50", 1, 4, out.bytes));
    assert.equal(err.reason, "forward_icmp_out");
    verify(err.bytes);
    assert.equal(hex(err.bytes.subarray(8, 24)), "20010db8000000000000000000000100", "from the VIP");
    assert.equal(hex(err.bytes.subarray(24, 40)), "20010db8000900000000000000000009", "to the client");
    assert.equal(hex(err.bytes.subarray(48 + 8, 48 + 24)), "20010db8000900000000000000000009", "quoted source: the client");
    assert.equal(be16(err.bytes, 48 + 40), 5000);
  });

  test(`${impl}: fragments are refused and counted, never forwarded`, async () => {
    const { d, sim } = await director(impl, { protocol: "udp" });
    const frag = buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 5000, dport: 80, protocol: "udp", payload: 16 });
    frag[6] |= 0x20; // more fragments
    const r1 = sim.one(frag);
    const later = buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 5000, dport: 80, protocol: "udp", payload: 16 });
    later[7] = 10; // offset 80 bytes
    const r2 = sim.one(later);
    const v6 = new Uint8Array(48);
    v6[0] = 0x60; v6[5] = 8; v6[6] = 44; v6[7] = 64;
    const r3 = sim.one(v6);
    assert.deepEqual([r1.reason, r2.reason, r3.reason], ["fragment", "fragment", "fragment"]);
    assert.ok([r1, r2, r3].every((r) => r.verdict === "drop"));
    assert.equal(d.counters().fragment, 3);
    assert.equal(d.counters().created, 0);
  });

  test(`${impl}: packets for no service, non-SYN without a connection and short headers are dropped with their reasons`, async () => {
    const { d, sim } = await director(impl);
    const reasons = [
      sim.one(buildPacket(client({ dport: 81 }))).reason,
      sim.one(buildPacket(client({ flags: { ack: true } }))).reason,
      sim.one(buildPacket(client()).subarray(0, 30)).reason,
      sim.one(new Uint8Array([0x45, 0, 0])).reason,
    ];
    assert.deepEqual(reasons, ["no_service", "not_syn", "truncated", "truncated"]);
    assert.deepEqual(d.totals(), { forwarded: 0, dropped: 4 });
  });
}
