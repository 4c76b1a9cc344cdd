// The dashboard's samples: the ring (bounded length, oldest first, gaps for series that start
// late, series of pools and servers that are gone dropped) and the sampler over a real pool.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Generation } from "../generation.ts";
import { validateConfig } from "../schema.ts";
import { SampleRing, Sampler } from "./samples.ts";

const row = (entries: [string, number[]][]) => new Map(entries);

test("samples: the ring keeps its last `length` seconds, oldest first", () => {
  const ring = new SampleRing(3);
  assert.equal(ring.latest(), null);
  for (let t = 1; t <= 5; t++) ring.push(t * 1000, row([["pool:web", [t, t * 10]]]));
  const h = ring.history();
  assert.deepEqual(h.times, [3000, 4000, 5000]);
  assert.deepEqual(h.series["pool:web"], [[3, 4, 5], [30, 40, 50]]);
  assert.deepEqual(ring.latest(), { t: 5000, values: { "pool:web": [5, 50] } });
});

test("samples: a series that starts late has gaps (null) before it; one missing from a second is dropped", () => {
  const ring = new SampleRing(4);
  ring.push(1000, row([["pool:web", [1]]]));
  ring.push(2000, row([["pool:web", [2]], ["server:web/10.0.0.1:80", [7]]]));
  assert.deepEqual(ring.history().series["server:web/10.0.0.1:80"], [[null, 7]]);
  ring.push(3000, row([["server:web/10.0.0.1:80", [8]]]));
  assert.deepEqual(Object.keys(ring.history().series), ["server:web/10.0.0.1:80"]);
  assert.equal(ring.keys, 1);
  // NaN (a second without a response to average) reads as null.
  ring.push(4000, row([["server:web/10.0.0.1:80", [NaN]]]));
  assert.deepEqual(ring.latest()?.values, { "server:web/10.0.0.1:80": [null] });
});

test("samples: the sampler turns a pool's picks and responses into requests a second, mean response time and active", async () => {
  const r = validateConfig({
    listeners: [{ name: "main", bind: "127.0.0.1:8080" }], routes: [{ pool: "web" }],
    pools: { web: { scheduler: "rr", servers: ["10.0.0.1:80", "10.0.0.2:80"] } },
  });
  assert.ok(r.ok);
  const g = await Generation.build(r.config);
  try {
    const pool = g.balancer.get("web")!;
    const sampler = new Sampler(new SampleRing(10));
    sampler.sample(g, 10_000);
    // Over the next 2 s: 6 picks (rr: 3 each), 2 still active; responses of 10 and 30 ms.
    const picked = Array.from({ length: 6 }, () => pool.pick({ key: null, client: "192.0.2.1" })!);
    for (const s of picked.slice(2)) pool.release(s);
    pool.latency.responseTime.observe(10);
    pool.latency.responseTime.observe(30);
    sampler.sample(g, 12_000);
    const last = sampler.ring.latest()!;
    assert.deepEqual(last.values["pool:web"], [3, 20, 2, 0]);
    assert.deepEqual(last.values["server:web/10.0.0.1:80"], [1.5, 1]);
    assert.deepEqual(last.values["server:web/10.0.0.2:80"], [1.5, 1]);
    // A quiet second: no requests, no mean (null), the two still active.
    sampler.sample(g, 13_000);
    assert.deepEqual(sampler.ring.latest()!.values["pool:web"], [0, null, 2, 0]);
  } finally {
    await g.stop();
  }
});
