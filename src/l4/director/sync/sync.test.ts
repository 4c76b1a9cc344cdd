// Connection sync between two simulated directors (no devices): connections made on one are
// exported, carried in datagrams, applied on the other, and the flow's next packets are forwarded
// there byte for byte as the first would have; on both kernels (WASM and the TS twin).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director, type RealServerSpec, type VirtualServerSpec } from "../director.ts";
import { Simulator, buildPacket, type PacketSpec } from "../simulator.ts";
import { SyncTable } from "./table.ts";
import { decodeDatagram, encodeDatagram, RECORDS_PER_DATAGRAM } from "./wire.ts";
import { REC_SIZE, REC_STATE, REC_PROTO, REC_CADDR, REC_DADDR } from "../../../../wasm/assembly/sync-layout.ts";
import * as L from "../../../core/layout.ts";

const IMPLS = ["wasm", "ts"] as const;
const SERVERS: RealServerSpec[] = [
  { address: "10.0.1.1", port: 8080 }, { address: "10.0.1.2", port: 8080 }, { address: "10.0.1.3", port: 8080 },
];
const VIP = "10.0.0.100";
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

async function node(impl: "wasm" | "ts", servers: RealServerSpec[], spec: Partial<VirtualServerSpec> = {}, capacity = 1024) {
  const d = await Director.create({ capacity, impl, seed: 7 });
  d.addService({ name: "web", address: VIP, port: 80, protocol: "tcp", kind: "nat", scheduler: "rr", servers, ...spec });
  return { d, sim: new Simulator(d, 5000), table: new SyncTable(d) };
}

const fromClient = (sport: number, flags: PacketSpec["flags"], payload = 0): Uint8Array =>
  buildPacket({ src: "192.168.7.9", dst: VIP, sport, dport: 80, protocol: "tcp", flags, payload, seq: 5000 + payload });
const fromServer = (server: string, sport: number, flags: PacketSpec["flags"], payload = 0): Uint8Array =>
  buildPacket({ src: server, dst: "192.168.7.9", sport: 8080, dport: sport, protocol: "tcp", flags, payload });

/** A connection's handshake through `sim`; returns the server it went to. */
function handshake(sim: Simulator, sport: number): string {
  const syn = sim.one(fromClient(sport, { syn: true }));
  assert.equal(syn.verdict, "to_server");
  const server = Array.from(syn.bytes.subarray(16, 20)).join(".");
  assert.equal(sim.one(fromServer(server, sport, { syn: true, ack: true })).verdict, "to_client");
  assert.equal(sim.one(fromClient(sport, { ack: true })).verdict, "to_server");
  return server;
}

/** Everything `from` has for its peer, as datagrams. */
function datagrams(from: SyncTable, refreshMs = 10_000): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < 1000; k++) {
    const e = from.exportRecords(RECORDS_PER_DATAGRAM, 1 << 20, refreshMs);
    if (e.count > 0) out.push(encodeDatagram(51, e.records, e.count));
    if (e.wrapped) break;
  }
  return out;
}

function apply(to: SyncTable, grams: Uint8Array[]): number {
  let applied = 0;
  for (const g of grams) {
    const d = decodeDatagram(g, 51);
    assert.ok(d.ok, "a datagram the exporter made decodes");
    applied += to.importRecords(d.records, d.count);
  }
  return applied;
}

for (const impl of IMPLS) {
  test(`${impl}: established NAT connections made on the master are applied on the backup (other slot order), and their next packets are forwarded there byte for byte as on the master`, async () => {
    const a = await node(impl, SERVERS);
    // The backup lists the pool in another order: its slots (and dests) differ from the master's.
    const b = await node(impl, [...SERVERS].reverse());
    const servers = [41001, 41002, 41003, 41004].map((p) => handshake(a.sim, p));
    assert.equal(new Set(servers).size, 3, `rr spread them: ${servers.join(", ")}`);
    const grams = datagrams(a.table);
    assert.equal(grams.length, 1);
    assert.equal(apply(b.table, grams), 4);
    assert.equal(b.table.counts().imported, 4);
    b.sim.clockMs = a.sim.clockMs;
    const rowsA = a.d.listConnections().map((r) => [r.client, r.server, r.state]).sort();
    const rowsB = b.d.listConnections().map((r) => [r.client, r.server, r.state]).sort();
    assert.deepEqual(rowsB, rowsA, "the backup's table holds the master's connections");
    for (const [k, sport] of [41001, 41002, 41003, 41004].entries()) {
      const next = fromClient(sport, { ack: true, psh: true }, 100);
      const onA = a.sim.one(next), onB = b.sim.one(next);
      assert.equal(onB.verdict, "to_server", `port ${sport}: ${onB.reason}`);
      assert.equal(hex(onB.bytes), hex(onA.bytes), `port ${sport}: the backup rewrites as the master does`);
      const reply = fromServer(servers[k], sport, { ack: true }, 1200);
      const backA = a.sim.one(reply), backB = b.sim.one(reply);
      assert.equal(backB.verdict, "to_client", `reply to ${sport}: ${backB.reason}`);
      assert.equal(hex(backB.bytes), hex(backA.bytes));
    }
    // Active counts follow (ESTABLISHED): one server has two, the others one, on both nodes.
    const active = (d: Director) => d.listServices()[0].servers.map((s) => [s.address, s.active]).sort();
    assert.deepEqual(active(b.d), active(a.d));
    assert.equal(b.d.counters().not_syn, 0);
  });

  test(`${impl}: only changes are sent: nothing again until a state changes or the expiry moved by the refresh period`, async () => {
    const a = await node(impl, SERVERS);
    const b = await node(impl, SERVERS);
    handshake(a.sim, 42001);
    assert.equal(apply(b.table, datagrams(a.table, 10_000)), 1);
    assert.deepEqual(datagrams(a.table, 10_000), [], "an unchanged connection is not sent again");
    // Packets 4 s apart: the expiry moves 4 s each time; the third crosses 10 s.
    for (let k = 0; k < 2; k++) {
      a.sim.advance(4000);
      a.sim.one(fromClient(42001, { ack: true }, 10));
      assert.deepEqual(datagrams(a.table, 10_000), [], `after ${(k + 1) * 4} s: not yet`);
    }
    a.sim.advance(4000);
    a.sim.one(fromClient(42001, { ack: true }, 10));
    assert.equal(datagrams(a.table, 10_000).length, 1, "12 s later: the refresh");
    // The client closes: FIN is a state change, sent at once.
    a.sim.one(fromClient(42001, { fin: true, ack: true }));
    const grams = datagrams(a.table, 10_000);
    assert.equal(grams.length, 1);
    const d = decodeDatagram(grams[0], 51);
    assert.ok(d.ok);
    assert.equal(d.records[REC_STATE], 7, "CLOSE_WAIT");
    b.sim.clockMs = a.sim.clockMs;
    b.d.tick(a.sim.clockMs);
    assert.equal(apply(b.table, grams), 1);
    assert.equal(b.table.counts().updated, 1);
    assert.deepEqual(b.d.listConnections().map((r) => r.state), ["CLOSE_WAIT"]);
    // The backup's copy expires as the master's would: CLOSE_WAIT's 60 s.
    b.sim.advance(62_000);
    assert.equal(b.d.listConnections().length, 0);
  });

  test(`${impl}: a daemon that takes the director over (a reload) keeps what was sent and the counts: nothing is sent twice`, async () => {
    const a = await node(impl, SERVERS);
    handshake(a.sim, 49001);
    assert.equal(datagrams(a.table).length, 1);
    const again = new SyncTable(a.d);
    assert.deepEqual(datagrams(again), []);
    assert.equal(again.counts().exported, 1);
  });

  test(`${impl}: the walk looks at no more entries than asked, and goes on from where it stopped`, async () => {
    const a = await node(impl, SERVERS);
    for (let p = 48001; p < 48011; p++) handshake(a.sim, p);
    const first = a.table.exportRecords(RECORDS_PER_DATAGRAM, 4, 10_000);
    assert.deepEqual([first.count, first.steps, first.wrapped], [4, 4, false]);
    const rest = a.table.exportRecords(RECORDS_PER_DATAGRAM, 100, 10_000);
    assert.deepEqual([rest.count, rest.steps, rest.wrapped], [6, 6, true]);
    assert.equal(a.table.exportRecords(RECORDS_PER_DATAGRAM, 100, 10_000).count, 0);
  });

  test(`${impl}: a record for a VIP this node does not serve, or a server not in its pool, is refused and counted; the rest apply`, async () => {
    const a = await node(impl, SERVERS);
    const b = await node(impl, SERVERS.slice(0, 2));
    const servers = [43001, 43002, 43003].map((p) => handshake(a.sim, p));
    const c = await node(impl, SERVERS, { port: 8443 });
    const grams = datagrams(a.table);
    assert.equal(apply(b.table, grams), 2);
    assert.equal(b.table.counts().rejected.no_server, 1, `${servers.join(", ")}: 10.0.1.3 is not in b's pool`);
    assert.equal(apply(c.table, grams), 0);
    assert.equal(c.table.counts().rejected.no_service, 3);
  });

  test(`${impl}: fullnat entries carry their local address and port; the backup takes that port out of its own free ports`, async () => {
    const spec: Partial<VirtualServerSpec> = { kind: "fullnat", localAddresses: ["10.0.2.50"] };
    const a = await node(impl, SERVERS, spec);
    const b = await node(impl, SERVERS, spec);
    const syn = a.sim.one(fromClient(44001, { syn: true }));
    assert.equal(syn.verdict, "to_server");
    const lport = (syn.bytes[20] << 8) | syn.bytes[21];
    const server = Array.from(syn.bytes.subarray(16, 20)).join(".");
    a.sim.one(buildPacket({ src: server, dst: "10.0.2.50", sport: 8080, dport: lport, protocol: "tcp", flags: { syn: true, ack: true } }));
    a.sim.one(fromClient(44001, { ack: true }));
    assert.equal(apply(b.table, datagrams(a.table)), 1);
    const next = fromClient(44001, { ack: true }, 50);
    assert.equal(hex(b.sim.one(next).bytes), hex(a.sim.one(next).bytes));
    const reply = buildPacket({ src: server, dst: "10.0.2.50", sport: 8080, dport: lport, protocol: "tcp", flags: { ack: true }, payload: 30 });
    const back = b.sim.one(reply);
    assert.equal(back.verdict, "to_client");
    assert.equal(hex(back.bytes), hex(a.sim.one(reply).bytes));
    // b's new connections never get the synced local port.
    for (let p = 45000; p < 45200; p++) {
      const out = b.sim.one(fromClient(p, { syn: true }));
      assert.notEqual((out.bytes[20] << 8) | out.bytes[21], lport, `connection from ${p}`);
    }
  });

  test(`${impl}: the import takes synced local ports out of a ring whose head has moved (ports handed out and returned before), and leaves every other port free once`, async () => {
    const spec: Partial<VirtualServerSpec> = { kind: "fullnat", localAddresses: ["10.0.2.50"] };
    const a = await node(impl, SERVERS, spec);
    const b = await node(impl, SERVERS, spec);
    // b hands out three ports and gets them back (reset, then CLOSE's 10 s): its ring's head is
    // past them and they sit at its tail.
    for (const p of [43001, 43002, 43003]) b.sim.one(fromClient(p, { syn: true }));
    for (const p of [43001, 43002, 43003]) b.sim.one(fromClient(p, { rst: true }));
    b.sim.advance(12_000);
    const synced: number[] = [];
    for (const p of [44001, 44002, 44003, 44004]) {
      const syn = a.sim.one(fromClient(p, { syn: true }));
      synced.push((syn.bytes[20] << 8) | syn.bytes[21]);
    }
    assert.equal(apply(b.table, datagrams(a.table)), 4);
    // b's free ports: the ring from its head, L_TOP of them.
    const view = new DataView(b.d.plane.memory);
    const top = view.getUint32(L.DIR_LADDR_OFF + L.L_TOP, true), head = view.getUint32(L.DIR_LADDR_OFF + L.L_HEAD, true);
    const free: number[] = [];
    for (let k = 0; k < top; k++) free.push(view.getUint16(L.DIR_PORTS_OFF + ((head + k) % L.LPORTS) * 2, false));
    assert.equal(top, L.LPORTS - 4, "four ports taken");
    assert.equal(new Set(free).size, free.length, "no free port twice");
    for (const p of synced) assert.ok(!free.includes(p), `synced port ${p} is not free on b`);
  });

  test(`${impl}: malformed records are refused and counted, never applied`, async () => {
    const a = await node(impl, SERVERS);
    const b = await node(impl, SERVERS);
    handshake(a.sim, 46001);
    const good = a.table.exportRecords(1, 1 << 20, 10_000);
    assert.equal(good.count, 1);
    const bad = (edit: (r: Uint8Array) => void) => { const r = good.records.slice(); edit(r); return r; };
    const records = [
      bad((r) => { r[REC_PROTO] = 1; }),
      bad((r) => { r[REC_STATE] = 0; }),
      bad((r) => { r[REC_STATE] = 200; }),
      bad((r) => { r[REC_CADDR + 5] = 1; }), // an IPv4 address with bytes past its 4
      bad((r) => { r[2] = 0x80; }), // an unknown flag
    ];
    for (const r of records) assert.equal(b.table.importRecords(r, 1), 0);
    assert.equal(b.table.counts().rejected.malformed, records.length);
    assert.equal(b.d.listConnections().length, 0);
    const wrongServer = bad((r) => { r[REC_DADDR + 3] = 99; });
    assert.equal(b.table.importRecords(wrongServer, 1), 0);
    assert.equal(b.table.counts().rejected.no_server, 1);
    assert.equal(b.table.importRecords(good.records, 1), 1);
  });

  test(`${impl}: 200,000 random records into a 256-entry table: no trap, the table stays within its capacity, each record applied or refused and counted`, async () => {
    const b = await node(impl, SERVERS, {}, 256);
    let x = 0x1234567;
    const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
    const n = impl === "wasm" ? 200_000 : 20_000;
    const per = b.table.maxRecords;
    const buf = new Uint8Array(per * REC_SIZE);
    let applied = 0;
    for (let done = 0; done < n; done += per) {
      for (let i = 0; i < buf.length; i += 4) {
        const v = rnd();
        buf[i] = v; buf[i + 1] = v >>> 8; buf[i + 2] = v >>> 16; buf[i + 3] = v >>> 24;
      }
      // Half of them plausible: TCP ESTABLISHED from a random client to a real server of the VIP.
      for (let k = 0; k < per; k += 2) {
        const r = k * REC_SIZE;
        buf.set([6, 1, 0, 0], r);
        buf.fill(0, r + 12, r + 72);
        buf.set([10, 0, 0, 100], r + 24);
        buf.set(buf.subarray(r + 8, r + 12), r + 40);
        buf.set([10, 0, 1, 1 + (k % 3)], r + 56);
        buf.set([buf[r + 72], buf[r + 73] | 1, 0, 80, buf[r + 72], buf[r + 73] | 1, 0x1f, 0x90], r + 72);
      }
      applied += b.table.importRecords(buf, per);
    }
    const c = b.table.counts();
    const refused = Object.values(c.rejected).reduce((s, v) => s + v, 0);
    const total = Math.ceil(n / per) * per;
    assert.equal(c.imported + c.updated + refused, total, JSON.stringify(c));
    assert.equal(applied, c.imported + c.updated);
    assert.ok(c.imported > 1000, `plausible records applied: ${c.imported}`);
    assert.ok(b.d.counters().in_use <= 256);
    const active = b.d.listServices()[0].servers.reduce((s, r) => s + r.active + r.inactive, 0);
    assert.equal(active, b.d.counters().in_use, "the servers' counts match the entries in use");
  });
}

test("sync datagrams: a foreign sync id, another version, a bad length or a flipped bit is refused by name", () => {
  const records = new Uint8Array(2 * REC_SIZE).fill(7);
  const good = encodeDatagram(51, records, 2);
  assert.ok(decodeDatagram(good, 51).ok);
  const reason = (b: Uint8Array, id = 51) => { const d = decodeDatagram(b, id); return d.ok ? "ok" : d.reason; };
  assert.equal(reason(good, 52), "sync_id");
  assert.equal(reason(good.subarray(0, 11)), "short");
  assert.equal(reason(good.subarray(0, good.length - 1)), "length");
  const v = good.slice(); v[0] = 2;
  assert.equal(reason(v), "version");
  const t = good.slice(); t[1] = 9;
  assert.equal(reason(t), "type");
  for (const at of [4, 20, good.length - 1]) {
    const f = good.slice(); f[at] ^= 1;
    assert.notEqual(reason(f), "ok", `bit flipped at ${at}`);
  }
  assert.equal(reason(encodeDatagram(51, records, 0)), "length");
});

test("wasm and twin alike: the same connections export the same records, and the same random records leave the same table and counts", async () => {
  const w = await node("wasm", SERVERS, {}, 128), t = await node("ts", SERVERS, {}, 128);
  for (const p of [47001, 47002, 47003]) { handshake(w.sim, p); handshake(t.sim, p); }
  const ew = w.table.exportRecords(RECORDS_PER_DATAGRAM, 1 << 20, 10_000), et = t.table.exportRecords(RECORDS_PER_DATAGRAM, 1 << 20, 10_000);
  assert.equal(ew.count, 3);
  assert.equal(hex(ew.records), hex(et.records));
  let x = 99;
  const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x >>> 0; };
  for (let round = 0; round < 40; round++) {
    const buf = new Uint8Array(16 * REC_SIZE);
    for (let k = 0; k < 16; k++) {
      const r = k * REC_SIZE;
      buf.set([6, 1 + (rnd() % 9), rnd() % 3 === 0 ? 4 : 0, 0, 0, 0, rnd() & 0xff, 0], r);
      buf.set([192, 168, rnd() & 3, 9], r + 8);
      buf.set([10, 0, 0, 100], r + 24);
      buf.set(buf.subarray(r + 8, r + 12), r + 40);
      buf.set([10, 0, 1, 1 + (rnd() % 4)], r + 56);
      const cport = [0x9c, rnd() & 0xff];
      buf.set([...cport, 0, rnd() % 5 === 0 ? 81 : 80, ...cport, 0x1f, 0x90], r + 72);
    }
    assert.equal(w.table.importRecords(buf, 16), t.table.importRecords(buf, 16), `round ${round}`);
  }
  assert.deepEqual(w.table.counts(), t.table.counts());
  const c = w.table.counts();
  assert.ok(c.imported > 50 && c.updated > 0 && c.rejected.malformed > 0 && c.rejected.no_service > 0 && c.rejected.no_server > 0, JSON.stringify(c));
  const rows = (d: Director) => d.listConnections().map((r) => `${r.entry} ${r.client} ${r.server} ${r.state} ${r.expiresIn}`);
  assert.deepEqual(rows(w.d), rows(t.d));
});
