// The glue from a source's sets and changes to a live pool over a real data plane: the pool ends
// with exactly the source's servers, weights and states; servers that stay keep their identity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../core/wasm.ts";
import { Balancer } from "../balancer/balancer.ts";
import { SERVER_DEFAULTS } from "../balancer/config.ts";
import { DiscoveredPool } from "./apply.ts";
import type { DiscoveredServer } from "./source.ts";
import { b64, prefixEnd } from "./etcd-client.ts";

const at = (port: number, weight = 1, state: DiscoveredServer["state"] = "up"): DiscoveredServer =>
  ({ address: { host: "127.0.0.1", port }, weight, state });

async function feed() {
  const balancer = new Balancer(await createDataPlane({ seed: 1 }), [{
    name: "api", scheduler: "wrr", hashKey: null, servers: [{ address: { host: "127.0.0.1", port: 9000 }, ...SERVER_DEFAULTS }],
    sorryServer: null, queue: { size: 0, timeoutMs: 1000 }, persistenceMs: 0, connectTimeoutMs: 1000,
  }]);
  const pool = balancer.get("api")!;
  const lines: string[] = [];
  return { pool, glue: new DiscoveredPool(pool, (l) => lines.push(l)), lines };
}

const picks = (pool: Awaited<ReturnType<typeof feed>>["pool"], n: number) => {
  const out: Record<number, number> = {};
  for (let i = 0; i < n; i++) {
    const s = pool.pick({ key: null, client: "10.0.0.1" });
    if (s) { out[s.port] = (out[s.port] ?? 0) + 1; pool.release(s); }
  }
  return out;
};

test("discovery glue: the first full set replaces the configured servers; weights follow", async () => {
  const { pool, glue } = await feed();
  glue.apply({ kind: "full", servers: [at(9001), at(9002, 3)] });
  assert.deepEqual(pool.servers.map((s) => [s.port, s.weight]), [[9001, 1], [9002, 3]]);
  assert.deepEqual(picks(pool, 8), { 9001: 2, 9002: 6 });
});

test("discovery glue: changes add, remove, reweigh and set drain and maint; a kept server keeps its identity", async () => {
  const { pool, glue, lines } = await feed();
  glue.apply({ kind: "full", servers: [at(9001), at(9002)] });
  const kept = pool.find("127.0.0.1", 9002)!;
  glue.apply({ kind: "changes", upserts: [at(9003, 2)], removed: [{ host: "127.0.0.1", port: 9001 }] });
  assert.deepEqual(pool.servers.map((s) => s.port), [9002, 9003]);
  assert.equal(pool.find("127.0.0.1", 9002), kept);
  glue.apply({ kind: "changes", upserts: [at(9002, 1, "drain")], removed: [] });
  assert.deepEqual(picks(pool, 6), { 9003: 6 });
  glue.apply({ kind: "changes", upserts: [at(9002, 1, "up"), at(9003, 2, "maint")], removed: [] });
  assert.deepEqual(picks(pool, 6), { 9002: 6 });
  assert.equal(kept.down.size, 0);
  assert.ok(lines.some((l) => /api\/127\.0\.0\.1:9003 maint/.test(l)), lines.join("\n"));
});

test("discovery glue: an empty full set empties the pool (etcd said so); a resync with the same set changes nothing", async () => {
  const { pool, glue, lines } = await feed();
  glue.apply({ kind: "full", servers: [at(9001)] });
  const before = lines.length;
  glue.apply({ kind: "full", servers: [at(9001)] });
  assert.equal(lines.length, before, "no change logged for an identical resync");
  glue.apply({ kind: "full", servers: [] });
  assert.deepEqual(pool.servers, []);
  assert.equal(pool.pick({ key: null, client: "10.0.0.1" }), null);
});

test("etcd keys: base64 of UTF-8 and the prefix range end (last byte plus one)", () => {
  assert.equal(b64("/fulcrum/"), "L2Z1bGNydW0v");
  assert.equal(atob(prefixEnd("/fulcrum/")), "/fulcrum0");
  assert.equal(b64("é"), "w6k=");
});
