// FULLNAT on both kernels (WASM and the TS twin): local ports reused last-freed-last, and
// proxy_protocol v2: the header in front of the client's first payload (decoded by the L4
// proxy's own PROXY parser), sequence numbers shifted client -> server and acknowledgements
// back, SACK-permitted dropped from the SYN, the server's MSS lowered. Every checksum is verified
// by packet-checks.ts's full computation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director, type VirtualServerSpec } from "./director.ts";
import { Simulator, buildPacket, buildIcmpError, type PacketSpec, type SimResult } from "./simulator.ts";
import { be16, ip4, verify } from "./packet-checks.ts";
import { parseProxyHeader } from "../proxy-protocol.ts";

const IMPLS = ["wasm", "ts"] as const;
const ISN = 0xfffffff0; // the first payload's number wraps past 2^32 within the test
const FIRST = (ISN + 1) >>> 0;

async function director(impl: "wasm" | "ts", spec: Partial<VirtualServerSpec> = {}): Promise<{ d: Director; sim: Simulator }> {
  const d = await Director.create({ capacity: 1024, impl, seed: 11 });
  d.addService({
    name: "web", address: "10.0.0.100", port: 80, protocol: "tcp", kind: "fullnat", scheduler: "rr",
    servers: [{ address: "10.0.1.1", port: 8080 }], localAddresses: ["10.0.2.50"], proxyProtocol: true, ...spec,
  });
  return { d, sim: new Simulator(d, 5000) };
}

const be32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const add = (a: number, n: number) => (a + n) >>> 0;

/** TCP options as [kind, value bytes] (NOPs as [1]). */
function options(b: Uint8Array, l4: number): number[][] {
  const out: number[][] = [];
  for (let p = l4 + 20; p < l4 + (b[l4 + 12] >> 4) * 4;) {
    if (b[p] === 0) break;
    if (b[p] === 1) { out.push([1]); p++; continue; }
    out.push([b[p], ...b.subarray(p + 2, p + b[p + 1])]);
    p += b[p + 1];
  }
  return out;
}

/** The TCP payload of a forwarded packet (its checksums verified). */
function payloadOf(r: SimResult): { l4: number; payload: Uint8Array } {
  const l4 = verify(r.bytes);
  return { l4, payload: r.bytes.subarray(l4 + (r.bytes[l4 + 12] >> 4) * 4, be16(r.bytes, 2)) };
}

for (const impl of IMPLS) {
  test(`${impl}: a local port freed by a connection's end goes to the back: the next connections get other ports; two seeds hand ports out in different orders`, async () => {
    const { d, sim } = await director(impl, { proxyProtocol: false });
    const syn = (sport: number) => buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport, dport: 80, protocol: "tcp", flags: { syn: true } });
    const portOf = (r: SimResult) => be16(r.bytes, verify(r.bytes));
    const first = portOf(sim.one(syn(41000)));
    sim.one(buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 41000, dport: 80, protocol: "tcp", flags: { rst: true } }));
    sim.advance(12_000); // CLOSE: 10 s, then the entry and its port are freed
    assert.equal(d.listConnections().length, 0, "the connection is gone");
    const next = Array.from({ length: 200 }, (_, k) => portOf(sim.one(syn(41001 + k))));
    assert.ok(!next.includes(first), `port ${first} is not handed out again before the others`);
    assert.equal(new Set(next).size, 200, "distinct ports");
    const other = await Director.create({ capacity: 1024, impl, seed: 11, localPortSeed: 12345 });
    other.addService({ name: "web", address: "10.0.0.100", port: 80, protocol: "tcp", kind: "fullnat", scheduler: "rr",
      servers: [{ address: "10.0.1.1", port: 8080 }], localAddresses: ["10.0.2.50"] });
    assert.notEqual(portOf(new Simulator(other, 5000).one(syn(41000))), first, "another seed, another first port");
  });

  test(`${impl}: PROXY v2 through FULLNAT: SACK-permitted dropped, MSS lowered by the header, the header before the first payload and again on its retransmission, sequence numbers shifted up and acknowledgements back (an ICMP error's quoted number too), checksums valid`, async () => {
    const { sim } = await director(impl);
    const client = (over: Partial<PacketSpec>): PacketSpec => ({
      src: "192.168.7.9", dst: "10.0.0.100", sport: 40001, dport: 80, protocol: "tcp", flags: { ack: true }, ...over,
    });
    // NOP, SACK-permitted (at an odd offset), NOP, MSS 1460.
    const syn = sim.one(buildPacket(client({ flags: { syn: true }, seq: ISN, options: Uint8Array.of(1, 4, 2, 1, 2, 4, 0x05, 0xb4) })));
    assert.equal(syn.verdict, "to_server");
    const l4 = verify(syn.bytes);
    assert.deepEqual(options(syn.bytes, l4), [[1], [1], [1], [1], [2, 0x05, 0xb4]], "SACK-permitted became two NOPs");
    const laddr = ip4(syn.bytes, 12), lport = be16(syn.bytes, l4);
    const server = (over: Partial<PacketSpec>): PacketSpec => ({
      src: "10.0.1.1", dst: laddr, sport: 8080, dport: lport, protocol: "tcp", flags: { ack: true }, seq: 5000, ...over,
    });
    const synAck = sim.one(buildPacket(server({ flags: { syn: true, ack: true }, ackNumber: FIRST, options: Uint8Array.of(2, 4, 0x05, 0xb4) })));
    const l4s = verify(synAck.bytes);
    assert.deepEqual(options(synAck.bytes, l4s), [[2, (1460 - 28) >> 8, (1460 - 28) & 0xff]], "the server's MSS less the header");
    assert.equal(be32(synAck.bytes, l4s + 8), FIRST, "nothing to shift before the header went");
    const handshake = sim.one(buildPacket(client({ seq: FIRST, ackNumber: 5001 })));
    assert.equal(payloadOf(handshake).payload.length, 0);
    assert.equal(be32(handshake.bytes, l4 + 4), FIRST, "the handshake's ACK keeps its number");

    const first = buildPacket(client({ flags: { ack: true, psh: true }, seq: FIRST, ackNumber: 5001, payload: 100 }));
    const sent: Uint8Array[] = [];
    for (const copy of [first, first]) {
      const out = sim.one(copy);
      assert.equal(out.verdict, "to_server");
      const { l4: l4o, payload } = payloadOf(out);
      assert.equal(be16(out.bytes, 2), 20 + 20 + 28 + 100, "IP length grew by the header");
      assert.equal(be32(out.bytes, l4o + 4), FIRST, "the header takes the first payload's number");
      const parsed = parseProxyHeader(payload);
      assert.equal(parsed.status, "ok");
      if (parsed.status !== "ok") return;
      assert.equal(parsed.length, 28);
      assert.deepEqual([parsed.header.version, parsed.header.command, parsed.header.transport], [2, "proxy", "tcp"]);
      assert.deepEqual(parsed.header.source, { address: "192.168.7.9", port: 40001 });
      assert.deepEqual(parsed.header.destination, { address: "10.0.0.100", port: 80 });
      assert.deepEqual(payload.subarray(28), first.subarray(40), "the client's bytes follow the header unchanged");
      sent.push(out.bytes);
    }
    assert.deepEqual(sent[1], sent[0], "a retransmission of the first segment gets the same header");

    const second = sim.one(buildPacket(client({ seq: add(FIRST, 100), ackNumber: 5001, payload: 50 })));
    assert.equal(be32(second.bytes, payloadOf(second).l4 + 4), add(FIRST, 128), "later segments are shifted by the header");
    // A router toward the server: "fragmentation needed" about that segment, quoting 8 bytes of
    // TCP, then all of it (its checksum checked too): the client reads its own sequence number.
    for (const quote of [28, second.bytes.length]) {
      const icmp = sim.one(buildIcmpError("10.0.1.254", laddr, 3, 4, second.bytes, quote));
      assert.deepEqual([icmp.verdict, icmp.reason], ["to_client", "forward_icmp_out"]);
      verify(icmp.bytes);
      assert.equal(ip4(icmp.bytes, 16), "192.168.7.9");
      assert.equal(be32(icmp.bytes, 28 + 20 + 4), add(FIRST, 100), `quoted ${quote} bytes: the client's own number`);
      if (quote === second.bytes.length) verify(icmp.bytes, 28);
    }
    const acks: [number, number][] = [[add(FIRST, 10), FIRST], [add(FIRST, 128), add(FIRST, 100)], [add(FIRST, 178), add(FIRST, 150)]];
    for (const [ack, seen] of acks) {
      const back = sim.one(buildPacket(server({ seq: 5001, ackNumber: ack, payload: 20 })));
      assert.equal(back.verdict, "to_client");
      const { l4: l4b } = payloadOf(back);
      assert.equal(be32(back.bytes, l4b + 8), seen, `the server's ack ${ack - FIRST} past the first byte is ${seen - FIRST} to the client`);
    }
  });

  test(`${impl}: PROXY v2 with TOA: a handshake ACK that carries data gets both, TOA in the options and the header before the payload; a connection closed without data gets no header and its FIN's ack passes unchanged`, async () => {
    const { sim } = await director(impl, { toa: true });
    const client = (over: Partial<PacketSpec>): PacketSpec => ({
      src: "192.168.7.9", dst: "10.0.0.100", sport: 40002, dport: 80, protocol: "tcp", flags: { ack: true }, ...over,
    });
    const syn = sim.one(buildPacket(client({ flags: { syn: true }, seq: ISN })));
    const l4 = verify(syn.bytes);
    const laddr = ip4(syn.bytes, 12), lport = be16(syn.bytes, l4);
    sim.one(buildPacket({ src: "10.0.1.1", dst: laddr, sport: 8080, dport: lport, protocol: "tcp", flags: { syn: true, ack: true }, seq: 7000, ackNumber: FIRST }));
    const out = sim.one(buildPacket(client({ seq: FIRST, ackNumber: 7001, payload: 30 })));
    const { l4: l4o, payload } = payloadOf(out);
    assert.deepEqual(options(out.bytes, l4o)[0], [254, 40002 >> 8, 40002 & 0xff, 192, 168, 7, 9], "TOA");
    assert.equal(be16(out.bytes, 2), 20 + 28 + 28 + 30);
    const parsed = parseProxyHeader(payload);
    assert.ok(parsed.status === "ok" && parsed.header.source?.port === 40002, "the header follows the options");

    const syn2 = sim.one(buildPacket(client({ sport: 40003, flags: { syn: true }, seq: ISN })));
    const l4b = verify(syn2.bytes), lport2 = be16(syn2.bytes, l4b);
    const server = (over: Partial<PacketSpec>): PacketSpec => ({
      src: "10.0.1.1", dst: laddr, sport: 8080, dport: lport2, protocol: "tcp", seq: 7000, ...over,
    });
    sim.one(buildPacket(server({ flags: { syn: true, ack: true }, ackNumber: FIRST })));
    const fin = sim.one(buildPacket(client({ sport: 40003, flags: { fin: true, ack: true }, seq: FIRST, ackNumber: 7001 })));
    assert.equal(payloadOf(fin).payload.length, 0, "no header without a payload");
    assert.equal(be32(fin.bytes, l4b + 4), FIRST);
    const finAck = sim.one(buildPacket(server({ flags: { fin: true, ack: true }, seq: 7001, ackNumber: add(FIRST, 1) })));
    assert.equal(be32(finAck.bytes, verify(finAck.bytes) + 8), add(FIRST, 1), "the FIN's ack is the client's own");
  });

  test(`${impl}: PROXY v2 over IPv6 writes a 52-byte header; a first segment the header would push past the MTU is refused and counted too_big`, async () => {
    const { d, sim } = await director(impl, {
      address: "2001:db8::100", localAddresses: ["2001:db8:2::50"], servers: [{ address: "2001:db8:1::1", port: 8080 }], mtu: 1280,
    });
    const client = (over: Partial<PacketSpec>): PacketSpec => ({
      src: "2001:db8:9::9", dst: "2001:db8::100", sport: 40001, dport: 80, protocol: "tcp", flags: { ack: true }, ...over,
    });
    sim.one(buildPacket(client({ flags: { syn: true }, seq: ISN })));
    const out = sim.one(buildPacket(client({ seq: FIRST, payload: 64 })));
    assert.equal(out.verdict, "to_server");
    verify(out.bytes);
    assert.equal(be16(out.bytes, 4), 20 + 52 + 64, "payload length grew by the header");
    const parsed = parseProxyHeader(out.bytes.subarray(60));
    assert.ok(parsed.status === "ok" && parsed.length === 52, JSON.stringify(parsed));
    if (parsed.status === "ok") assert.deepEqual(parsed.header.source, { address: "2001:db8:9::9", port: 40001 });

    sim.one(buildPacket(client({ sport: 40002, flags: { syn: true }, seq: ISN })));
    const big = sim.one(buildPacket(client({ sport: 40002, seq: FIRST, payload: 1280 - 60 - 20 })));
    assert.deepEqual([big.verdict, big.reason], ["drop", "too_big"]);
    assert.equal(d.counters().too_big, 1);
  });
}
