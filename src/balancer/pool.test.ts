// The balancer's pools over a real data plane (WASM kernels): picks, down reasons, the queue,
// persistence, and live membership (servers and pools added and removed at run time).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../core/wasm.ts";
import { Balancer } from "./balancer.ts";
import { type BalancerPoolConfig, SERVER_DEFAULTS, type ServerConfig } from "./config.ts";
import type { Server } from "./pool.ts";
import { PersistenceTable } from "../control/workers/persistence-table.ts";
import type { SchedulerName } from "../core/schedulers.ts";
import { STATE_DOWN, STATE_DRAIN, STATE_UP } from "../core/dataplane.ts";

function server(port: number, extra: Partial<ServerConfig> = {}): ServerConfig {
  return { address: { host: "127.0.0.1", port }, ...SERVER_DEFAULTS, ...extra };
}

function poolConfig(name: string, scheduler: SchedulerName, ports: number[], extra: Partial<BalancerPoolConfig> = {}): BalancerPoolConfig {
  return {
    name, scheduler, hashKey: scheduler === "mh" || scheduler === "sh" ? { kind: "source" } : null,
    servers: ports.map((p) => server(p)), sorryServer: null, queue: { size: 10, timeoutMs: 1000 },
    persistenceMs: 0, connectTimeoutMs: 1000, ...extra,
  };
}

const client = (n: number) => ({ key: null, client: `10.0.${n >> 8}.${n & 255}` });
const ports = (servers: (Server | null)[]) => servers.map((s) => s?.port ?? -1);

test("balancer: rr picks every server in turn and counts each pick as active until released", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "rr", [9001, 9002, 9003])]);
  const pool = b.get("web")!;
  const picks = Array.from({ length: 6 }, (_, i) => pool.pick(client(i)));
  assert.deepEqual(ports(picks).sort(), [9001, 9001, 9002, 9002, 9003, 9003]);
  assert.deepEqual(pool.servers.map((s) => pool.active(s)), [2, 2, 2]);
  for (const s of picks) pool.release(s!);
  assert.deepEqual(pool.servers.map((s) => pool.active(s)), [0, 0, 0]);
});

test("balancer: a server with any down reason takes nothing; it is back when its last reason clears", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "rr", [9001, 9002])]);
  const pool = b.get("web")!;
  const [a] = pool.servers;
  pool.setDown(a, "health", true);
  pool.setDown(a, "admin", true);
  assert.deepEqual(new Set(ports(Array.from({ length: 4 }, (_, i) => pool.pick(client(i))))), new Set([9002]));
  pool.setDown(a, "health", false);
  assert.deepEqual(new Set(ports(Array.from({ length: 4 }, (_, i) => pool.pick(client(i))))), new Set([9002]), "admin still holds it");
  pool.setDown(a, "admin", false);
  assert.ok(ports(Array.from({ length: 4 }, (_, i) => pool.pick(client(i)))).includes(9001));
});

test("balancer: pick avoids servers a retry already tried, also when the hash keeps choosing one", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "mh", [9001, 9002, 9003])]);
  const pool = b.get("web")!;
  const first = pool.pick(client(7))!;
  const tried = new Set([first]);
  const second = pool.pick(client(7), tried)!;
  assert.notEqual(second.port, first.port);
  tried.add(second);
  const third = pool.pick(client(7), tried)!;
  assert.equal(new Set([first.port, second.port, third.port]).size, 3);
  tried.add(third);
  assert.equal(pool.pick(client(7), tried), null, "every server tried: none left");
});

test("balancer: source persistence sends a client back to its server until the entry times out", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "rr", [9001, 9002, 9003], { persistenceMs: 60_000 })]);
  const pool = b.get("web")!;
  const first = pool.pick(client(1))!;
  for (let i = 0; i < 5; i++) assert.equal(pool.pick(client(1)), first, "rr would move on; persistence holds");
  assert.notEqual(pool.pick(client(2)), undefined);
});

test("balancer: with a shared persistence table a client goes back to its server from another process's pool; a server that left is not returned", async () => {
  // Two workers' pools of one config, their servers' shared words given as the supervisor does.
  const table = new PersistenceTable(new ArrayBuffer(PersistenceTable.bytes(1000)), { capacity: 1000 });
  const [a, b] = await Promise.all([1, 2].map(async () => {
    const pool = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "rr", [9001, 9002, 9003], { persistenceMs: 60_000 })]).get("web")!;
    pool.servers.forEach((s, k) => { s.shared = k; });
    pool.sharePersistence(table);
    return pool;
  }));
  b.pick(client(9)); // b's rr turn is now past its first server
  const first = a.pick(client(1))!;
  for (let i = 0; i < 4; i++) assert.equal(b.pick(client(1))!.port, first.port, "rr would move on; the shared entry holds");
  // The other worker is told the server left: the entry names a word none of its members has.
  b.removeServer(b.find(first.host, first.port)!);
  const moved = b.pick(client(1))!;
  assert.notEqual(moved.port, first.port);
  assert.equal(a.pick(client(1))!.port, moved.port, "the new entry is every worker's");
});

test("balancer: a server added at run time takes its share; one removed takes nothing, and its sessions release nothing", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const b = new Balancer(dp, [poolConfig("web", "rr", [9001, 9002])]);
  const pool = b.get("web")!;
  const changes: string[] = [];
  pool.onMembership((c) => changes.push(`${c.type} ${c.server.port}`));
  const held = pool.pick(client(0))!; // a session in flight across the change
  const added = pool.addServer(server(9003));
  assert.equal(pool.active(held), 1, "the session in flight kept its count through the move");
  assert.deepEqual(new Set(ports(Array.from({ length: 6 }, (_, i) => pool.pick(client(i))))), new Set([9001, 9002, 9003]));
  assert.throws(() => pool.addServer(server(9003)), /already has server 127\.0\.0\.1:9003/);

  pool.removeServer(added);
  assert.equal(added.slot, -1);
  const activeBefore = pool.servers.map((s) => pool.active(s));
  pool.release(added); // a session that was on it ends: no other server's count changes
  assert.deepEqual(pool.servers.map((s) => pool.active(s)), activeBefore);
  assert.ok(!ports(Array.from({ length: 6 }, (_, i) => pool.pick(client(i)))).includes(9003));
  assert.deepEqual(changes, ["added 9003", "removed 9003"]);
});

test("balancer: a weight set at run time moves the share (wrr), also past the configured weight (ketama's ring grows)", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const b = new Balancer(dp, [poolConfig("w", "wrr", [9001, 9002]), poolConfig("k", "ketama", [9001, 9002], { hashKey: { kind: "source" } })]);
  const w = b.get("w")!;
  w.setWeight(w.servers[0], 3);
  const counts = new Map<number, number>();
  for (let i = 0; i < 400; i++) { const s = w.pick(client(i))!; counts.set(s.port, (counts.get(s.port) ?? 0) + 1); w.release(s); }
  assert.deepEqual([...counts].sort(), [[9001, 300], [9002, 100]]);

  const k = b.get("k")!;
  k.setWeight(k.servers[0], 9);
  const onFirst = Array.from({ length: 2000 }, (_, i) => k.pick(client(i))!).filter((s) => s.port === 9001).length;
  assert.ok(onFirst > 1600 && onFirst < 1990, `weight 9:1 on the ring gives ~90% to the first server, got ${onFirst}/2000`);
});

test("balancer: removed pools give their slots and table memory back; many add/remove rounds never run out", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const b = new Balancer(dp);
  // Each round holds 1000 servers and two Maglev tables: without reuse the 4096 slots (and the
  // table heap) would run out within a few rounds.
  for (let round = 0; round < 40; round++) {
    const name = `p${round}`;
    const big = poolConfig(name, "mh", Array.from({ length: 1000 }, (_, i) => 10000 + i));
    const pool = b.addPool(big);
    assert.ok(pool.pick(client(round)), `round ${round}: the new pool serves`);
    b.removePool(name);
  }
  const last = b.addPool(poolConfig("last", "sh", [9001]));
  assert.equal(last.pick(client(1))?.port, 9001);
  assert.throws(() => b.removePool("nope"), /no pool nope/);
});

test("balancer: a change to one pool leaves every other pool's picks as they were", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const b = new Balancer(dp, [poolConfig("a", "mh", [9001, 9002, 9003]), poolConfig("b", "mh", [9101, 9102, 9103])]);
  const before = Array.from({ length: 500 }, (_, i) => b.get("b")!.pick(client(i))!.port);
  b.get("a")!.addServer(server(9004));
  b.get("a")!.removeServer(b.get("a")!.servers[0]);
  b.addPool(poolConfig("c", "mh", [9201]));
  b.removePool("c");
  const after = Array.from({ length: 500 }, (_, i) => b.get("b")!.pick(client(i))!.port);
  assert.deepEqual(after, before);
});

test("balancer: when every usable server is at max_conns, a session waits in the queue until one is released", async () => {
  const b = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "lc", [], { servers: [server(9001, { maxConns: 1 })] })]);
  const pool = b.get("web")!;
  const held = pool.pick(client(0))!;
  assert.equal(pool.pick(client(1)), null, "full");
  const wait = pool.waitForSlot();
  assert.ok(wait, "a full server: the session may wait");
  pool.release(held);
  assert.equal(await wait, "slot");
  assert.equal(pool.pick(client(1))?.port, 9001);
  pool.stop();
});

test("balancer: the data plane's memory starts small and grows as tables are made; picks and counts go on across the growth", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const start = dp.memory.byteLength;
  assert.ok(start <= 2 * 1024 * 1024, `starts at ${start} bytes`);
  const b = new Balancer(dp, [poolConfig("first", "rr", [9001, 9002])]);
  const held = b.get("first")!.pick(client(0))!;
  // Each Maglev table is 65537 entries of 4 bytes: 20 of them need ~5 MB more.
  for (let i = 0; i < 20; i++) b.addPool(poolConfig(`mh${i}`, "mh", [9101, 9102, 9103]));
  assert.ok(dp.memory.byteLength > start + 4 * 1024 * 1024, `grew to ${dp.memory.byteLength}`);
  assert.equal(b.get("first")!.active(held), 1, "the count taken before the growth is still there");
  b.get("first")!.release(held);
  assert.equal(b.get("first")!.active(held), 0);
  const spread = new Set(Array.from({ length: 60 }, (_, i) => b.get("mh19")!.pick(client(i))!.port));
  assert.deepEqual([...spread].sort(), [9101, 9102, 9103]);
});

test("balancer: drain alone puts a server in the data plane's DRAIN state: no new picks, sessions on it release", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const b = new Balancer(dp, [poolConfig("web", "rr", [9001, 9002])]);
  const pool = b.get("web")!;
  const [a] = pool.servers;
  const open = pool.pick(client(0))!;
  assert.equal(open, a);
  pool.setDown(a, "drain", true);
  assert.equal(dp.state[a.slot], STATE_DRAIN);
  assert.deepEqual(new Set(ports(Array.from({ length: 4 }, (_, i) => pool.pick(client(i))))), new Set([9002]));
  assert.equal(pool.active(a), 1, "the session on it goes on");
  pool.release(open);
  assert.equal(pool.active(a), 0);
  pool.setDown(a, "health", true);
  assert.equal(dp.state[a.slot], STATE_DOWN, "drain and another reason: down");
  pool.setDown(a, "health", false);
  pool.setDown(a, "drain", false);
  assert.equal(dp.state[a.slot], STATE_UP);
});

test("balancer: raising a ketama server's weight lays the pool out again and every server keeps its own slot", async () => {
  const dp = await createDataPlane({ seed: 1 });
  const b = new Balancer(dp, [poolConfig("k", "ketama", [9001, 9002, 9003], { hashKey: { kind: "source" } })]);
  const pool = b.get("k")!;
  const [, s2] = pool.servers;
  pool.setWeight(s2, 5);
  for (const s of pool.servers) assert.equal(dp.poolOf(s.slot) >= 0, true, `${s.label} has a live slot`);
  assert.equal(dp.weight[s2.slot], 5);
  assert.equal(pool.effectiveWeight(s2), 5);
  const picked = new Set(ports(Array.from({ length: 200 }, (_, i) => { const s = pool.pick(client(i)); if (s) pool.release(s); return s; })));
  assert.deepEqual(picked, new Set([9001, 9002, 9003]));
});

test("balancer: rr after a server is removed picks only the pool's servers (its cursor was past the new end)", async () => {
  for (const picks of [0, 1, 2, 3]) {
    const b = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "rr", [9001]), poolConfig("other", "rr", [9101, 9102])]);
    const pool = b.get("web")!;
    const added = pool.addServer(server(9002));
    for (let i = 0; i < picks; i++) pool.release(pool.pick(client(i))!);
    pool.removeServer(added);
    const after = Array.from({ length: 3 }, (_, i) => pool.pick(client(i)));
    assert.deepEqual(ports(after), [9001, 9001, 9001], `after ${picks} pick(s)`);
  }
});

test("balancer: a reload's pool inherits the sessions in flight on the old one (lc), through two reloads, until they end", async () => {
  const gen1 = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "lc", [9001, 9002])]);
  const old = gen1.get("web")!;
  // Three long sessions on the old generation: two on 9001, one on 9002.
  const held = [old.pick(client(1)), old.pick(client(2)), old.pick(client(3))].map((s) => s!);
  assert.deepEqual(ports(held).sort(), [9001, 9001, 9002]);
  // The new generation adds 9003 and keeps 9001 at a new slot (after 9003).
  const gen2 = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "lc", [9003, 9002, 9001])]);
  gen2.inherit(gen1);
  const next = gen2.get("web")!;
  assert.deepEqual(next.servers.map((s) => [s.port, next.active(s)]), [[9003, 0], [9002, 1], [9001, 2]]);
  // lc sees them: new picks fill 9003 first, then 9002.
  const fresh = [next.pick(client(4)), next.pick(client(5))].map((s) => s!);
  assert.deepEqual(ports(fresh), [9003, 9003]);
  assert.equal(next.pick(client(6))!.port, 9002);
  // A session started on the old generation after the reload counts in the new one too.
  const late = old.pick(client(7))!;
  assert.equal(late.port, 9002, "lc on the old pool: 9002 had one, 9001 two");
  assert.equal(next.active(next.find("127.0.0.1", 9002)!), 3);
  // A third generation before the old sessions end: the counts chain on.
  const gen3 = new Balancer(await createDataPlane({ seed: 1 }), [poolConfig("web", "lc", [9001])]);
  gen3.inherit(gen2);
  const third = gen3.get("web")!;
  assert.equal(third.active(third.servers[0]), 2);
  // The old sessions end: every generation's count goes down, down to 0.
  for (const s of [...held, late]) old.release(s);
  assert.deepEqual(next.servers.map((s) => [s.port, next.active(s)]), [[9003, 2], [9002, 1], [9001, 0]]);
  assert.equal(third.active(third.servers[0]), 0);
  assert.deepEqual(old.servers.map((s) => old.active(s)), [0, 0]);
});

test("balancer: wlc and max_conns count the old generation's sessions; its release wakes the new pool's queue; a failed reload's link is undone", async () => {
  const capped = (ports: number[]) => poolConfig("web", "wlc", ports, { servers: ports.map((p) => server(p, { maxConns: 2 })) });
  const gen1 = new Balancer(await createDataPlane({ seed: 1 }), [capped([9001])]);
  const old = gen1.get("web")!;
  const held = [old.pick(client(1))!, old.pick(client(2))!];
  const gen2 = new Balancer(await createDataPlane({ seed: 1 }), [capped([9001, 9002])]);
  gen2.inherit(gen1);
  const next = gen2.get("web")!;
  // 9001 is full with the old sessions: wlc and max_conns send both new ones to 9002.
  assert.deepEqual(ports([next.pick(client(3)), next.pick(client(4))]), [9002, 9002]);
  assert.equal(next.pick(client(5)), null, "every server is at max_conns");
  const wait = next.waitForSlot();
  assert.ok(wait, "the session queues");
  assert.equal(next.queued, 1);
  old.release(held[0]);
  assert.equal(next.queued, 0, "the old session's end woke the session waiting in the new pool");
  await wait;
  assert.equal(next.pick(client(5))!.port, 9001);
  // A generation that failed to start: its undo leaves the old counts where they were.
  const failed = new Balancer(await createDataPlane({ seed: 1 }), [capped([9001])]);
  const undo = failed.inherit(gen2);
  const lost = failed.get("web")!;
  assert.equal(lost.active(lost.servers[0]), 2, "9001: one old session and one new");
  undo();
  old.release(held[1]);
  assert.equal(lost.active(lost.servers[0]), 2, "released no more into the failed generation");
  assert.equal(next.active(next.find("127.0.0.1", 9001)!), 1);
  gen1.stop(); gen2.stop(); failed.stop();
});
