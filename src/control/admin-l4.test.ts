// GET /api/l4's virtual servers as ipvsadm -Ln shapes them: from the config and its pool when no
// director runs, and with a real Director's counts (a TCP handshake through its simulator) when
// one is given.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director } from "../l4/director/director.ts";
import { buildPacket, Simulator } from "../l4/director/simulator.ts";
import { Generation } from "./generation.ts";
import { validateConfig } from "./schema.ts";
import { l4View } from "./admin-l4.ts";

async function generation(): Promise<Generation> {
  // Built, never started: nothing listens.
  const r = validateConfig({
    listeners: [{ name: "main", bind: "127.0.0.1:8080" }],
    routes: [{ pool: "web" }],
    pools: { web: { scheduler: "wrr", servers: [{ address: "10.0.1.1:8080", weight: 3 }, "10.0.1.2:8080"] } },
    virtual_servers: [{ name: "vip", address: "10.0.0.100:80", pool: "web", persistence_timeout: "5m" }],
  });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  return Generation.build(r.config);
}

test("admin-l4: a virtual server whose director has not started lists its pool's servers, Masq for nat, no connection counts", async () => {
  const g = await generation();
  try {
    const v = l4View(g);
    assert.deepEqual(v.listeners, []);
    assert.equal(v.counters, null);
    assert.deepEqual(v.director, { running: false, reason: "the director has not started" });
    const [vs] = v.virtual_servers;
    assert.deepEqual(
      [vs.protocol, vs.virtual, vs.scheduler, vs.forward, vs.persistent_seconds, vs.served, vs.connections],
      ["TCP", "10.0.0.100:80", "wrr", "Masq", 300, false, null],
    );
    assert.deepEqual(vs.real_servers, [
      { address: "10.0.1.1:8080", forward: "Masq", weight: 3, state: "UP", active: null, inactive: null },
      { address: "10.0.1.2:8080", forward: "Masq", weight: 1, state: "UP", active: null, inactive: null },
    ]);
  } finally {
    await g.stop();
  }
});

test("admin-l4: with a running director, a real server's active and inactive connections are its table's", async () => {
  const g = await generation();
  const d = await Director.create({ capacity: 1024, seed: 3 });
  try {
    d.addService({
      name: "vip", address: "10.0.0.100", port: 80, protocol: "tcp", kind: "nat", scheduler: "wrr",
      servers: [{ address: "10.0.1.1", port: 8080, weight: 3 }, { address: "10.0.1.2", port: 8080 }],
    });
    const sim = new Simulator(d, 10_000);
    const client = (flags: { syn?: boolean; ack?: boolean }) => buildPacket({ src: "192.168.7.9", dst: "10.0.0.100", sport: 40000, dport: 80, protocol: "tcp", flags });
    sim.one(client({ syn: true }));
    const picked = d.listConnections()[0].server;
    const count = () => l4View(g, d).virtual_servers[0].real_servers.map((r) => [r.address, r.active, r.inactive]);
    // SYN seen: inactive (IPVS counts a connection active once ESTABLISHED).
    const servers = ["10.0.1.1:8080", "10.0.1.2:8080"];
    assert.deepEqual(count(), servers.map((a) => [a, 0, a === picked ? 1 : 0]));
    sim.one(buildPacket({ src: picked.split(":")[0], dst: "192.168.7.9", sport: 8080, dport: 40000, protocol: "tcp", flags: { syn: true, ack: true } }));
    sim.one(client({ ack: true }));
    assert.deepEqual(count(), servers.map((a) => [a, a === picked ? 1 : 0, 0]));
    const vs = l4View(g, d).virtual_servers[0];
    assert.equal(vs.served, true);
    assert.equal(vs.connections, 1);
    assert.deepEqual(l4View(g, d).director, { running: true, counters: null, ports: null, text: null });
  } finally {
    await g.stop();
  }
});
