// Microbenchmarks of the data-plane kernels, WASM against the TS twin, on whichever runtime runs
// this file (`npm run bench` runs it on Bun and on Deno). Per-pick work is nanoseconds, so each
// task loops LOOP times inside and results are reported per pick. Prints a Markdown table.
import { Bench } from "tinybench";
import { runtime } from "../src/runtime/index.ts";
import { createDataPlane } from "../src/core/wasm.ts";
import { SCHEDULERS } from "../src/core/schedulers.ts";
import { KEYBUF_OFF, MAGLEV_M } from "../src/core/layout.ts";
import type { DataPlane } from "../src/core/dataplane.ts";

const LOOP = 10_000;
const BATCH = 4096;
const N = 10;
const TIME = Number(runtime.env("BENCH_TIME_MS") ?? 300);

// Key hashes as the hot path passes them: 32 bits in a signed int.
const keys = new Int32Array(1024);
crypto.getRandomValues(keys);

// Each task gets a loop compiled on its own, so its call site sees one kernel (monomorphic), as
// the edge's pick call does; one shared loop would measure a megamorphic call instead.
type Pick = (p: number, key: number) => number;
const pickLoop = () =>
  new Function("pick", "keys", "pool", "n",
    "let a = 0; for (let i = 0; i < n; i++) a += pick(pool, keys[i & 1023]); return a;") as
    (pick: Pick, keys: Int32Array, pool: number, n: number) => number;

function servers(n: number) {
  return Array.from({ length: n }, (_, i) => ({ address: `10.0.${i >> 8}.${i & 255}:80`, weight: 1 + (i % 4) }));
}

let sink = 0; // keeps results alive so the loops are not optimised away

async function pickRows(dp: DataPlane): Promise<string[]> {
  const bench = new Bench({ time: TIME, warmupTime: 100 });
  for (const s of SCHEDULERS) {
    const pool = dp.addPool({ scheduler: s, servers: servers(N) });
    // least_time with an estimate on every server, so each pick decays and compares them all.
    if (s === "least_time") for (let i = 0; i < N; i++) dp.observeTime(pool.base + i, 1 + i * 0.37);
    for (const [impl, k] of [["wasm", dp.wasm!], ["ts", dp.twin]] as const) {
      const loop = pickLoop(), pick = k.pick;
      bench.add(`${s}|${impl}`, () => { sink += loop(pick, keys, pool.id, LOOP); });
    }
  }
  await bench.run();
  const ns = new Map(bench.tasks.map((t) => [t.name, (t.result as { latency: { p50: number } }).latency.p50 * 1e6 / LOOP]));
  return SCHEDULERS.map((s) => {
    const w = ns.get(`${s}|wasm`)!, t = ns.get(`${s}|ts`)!;
    return `| pick ${s} (N=${N}) | ${w.toFixed(1)} | ${t.toFixed(1)} | ${w <= t ? "WASM" : "TS"} ${(Math.max(w, t) / Math.min(w, t)).toFixed(2)}x |`;
  });
}

async function otherRows(dp: DataPlane): Promise<string[]> {
  const bench = new Bench({ time: TIME, warmupTime: 100 });
  const key = "/api/v1/users/12345?x=1"; // a typical URI key
  bench.add("hash|wasm", () => {
    let acc = 0;
    for (let i = 0; i < LOOP; i++) acc ^= dp.hashInWasm(key);
    sink += acc;
  });
  bench.add("hash|ts", () => {
    let acc = 0;
    for (let i = 0; i < LOOP; i++) acc ^= dp.hashInTs(key);
    sink += acc;
  });
  const mh = dp.addPool({ scheduler: "mh", servers: servers(N) });
  // A batch of keys in, picks out, both in the key buffer (the L4 director's shape of work).
  const view = new Int32Array(dp.memory, KEYBUF_OFF, BATCH);
  for (let i = 0; i < BATCH; i++) view[i] = keys[i & 1023];
  const out = KEYBUF_OFF + BATCH * 4;
  bench.add("batch|wasm", () => dp.wasm!.pickBatch(mh.id, KEYBUF_OFF, out, BATCH));
  bench.add("batch|ts", () => dp.twin.pickBatch(mh.id, KEYBUF_OFF, out, BATCH));
  await bench.run();
  const per = (n: string) => n.startsWith("batch") ? BATCH : LOOP;
  const ns = (n: string) => (bench.getTask(n)!.result as { latency: { p50: number } }).latency.p50 * 1e6 / per(n);
  const row = (label: string, name: string) => {
    const w = ns(`${name}|wasm`), t = ns(`${name}|ts`);
    return `| ${label} | ${w.toFixed(1)} | ${t.toFixed(1)} | ${w <= t ? "WASM" : "TS"} ${(Math.max(w, t) / Math.min(w, t)).toFixed(2)}x |`;
  };
  return [row(`keyed hash, ${key.length}-byte key`, "hash"), row(`mh pickBatch, per pick (${BATCH} a call)`, "batch")];
}

async function maglevRows(): Promise<string[]> {
  const rows: string[] = [];
  for (const n of [10, 100, 1000]) {
    const dp = await createDataPlane({ impl: "wasm", seed: 1 });
    const pool = dp.addPool({ scheduler: "mh", servers: servers(n) });
    const bench = new Bench({ time: Math.max(TIME, 500), warmupTime: 100 });
    bench.add("wasm", () => dp.wasm!.rebuild(pool.id));
    bench.add("ts", () => dp.twin.rebuild(pool.id));
    await bench.run();
    const ms = (name: string) => (bench.getTask(name)!.result as { latency: { p50: number } }).latency.p50;
    const w = ms("wasm"), t = ms("ts");
    rows.push(`| Maglev build M=${MAGLEV_M}, N=${n} (ms) | ${w.toFixed(3)} | ${t.toFixed(3)} | ${w <= t ? "WASM" : "TS"} ${(Math.max(w, t) / Math.min(w, t)).toFixed(2)}x |`);
  }
  return rows;
}

// least_time, WASM against the twin in alternating rounds, each round timing both on the same
// memory, so a busy machine's noise falls on both alike: the median per-pick time of each and
// the median of the rounds' ratios. Picks with an estimate on every server (each decays and
// compares all), and the estimate update a response makes (observeTime).
async function leastTimeRows(): Promise<string[]> {
  const rows: string[] = [];
  const ROUNDS = 41, PICKS = 20_000;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  for (const n of [10, 100]) {
    const dp = await createDataPlane({ impl: "wasm", seed: 1 });
    const pool = dp.addPool({ scheduler: "least_time", servers: servers(n) });
    for (let i = 0; i < n; i++) dp.observeTime(pool.base + i, 1 + i * 0.37);
    const kernels = [dp.wasm!, dp.twin];
    const loops = kernels.map(() => pickLoop());
    const observe = kernels.map((k) => (count: number) => {
      for (let i = 0; i < count; i++) k.observeTime(pool.id, pool.base + (i % n), 1000 + (i & 1023));
    });
    for (const [what, run] of [
      ["pick", (k: number) => { sink += loops[k](kernels[k].pick, keys, pool.id, PICKS); }],
      ["observeTime", (k: number) => observe[k](PICKS)],
    ] as const) {
      const ns: number[][] = [[], []], ratio: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const t = [0, 1].map((k) => { const t0 = performance.now(); run(k); return (performance.now() - t0) * 1e6 / PICKS; });
        if (r < 3) continue; // warm-up rounds
        ns[0].push(t[0]); ns[1].push(t[1]); ratio.push(t[1] / t[0]);
      }
      const w = median(ns[0]), t = median(ns[1]), q = median(ratio);
      rows.push(`| least_time ${what} (N=${n}), alternating rounds | ${w.toFixed(1)} | ${t.toFixed(1)} | ${q >= 1 ? "WASM" : "TS"} ${(q >= 1 ? q : 1 / q).toFixed(2)}x (median ratio) |`);
    }
  }
  return rows;
}

const dp = await createDataPlane({ impl: "wasm", seed: 1 });
const cpu = (await runtime.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown cpu";
console.log(`\n### ${runtime.name} ${runtime.version}, ${cpu}\n`);
console.log("| kernel | WASM ns | TS ns | faster |");
console.log("|---|---:|---:|---|");
for (const r of await pickRows(dp)) console.log(r);
for (const r of await otherRows(dp)) console.log(r);
for (const r of await maglevRows()) console.log(r);
for (const r of await leastTimeRows()) console.log(r);
if (sink === 0.5) console.log(sink);
