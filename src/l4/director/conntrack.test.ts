// The connection table on a simulated clock, on both kernels: IPVS's TCP states through a
// handshake and teardown with active/inactive counts, expiry by the timer wheel at the configured
// timeouts, eviction of the least recently used entry when full, persistence templates, port reuse
// and expire_on_down.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director, type VirtualServerSpec } from "./director.ts";
import { Simulator, buildPacket, type PacketSpec } from "./simulator.ts";
import * as L from "../../core/layout.ts";

const IMPLS = ["wasm", "ts"] as const;

async function setup(impl: "wasm" | "ts", spec: Partial<VirtualServerSpec> = {}, capacity = 1024, timeouts = {}) {
  const d = await Director.create({ capacity, impl, seed: 3, timeouts });
  d.addService({
    name: "web", address: "10.0.0.100", port: 80, protocol: "tcp", kind: "nat", scheduler: "rr",
    servers: [{ address: "10.0.1.1", port: 8080 }, { address: "10.0.1.2", port: 8080 }], ...spec,
  });
  return { d, sim: new Simulator(d, 10_000) };
}

const fromClient = (sport: number, flags: PacketSpec["flags"], src = "192.168.7.9"): Uint8Array =>
  buildPacket({ src, dst: "10.0.0.100", sport, dport: 80, protocol: "tcp", flags });
const fromServer = (server: string, sport: number, flags: PacketSpec["flags"], dst = "192.168.7.9"): Uint8Array =>
  buildPacket({ src: server, dst, sport: 8080, dport: sport, protocol: "tcp", flags });

const stateOf = (d: Director, sport: number) =>
  d.listConnections().find((c) => c.client.endsWith(`:${sport}`) && !c.template)?.state ?? "gone";
const serverOf = (d: Director, sport: number, src = "192.168.7.9") =>
  d.listConnections().find((c) => c.client === `${src}:${sport}`)?.server;

for (const impl of IMPLS) {
  test(`${impl}: a NAT handshake and teardown walk IPVS's states, counting the server active only while ESTABLISHED`, async () => {
    const { d, sim } = await setup(impl);
    const trail: string[] = [];
    const active = () => d.listServices()[0].servers[0];
    sim.one(fromClient(40000, { syn: true })); trail.push(stateOf(d, 40000));
    sim.one(fromServer("10.0.1.1", 40000, { syn: true, ack: true })); trail.push(stateOf(d, 40000));
    assert.deepEqual([active().active, active().inactive], [0, 1]);
    sim.one(fromClient(40000, { ack: true })); trail.push(stateOf(d, 40000));
    assert.deepEqual([active().active, active().inactive], [1, 0]);
    assert.equal(d.plane.active[firstSlot(d)], 1, "S_ACTIVE of the server's slot");
    sim.one(fromClient(40000, { fin: true, ack: true })); trail.push(stateOf(d, 40000));
    sim.one(fromServer("10.0.1.1", 40000, { fin: true, ack: true })); trail.push(stateOf(d, 40000));
    sim.one(fromClient(40000, { ack: true })); trail.push(stateOf(d, 40000));
    assert.deepEqual(trail, ["SYN_RECV", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT"]);
    assert.deepEqual([active().active, active().inactive], [0, 1]);
    assert.equal(d.plane.active[firstSlot(d)], 0);
    // TIME_WAIT lasts 120 s: still there at 119 s, gone by 122 s (one wheel slot of slack).
    sim.advance(119_000);
    assert.equal(stateOf(d, 40000), "TIME_WAIT");
    sim.advance(3_000);
    assert.equal(stateOf(d, 40000), "gone");
    assert.deepEqual([active().active, active().inactive], [0, 0]);
    assert.equal(d.counters().expired, 1);
    assert.equal(d.counters().in_use, 0);
  });

  test(`${impl}: the server closing first goes FIN_WAIT then TIME_WAIT; RST closes`, async () => {
    const { d, sim } = await setup(impl);
    sim.one(fromClient(41000, { syn: true }));
    sim.one(fromClient(41000, { ack: true }));
    sim.one(fromServer("10.0.1.1", 41000, { fin: true, ack: true }));
    const fw = stateOf(d, 41000);
    sim.one(fromClient(41000, { fin: true, ack: true }));
    assert.deepEqual([fw, stateOf(d, 41000)], ["FIN_WAIT", "TIME_WAIT"]);
    sim.one(fromClient(41001, { syn: true }));
    sim.one(fromClient(41001, { rst: true }));
    assert.equal(stateOf(d, 41001), "CLOSE");
  });

  test(`${impl}: DR sees only the client's side: SYN_RECV, ESTABLISHED, FIN_WAIT, TIME_WAIT`, async () => {
    const { d, sim } = await setup(impl, { kind: "dr" });
    const frame = (flags: PacketSpec["flags"]) => ({ bytes: buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 42000, dport: 80, protocol: "tcp", flags, l2: { src: "02:00:00:00:00:01", dst: "02:00:00:00:00:02" } }), l2: true });
    const trail = [{ syn: true }, { ack: true }, { fin: true, ack: true }, { ack: true }].map((f) => {
      sim.send([frame(f)]);
      return stateOf(d, 42000);
    });
    assert.deepEqual(trail, ["SYN_RECV", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT"]);
  });

  test(`${impl}: timeouts are configurable; ESTABLISHED and UDP expire on the wheel, refreshed by traffic`, async () => {
    const { d, sim } = await setup(impl, {}, 1024, { ESTABLISHED: 30 });
    sim.one(fromClient(43000, { syn: true }));
    sim.one(fromClient(43000, { ack: true }));
    sim.advance(20_000);
    sim.one(fromClient(43000, { ack: true, psh: true })); // refreshed: 30 s from here
    sim.advance(20_000);
    assert.equal(stateOf(d, 43000), "ESTABLISHED", "refreshed 20 s ago");
    sim.advance(12_000);
    assert.equal(stateOf(d, 43000), "gone");
    assert.ok(d.counters().refiled >= 1, "the refreshed entry was refiled, not rescanned");
    const { d: du, sim: su } = await setup(impl, { protocol: "udp" });
    su.one(buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 5000, dport: 80, protocol: "udp" }));
    su.advance(299_000);
    assert.equal(du.listConnections().length, 1);
    su.advance(3_000);
    assert.equal(du.listConnections().length, 0, "UDP 300 s");
  });

  test(`${impl}: a full table evicts the least recently used connection`, async () => {
    const { d, sim } = await setup(impl, { protocol: "udp" }, 8);
    const udp = (sport: number) => buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport, dport: 80, protocol: "udp" });
    for (let k = 0; k < 8; k++) { sim.one(udp(6000 + k)); sim.advance(2_000); }
    sim.one(udp(6000)); // 6000 used again: 6001 is now the least recently used
    sim.advance(2_000);
    const r = sim.one(udp(6100));
    assert.equal(r.verdict, "to_server");
    const ports = d.listConnections().map((c) => Number(c.client.split(":")[1])).sort((a, b) => a - b);
    assert.deepEqual(ports, [6000, 6002, 6003, 6004, 6005, 6006, 6007, 6100]);
    assert.equal(d.counters().evicted, 1);
    assert.equal(d.counters().in_use, 8);
  });

  test(`${impl}: persistence sends a client's new connections to its server until the template expires`, async () => {
    const { d, sim } = await setup(impl, { persistenceSeconds: 60 });
    sim.one(fromClient(44000, { syn: true }));
    const first = serverOf(d, 44000);
    for (let p = 44001; p < 44006; p++) sim.one(fromClient(p, { syn: true }));
    assert.ok([44001, 44002, 44003, 44004, 44005].every((p) => serverOf(d, p) === first), "rr would alternate; the template holds");
    const other = "192.168.7.10";
    sim.one(fromClient(44000, { syn: true }, other));
    const tmpl = d.listConnections().filter((c) => c.template);
    assert.equal(tmpl.length, 2);
    assert.equal(tmpl.find((t) => t.client === "192.168.7.9:0")?.server, first);
    // Connections gone and the persistence timeout passed: the template goes too.
    d.flush();
    assert.equal(d.listConnections().length, 0);
    sim.one(fromClient(45000, { syn: true }));
    sim.one(fromClient(45000, { rst: true })); // CLOSE: 10 s
    sim.advance(12_000);
    assert.equal(d.listConnections().filter((c) => !c.template).length, 0);
    assert.equal(d.listConnections().filter((c) => c.template).length, 1, "held 60 s after its last new connection");
    sim.advance(50_000);
    assert.equal(d.listConnections().length, 0);
  });

  test(`${impl}: wlc schedules on the active counts the table keeps`, async () => {
    const { d, sim } = await setup(impl, { scheduler: "wlc", servers: [{ address: "10.0.1.1", port: 8080 }, { address: "10.0.1.2", port: 8080 }, { address: "10.0.1.3", port: 8080 }] });
    // Establish two connections on whichever server; the third new one must go to an idle server.
    const established: string[] = [];
    for (let p = 46000; p < 46003; p++) {
      sim.one(fromClient(p, { syn: true }));
      sim.one(fromClient(p, { ack: true }));
      established.push(serverOf(d, p)!);
    }
    assert.equal(new Set(established).size, 3, "each new connection to the least active server");
    const rows = d.listServices()[0].servers;
    assert.deepEqual(rows.map((s) => s.active), [1, 1, 1]);
    assert.deepEqual([0, 1, 2].map((k) => d.plane.active[firstSlot(d) + k]), [1, 1, 1], "S_ACTIVE, where wlc reads it");
    const listing = d.formatServices().split("\n");
    assert.equal(listing[2], "TCP  10.0.0.100:80 wlc");
    assert.match(listing[3], /^  -> 10\.0\.1\.1:8080\s+Masq\s+1\s+1\s+0$/);
    assert.match(d.formatConnections(), /TCP 15:00  ESTABLISHED 192\.168\.7\.9:46000 +10\.0\.0\.100:80 +10\.0\.1\.\d:8080/);
  });

  test(`${impl}: a server taken out keeps its established connections (LVS's default) while new ones go elsewhere`, async () => {
    const { d, sim } = await setup(impl);
    sim.one(fromClient(48000, { syn: true }));
    sim.one(fromClient(48000, { ack: true }));
    const [addr] = serverOf(d, 48000)!.split(":");
    d.setServerState("web", addr, 8080, "down");
    const still = sim.one(fromClient(48000, { ack: true, psh: true }));
    assert.equal(still.verdict, "to_server");
    assert.equal(stateOf(d, 48000), "ESTABLISHED");
    for (let p = 48001; p < 48005; p++) {
      sim.one(fromClient(p, { syn: true }));
      assert.notEqual(serverOf(d, p)!.split(":")[0], addr);
    }
  });

  test(`${impl}: fullnat local ports run out per local address, are counted, and come back when connections end`, async () => {
    const { d, sim } = await setup(impl, { kind: "fullnat", localAddresses: ["10.0.2.50"] });
    // Leave two free ports in the address's ring (the first two of its shuffled 64,511).
    new DataView(d.plane.memory).setUint32(L.DIR_LADDR_OFF + L.L_TOP, 2, true);
    const r = [49000, 49001, 49002].map((p) => sim.one(fromClient(p, { syn: true })));
    assert.deepEqual(r.map((x) => x.reason), ["forward_in", "forward_in", "no_local_port"]);
    const ports = d.listConnections().map((c) => c.local);
    assert.equal(new Set(ports).size, 2, "distinct local ports");
    sim.one(fromClient(49000, { rst: true }));
    sim.advance(12_000); // CLOSE: 10 s
    assert.equal(sim.one(fromClient(49002, { syn: true })).reason, "forward_in");
    assert.equal(d.counters().no_local_port, 1);
  });

  test(`${impl}: a SYN on a TIME_WAIT tuple starts a new connection; a server down with reset drops its connections`, async () => {
    const { d, sim } = await setup(impl);
    sim.one(fromClient(47000, { syn: true }));
    sim.one(fromClient(47000, { rst: true }));
    const before = d.counters().created;
    const again = sim.one(fromClient(47000, { syn: true }));
    assert.equal(again.verdict, "to_server");
    assert.equal(d.counters().created, before + 1);
    assert.equal(stateOf(d, 47000), "SYN_RECV");
    const server = serverOf(d, 47000)!;
    const [addr] = server.split(":");
    d.setServerState("web", addr, 8080, "down", true);
    const dropped = sim.one(fromClient(47000, { ack: true }));
    assert.deepEqual([dropped.verdict, dropped.reason], ["drop", "dest_down"]);
    assert.equal(stateOf(d, 47000), "gone");
    const next = sim.one(fromClient(47001, { syn: true }));
    assert.equal(next.verdict, "to_server");
    assert.notEqual(serverOf(d, 47001), server, "new connections avoid the server that is down");
  });
}

// The server-table slot of the service's first real server (its pool is the plane's only one).
test("a capacity the 4 GiB memory cannot hold is refused with the limit", async () => {
  await assert.rejects(Director.create({ capacity: 100_000_000 }), /capacity 100000000 is not a number of connections from 1 to 3\d{7}/);
  await assert.rejects(Director.create({ capacity: 0 }), /capacity 0/);
});

function firstSlot(d: Director): number {
  for (let s = 0; s < 4096; s++) if (d.plane.poolOf(s) >= 0) return s;
  return -1;
}
