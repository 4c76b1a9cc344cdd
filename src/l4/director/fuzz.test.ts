// Fuzzed and truncated packets through the director: no trap, no exception, and every packet
// forwarded or dropped with a counted reason. 50,000 packets in the normal suite (both kernels,
// compared); FULCRUM_DIRECTOR_FUZZ=1000000 runs a million (the twin compared on the first 100,000).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Director } from "./director.ts";
import { Simulator, type SimResult } from "./simulator.ts";
import { MIXED_SERVICES, Traffic, mutate, rng } from "./traffic.ts";
import { REASON_NAMES } from "./names.ts";
import * as L from "../../core/layout.ts";

const TOTAL = Number(process.env.FULCRUM_DIRECTOR_FUZZ ?? 50_000);

async function director(impl: "wasm" | "ts") {
  const d = await Director.create({ capacity: 2048, impl, seed: 5 });
  for (const vs of MIXED_SERVICES) d.addService(vs);
  return { d, sim: new Simulator(d, 1_000) };
}

test(`${TOTAL} fuzzed and truncated packets: every one forwarded or dropped with a counted reason, WASM and twin alike`, async () => {
  const wasm = await director("wasm"), ts = await director("ts");
  const traffic = new Traffic(77);
  const r = rng(1234);
  const known = new Set(REASON_NAMES.filter(Boolean));
  let sent = 0, last: SimResult[] = [];
  // The twin follows every batch of the first 100,000 packets (its state depends on all of them);
  // a longer run goes on in WASM alone.
  const TWIN_PACKETS = 100_000;
  for (let b = 0; sent < TOTAL; b++) {
    const n = Math.min(L.MAX_BATCH, TOTAL - sent);
    const packets = traffic.batch(n, last).map((p) => (r(4) === 0 ? p : mutate(p, r)));
    const a = wasm.sim.send(packets);
    for (const x of a) assert.ok(known.has(x.reason), `reason ${x.reason} is a named one`);
    if (sent < TWIN_PACKETS) {
      const t = ts.sim.send(packets);
      for (let k = 0; k < n; k++) assert.equal(t[k].reason, a[k].reason, `batch ${b} packet ${k}`);
    }
    last = a;
    sent += n;
    if (b % 50 === 0) { wasm.sim.advance(1_500); if (sent < TWIN_PACKETS) ts.sim.advance(1_500); }
  }
  const { forwarded, dropped } = wasm.d.totals();
  assert.equal(forwarded + dropped, TOTAL, "every packet counted once");
  const c = wasm.d.counters();
  assert.ok(c.truncated > 0 && c.bad_ip > 0 && c.forward_in > 0 && c.adopted > 0, "the mix reaches parse errors, forwarding and mid-flow takeover");
});

test("descriptors outside memory or without headroom are refused, not followed", async () => {
  const { d } = await director("wasm");
  const view = new DataView(d.plane.memory);
  const set = (k: number, off: number, len: number) => {
    const p = L.DIR_DESC_OFF + k * L.DESC_SIZE;
    view.setUint32(p + L.DESC_OFF, off, true);
    view.setUint32(p + L.DESC_LEN, len, true);
    view.setUint16(p + L.DESC_FLAGS, 0, true);
  };
  set(0, 0, 40);
  set(1, d.plane.memory.byteLength - 10, 40);
  set(2, 0xfffffff0, 64);
  set(3, L.DIR_PKT_OFF + L.PKT_HEADROOM, 70000);
  assert.equal(d.processBatch(4, 2_000), 0);
  assert.equal(d.counters().bad_descriptor, 4);
});
