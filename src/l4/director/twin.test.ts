// The WASM director and its TS twin agree packet for packet on the same seeded streams: verdict,
// reason, connection entry and every output byte, then counters, connections and services. A
// small table makes the streams evict; the clock moves so entries expire.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director } from "./director.ts";
import { Simulator, type SimResult } from "./simulator.ts";
import { MIXED_SERVICES, Traffic } from "./traffic.ts";

async function pair(capacity: number) {
  const make = async (impl: "wasm" | "ts") => {
    const d = await Director.create({ capacity, impl, seed: 99, timeouts: { ESTABLISHED: 20, UDP: 15 } });
    for (const vs of MIXED_SERVICES) d.addService(vs);
    return { d, sim: new Simulator(d, 1_000) };
  };
  return { wasm: await make("wasm"), ts: await make("ts") };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// 40,000 entries: above the size where the WASM batch loads buckets and entries early.
for (const [seed, capacity] of [[1, 4096], [2, 64], [3, 300], [4, 40_000]] as const) {
  test(`WASM and TS twin agree on 40 batches of 128 mixed packets (seed ${seed}, ${capacity} entries)`, async () => {
    const { wasm, ts } = await pair(capacity);
    const traffic = new Traffic(seed);
    let last: SimResult[] = [];
    let forwarded = 0;
    for (let b = 0; b < 40; b++) {
      const packets = traffic.batch(128, last);
      const a = wasm.sim.send(packets), t = ts.sim.send(packets);
      for (let k = 0; k < packets.length; k++) {
        const where = `batch ${b} packet ${k} (${hex(packets[k].bytes.subarray(0, 48))})`;
        assert.equal(t[k].reason, a[k].reason, where);
        assert.equal(t[k].verdict, a[k].verdict, where);
        assert.equal(t[k].conn, a[k].conn, where);
        if (a[k].verdict !== "drop") assert.equal(hex(t[k].bytes), hex(a[k].bytes), where);
      }
      forwarded += a.filter((x) => x.verdict !== "drop").length;
      last = a;
      const step = 300 + (b * 7919) % 4000;
      wasm.sim.advance(step);
      ts.sim.advance(step);
    }
    assert.deepEqual(ts.d.counters(), wasm.d.counters());
    assert.deepEqual(ts.d.listConnections(), wasm.d.listConnections());
    assert.deepEqual(ts.d.listServices(), wasm.d.listServices());
    const c = wasm.d.counters();
    assert.ok(forwarded > 1000, `the stream forwards (${forwarded})`);
    assert.ok(c.forward_out > 0 && c.forward_icmp_out + c.forward_icmp_in > 0, "replies and ICMP errors were forwarded");
    assert.ok(c.adopted > 0 && c.not_syn > 0, "flows first seen mid-way were taken over (dr, tun) and refused (nat, fullnat)");
    if (capacity === 64) assert.ok(c.evicted > 0, "the small table evicted");
    if (capacity >= 300) assert.ok(c.expired > 0, "entries expired");
  });
}
