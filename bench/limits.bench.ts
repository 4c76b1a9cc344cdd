// Per-client limits (issue 13): the kernels' cost per decision, WASM against the TS twin; the
// memory of 100,000 tracked keys; a rate limit that is never reached against none (tiny body,
// c64, wrk, interleaved rounds); and a flood from one key above its limit while other clients
// run at a paced rate (h2load --rps, per-request log for their p99), against the same clients
// alone. Prints Markdown.
//
//   bun bench/limits.bench.ts                                  all parts, Fulcrum on Bun
//   BENCH_PARTS=kernel deno run -A --no-check bench/limits.bench.ts   the kernel table on Deno
//   BENCH_RUNTIME=deno BENCH_PARTS=l7,flood bun bench/limits.bench.ts  Fulcrum on Deno
import { Bench } from "tinybench";
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { createDataPlane } from "../src/core/wasm.ts";
import { LimitTable } from "../src/core/limits.ts";
import type { KernelImpl } from "../src/core/kernels.ts";
import { freePort, median, nginxConf, sh, start, stopStarted, waitPort, work, wrk, type WrkResult } from "./l7.bench.ts";

const PARTS = (runtime.env("BENCH_PARTS") ?? "kernel,memory,l7,flood").split(",");
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 5);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const FULCRUM_RUNTIME = runtime.env("BENCH_RUNTIME") ?? "bun";
const root = new URL("..", import.meta.url).pathname;
const LOOP = 10_000;
let sink = 0;

// ------------------------------------------------------------------------ kernels

async function kernelRows(): Promise<string[]> {
  const keys = Array.from({ length: 1024 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  const bench = new Bench({ time: Number(runtime.env("BENCH_TIME_MS") ?? 300), warmupTime: 100 });
  for (const impl of ["wasm", "ts"] as KernelImpl[]) {
    const dp = await createDataPlane({ impl, seed: 1 });
    // Never refused: the common case, the whole lookup and update every time.
    const rate = new LimitTable(dp, { kind: "rate", size: 100_000, rate: 1_000_000, burst: 1_000_000 }, impl);
    const conn = new LimitTable(dp, { kind: "conn", size: 100_000, max: 1_000_000 }, impl);
    bench.add(`rate|${impl}`, () => {
      let a = 0;
      for (let i = 0; i < LOOP; i++) a += rate.rate(keys[i & 1023], i >> 4);
      sink += a;
    });
    bench.add(`conn|${impl}`, () => {
      for (let i = 0; i < LOOP; i++) conn.release(conn.acquire(keys[i & 1023], i >> 4));
    });
  }
  await bench.run();
  const ns = (n: string) => (bench.getTask(n)!.result as { latency: { p50: number } }).latency.p50 * 1e6 / LOOP;
  return [["rate_limit decision (key copy + hash + lookup)", "rate"], ["conn_limit acquire + release", "conn"]].map(([label, name]) => {
    const w = ns(`${name}|wasm`), t = ns(`${name}|ts`);
    return `| ${label} | ${w.toFixed(1)} | ${t.toFixed(1)} | ${w <= t ? "WASM" : "TS"} ${(Math.max(w, t) / Math.min(w, t)).toFixed(2)}x |`;
  });
}

// ------------------------------------------------------------------------ memory

async function memoryLine(): Promise<string> {
  const gc = () => (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc(true);
  const dp = await createDataPlane({ impl: "wasm", seed: 1 });
  const keys = Array.from({ length: 100_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
  gc(); gc();
  const before = process.memoryUsage().rss, wasmBefore = dp.memory.byteLength;
  const t = new LimitTable(dp, { kind: "rate", size: 100_000, rate: 10, burst: 10 });
  for (let i = 0; i < keys.length; i++) t.rate(keys[i], 0);
  gc(); gc();
  const after = process.memoryUsage().rss;
  const s = t.stats();
  const mb = (n: number) => (n / 1048576).toFixed(2);
  return `In process: 100,000 keys into a size-100000 rate table: table ${mb(t.bytes)} MB (${(t.bytes / s.size).toFixed(2)} bytes per key), ` +
    `${s.entries} tracked, ${s.evictions} evicted (full sets); WASM memory grew ${mb(dp.memory.byteLength - wasmBefore)} MB; process RSS delta ${mb(after - before)} MB.`;
}

/** VmRSS of a process, MB. */
async function rssMb(pid: number): Promise<number> {
  const status = await runtime.readTextFile(`/proc/${pid}/status`).catch(() => "");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Two Fulcrums, one with a header-keyed rate table of 100,000 keys, both sent the same
 * requests with a new X-Api-Key each (wrk and a Lua counter): their resident memory after. */
async function memoryInFulcrum(upstream: number): Promise<string> {
  const ports = { keys: await freePort(), none: await freePort() };
  const pids = {
    keys: await fulcrumAt("keys", ports.keys, upstream, "    rate_limit: { rate: 10/s, burst: 10, key: header:X-Api-Key, size: 100000 }"),
    none: await fulcrumAt("none", ports.none, upstream, ""),
  };
  await runtime.writeTextFile(`${work}/keys.lua`, `local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, nil, { ["X-Api-Key"] = "key-" .. i })
end
`);
  const sent: Record<string, number> = {};
  for (const k of ["keys", "none"] as const) {
    const out = await sh(["wrk", "-t1", "-c16", "-d15s", "-s", `${work}/keys.lua`, `http://127.0.0.1:${ports[k]}/tiny`], { allowFail: true });
    sent[k] = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const [a, b] = [await rssMb(pids.keys), await rssMb(pids.none)];
  return `In Fulcrum (${FULCRUM_RUNTIME}), after ${sent.keys} and ${sent.none} requests each with a new key: VmRSS with the 100,000-key table ${a.toFixed(1)} MB, without ${b.toFixed(1)} MB: delta ${(a - b).toFixed(1)} MB.`;
}

// ------------------------------------------------------------------------ proxied

async function fulcrumAt(name: string, port: number, upstream: number, route: string, routes = ""): Promise<number> {
  await runtime.writeTextFile(`${work}/${name}.yaml`, `listeners:
  - bind: 127.0.0.1:${port}
    max_connections: 20000
routes:
${routes}  - pool: up
${route}
pools:
  up: { servers: [127.0.0.1:${upstream}] }
`);
  const cmd = FULCRUM_RUNTIME === "deno"
    ? [`${root}node_modules/.bin/deno`, "run", "-A", "--no-check", `${root}src/cli/main.ts`, "run", "--config", `${work}/${name}.yaml`]
    : [`${root}node_modules/.bin/bun`, `${root}src/cli/main.ts`, "run", "--config", `${work}/${name}.yaml`];
  const child = start(cmd);
  await waitPort(port);
  return child.pid;
}

async function l7Rows(upstream: number): Promise<string[]> {
  // One process, two routes to the same upstream file: /on/tiny through a rate_limit of
  // 1,000,000/s with that burst (every request takes the kernel path, none is refused), /tiny
  // through none. The same process and heap serve both, so only the limit differs.
  const port = await freePort();
  const size = runtime.env("BENCH_ON_SIZE") ?? "100000";
  const pid = await fulcrumAt("limit-on-off", port, upstream, "", `  - path_prefix: /on/
    pool: up
    rate_limit: { rate: 1000000/s, burst: 1000000, key: client, size: ${size} }
`);
  const paths = { on: "/on/tiny", off: "/tiny" };
  const runs: Record<"on" | "off", WrkResult[]> = { on: [], off: [] };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so a drift in the machine's load falls on both.
    const order = r % 2 === 0 ? ["on", "off"] as const : ["off", "on"] as const;
    for (const k of order) runs[k].push(await wrk(port, paths[k], 64, pid));
  }
  const rps = (k: "on" | "off") => median(runs[k].map((x) => x.rps));
  const p99 = (k: "on" | "off") => median(runs[k].map((x) => x.p99ms));
  const cpu = (k: "on" | "off") => median(runs[k].map((x) => x.cpuUs));
  const errs = (k: "on" | "off") => runs[k].reduce((s, x) => s + x.errors, 0);
  return [
    `| rate_limit on (never reached) | ${rps("on").toFixed(0)} | ${p99("on").toFixed(2)} | ${cpu("on").toFixed(1)} | ${errs("on")} |`,
    `| off | ${rps("off").toFixed(0)} | ${p99("off").toFixed(2)} | ${cpu("off").toFixed(1)} | ${errs("off")} |`,
    `| on / off | ${(rps("on") / rps("off")).toFixed(3)} | ${(p99("on") / p99("off")).toFixed(2)} | ${(cpu("on") / cpu("off")).toFixed(3)} | |`,
    // Each round's two runs are back to back: their ratio is less exposed to the machine's drift.
    `| on / off, median of the rounds' ratios | ${median(runs.on.map((x, i) => x.rps / runs.off[i].rps)).toFixed(3)} | ${median(runs.on.map((x, i) => x.p99ms / runs.off[i].p99ms)).toFixed(2)} | ${median(runs.on.map((x, i) => x.cpuUs / runs.off[i].cpuUs)).toFixed(3)} | |`,
    "",
    `Rounds (req/s, on / off): ${runs.on.map((x, i) => `${x.rps.toFixed(0)} / ${runs.off[i].rps.toFixed(0)}`).join(", ")}.`,
  ];
}

const OTHERS = 16, OTHER_RPS = 50; // paced: 800 req/s offered in all

/** p99 (ms) of the paced clients' requests from h2load's per-request log; non-2xx counted. */
async function others(port: number, seconds: number): Promise<{ p99: number; n: number; non2xx: number }> {
  const log = `${work}/h2load-${Date.now()}.log`;
  await sh(["h2load", "--h1", "-c", String(OTHERS), "--rps", String(OTHER_RPS), "-D", String(seconds), "-H", "x-api-key: others",
    "--log-file", log, `http://127.0.0.1:${port}/tiny`], { allowFail: true });
  const lines = (await runtime.readTextFile(log)).trim().split("\n").map((l) => l.split("\t"));
  // Columns: start time (µs since the epoch), status, duration (µs).
  const durations = lines.map((f) => Number(f[2]) / 1000).sort((a, b) => a - b);
  const non2xx = lines.filter((f) => !f[1].startsWith("2")).length;
  return { p99: durations[Math.floor(durations.length * 0.99)], n: durations.length, non2xx };
}

async function floodRows(upstream: number): Promise<string[]> {
  const port = await freePort();
  const pid = await fulcrumAt("flood", port, upstream, "    rate_limit: { rate: 2000/s, burst: 1000, key: header:X-Api-Key }");
  const alone: number[] = [], flooded: number[] = [];
  let floodRps = 0, floodRefused = 0, othersRefused = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const a = await others(port, SECONDS);
    alone.push(a.p99);
    othersRefused += a.non2xx;
    // One client (one key, 4 connections, as fast as it can) far above its 2000/s.
    const flood = sh(["wrk", "-t1", "-c4", `-d${SECONDS + 1}s`, "-H", "X-Api-Key: flood", `http://127.0.0.1:${port}/tiny`], { allowFail: true });
    await new Promise((res) => setTimeout(res, 500));
    const b = await others(port, SECONDS);
    const out = await flood;
    flooded.push(b.p99);
    othersRefused += b.non2xx;
    floodRps += Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0) / ROUNDS;
    floodRefused += Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  }
  void pid;
  return [
    `| others alone | ${median(alone).toFixed(2)} | ${alone.map((x) => x.toFixed(2)).join(", ")} |`,
    `| others beside the flood | ${median(flooded).toFixed(2)} | ${flooded.map((x) => x.toFixed(2)).join(", ")} |`,
    `| flooded / alone | ${(median(flooded) / median(alone)).toFixed(2)} | |`,
    "",
    `The flood: ${floodRps.toFixed(0)} req/s on average, ${floodRefused} answered 429 in all; the others' requests refused: ${othersRefused}.`,
  ];
}

async function main(): Promise<void> {
  const cpu = (await runtime.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown cpu";
  const load = (await runtime.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(`\n### Per-client limits, ${new Date().toISOString()}: ${runtime.name} ${runtime.version} (bench process), Fulcrum on ${FULCRUM_RUNTIME}; ${cpu}, ${(await sh(["nproc"])).trim()} cores, load average at start ${load}\n`);
  if (PARTS.includes("kernel")) {
    console.log(`| per call (ns, median of ${LOOP}-call loops, 1024 keys) | WASM | TS | faster |`);
    console.log("|---|---:|---:|---|");
    for (const r of await kernelRows()) console.log(r);
    console.log("");
  }
  if (PARTS.includes("memory")) console.log(`${await memoryLine()}\n`);
  if (!PARTS.includes("l7") && !PARTS.includes("flood") && !PARTS.includes("memory")) return;
  await sh(["mkdir", "-p", `${work}/www`]);
  await sh(["mkdir", "-p", `${work}/www/on`]);
  await runtime.writeTextFile(`${work}/www/tiny`, "xx");
  await runtime.writeTextFile(`${work}/www/on/tiny`, "xx");
  const upstream = await freePort();
  await runtime.writeTextFile(`${work}/upstream.conf`, nginxConf(`
    server { listen 127.0.0.1:${upstream}; root ${work}/www; location / { } }`, "upstream"));
  start(["nginx", "-c", `${work}/upstream.conf`]);
  await waitPort(upstream);
  if (PARTS.includes("memory")) console.log(`${await memoryInFulcrum(upstream)}\n`);
  if (PARTS.includes("l7")) {
    console.log(`One Fulcrum, a route with the limit (/on/tiny) and one without (/tiny); wrk -t1 -c64, tiny body, ${SECONDS} s per run, ${ROUNDS} interleaved rounds (order alternating), medians; upstream nginx 1 worker.\n`);
    console.log("| Fulcrum | req/s | p99 ms | CPU µs/req | errors |");
    console.log("|---|---:|---:|---:|---:|");
    for (const r of await l7Rows(upstream)) console.log(r);
    console.log("");
  }
  if (PARTS.includes("flood")) {
    console.log(`Others: h2load --h1, ${OTHERS} clients x ${OTHER_RPS} req/s (paced), key "others", ${SECONDS} s; the flood: wrk -c4 with key "flood" (rate_limit 2000/s burst 1000 per key). p99 from h2load's per-request log; ${ROUNDS} rounds, each alone then beside the flood.\n`);
    console.log("| others' p99 ms | median | rounds |");
    console.log("|---|---:|---|");
    for (const r of await floodRows(upstream)) console.log(r);
  }
}

try {
  await main();
} finally {
  await stopStarted();
  if (!runtime.env("BENCH_KEEP")) await sh(["rm", "-rf", work], { allowFail: true });
}
if (sink === 0.5) console.log(sink);
