// Workers' counter trees summed into a supervisor's generation: the L4 listeners' open
// connections (a gauge) are the running workers' sum, and leave with a worker that exited.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Generation } from "../generation.ts";
import { validateConfig } from "../schema.ts";
import { addCounters, counterTargets, countsOnly, type CounterTree, zeroCounters } from "./counters.ts";

test("counters: a mirrored L4 listener's connections are the workers' sum; an exited worker's leave", async () => {
  // Built, never started: nothing listens (a supervisor's generation).
  const r = validateConfig({
    listeners: [{ name: "raw", bind: "127.0.0.1:9000", protocol: "tcp", pool: "web" }],
    pools: { web: { servers: ["10.0.1.1:8080"] } },
  });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  const g = await Generation.build(r.config);
  try {
    g.l4!.mirror([9000]);
    const worker = (connections: number, sessions: number): CounterTree => ({ l4: { sessions }, l4Open: { raw: { connections } } });
    const gather = (trees: CounterTree[]) => {
      const sum: CounterTree = {};
      for (const t of trees) addCounters(sum, t, true);
      const targets = counterTargets(g);
      zeroCounters(targets, sum);
      addCounters(targets, sum);
    };
    gather([worker(2, 5), worker(1, 3)]);
    assert.deepEqual(g.l4!.listening.map((l) => [l.config.name, l.connections]), [["raw", 3]]);
    assert.equal(g.l4!.stats.sessions, 8);
    // The second worker exited: its sessions stay counted, its connections are gone.
    gather([worker(2, 6), countsOnly(worker(1, 3))]);
    assert.equal(g.l4!.listening[0].connections, 2);
    assert.equal(g.l4!.stats.sessions, 9);
  } finally {
    await g.stop();
  }
});
