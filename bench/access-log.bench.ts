// What the access log costs: the same Fulcrum config with `access_log` off and on (a file, in
// each format), each its own process in front of the same upstream nginx, wrk on the tiny body at
// c64. Reports median req/s, p99 and CPU per request, and the same-run ratio on/off.
// BENCH_MODE=paired (default) runs the off and the on process at the same time in each round, one
// wrk each, so whatever else the (shared) machine does falls on both alike, and takes the median
// of the per-round ratios; BENCH_MODE=sequential runs them one after another in interleaved
// rounds (the order turns each round). Reuses bench/l7.bench.ts's pieces (wrk, CPU from /proc,
// the nginx config).
//
//   bun bench/access-log.bench.ts
//   BENCH_ROUNDS=7 BENCH_SECONDS=5 BENCH_RUNTIMES=bun,deno BENCH_FORMATS=combined,json BENCH_MODE=sequential bun bench/access-log.bench.ts
import { runtime } from "../src/runtime/index.ts";
import { ensureTools, freePort, median, nginxConf, sh, start, stopStarted, waitPort, wrk, type WrkResult } from "./l7.bench.ts";

const root = new URL("..", import.meta.url).pathname;
const work = `/tmp/fulcrum-access-log-bench-${Date.now()}`;
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 5);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const RUNTIMES = (runtime.env("BENCH_RUNTIMES") ?? "bun").split(",");
const FORMATS = (runtime.env("BENCH_FORMATS") ?? "combined").split(",");
const CONNS = 64;
const MODE = runtime.env("BENCH_MODE") ?? "paired";

const commands: Record<string, (config: string) => string[]> = {
  bun: (config) => [`${root}node_modules/.bin/bun`, `${root}src/cli/main.ts`, "run", "--config", config],
  deno: (config) => [`${root}node_modules/.bin/deno`, "run", "-A", "--no-check", `${root}src/cli/main.ts`, "run", "--config", config],
};

async function main(): Promise<void> {
  await ensureTools();
  await sh(["mkdir", "-p", `${work}/www`]);
  await runtime.writeTextFile(`${work}/www/tiny`, "xx");
  const upstream = await freePort();
  await runtime.writeTextFile(`${work}/upstream.conf`, nginxConf(`server { listen 127.0.0.1:${upstream}; root ${work}/www; location / { } }`, "upstream", work));
  start(["nginx", "-c", `${work}/upstream.conf`]);
  await waitPort(upstream);

  // One process per (runtime, log setting).
  const variants: { name: string; port: number; pid: number; log: string | null }[] = [];
  for (const rt of RUNTIMES) {
    for (const log of [null, ...FORMATS]) {
      const port = await freePort();
      const name = `${rt} ${log ? `log ${log}` : "log off"}`;
      const file = `${work}/${rt}-${log ?? "off"}.yaml`;
      const accessLog = log ? `\n    access_log: { path: ${work}/${rt}-${log}.log, format: ${log} }` : "";
      await runtime.writeTextFile(file, `listeners:
  - bind: 127.0.0.1:${port}
    max_connections: 20000${accessLog}
pools:
  up: { servers: [127.0.0.1:${upstream}] }
`);
      const pid = start(commands[rt](file)).pid;
      await waitPort(port);
      variants.push({ name, port, pid, log: log ? `${work}/${rt}-${log}.log` : null });
    }
  }

  const cpu = (await runtime.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const cores = (await runtime.readTextFile("/proc/cpuinfo")).split("\n").filter((l) => l.startsWith("processor")).length;
  const load = (await runtime.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(`\n### Access log on vs off, ${new Date().toISOString()}\n`);
  console.log(`${cpu}, ${cores} cores (shared); Bun ${(await sh([`${root}node_modules/.bin/bun`, "--version"])).trim()}${RUNTIMES.includes("deno") ? `, ${(await sh([`${root}node_modules/.bin/deno`, "--version"])).split("\n")[0]}` : ""}; load average at start ${load}.`);
  const how = MODE === "paired" ? "each log-on process paired with the log-off one of its runtime, both loaded at the same time in every round (one wrk each)" : "one process at a time, interleaved rounds (order turned each round)";
  console.log(`wrk -t1 -c${CONNS} -d${SECONDS}s on the 2-byte body, ${ROUNDS} rounds, ${how}; medians; upstream nginx 1 worker; the log to a file in /tmp.\n`);

  const runs = new Map(variants.map((v) => [v.name, [] as WrkResult[]]));
  /** Per round, on/off req/s of each log-on variant measured beside its log-off peer. */
  const ratios = new Map(variants.map((v) => [v.name, [] as number[]]));
  const offOf = (v: typeof variants[number]) => variants.find((o) => o.log === null && o.name.split(" ")[0] === v.name.split(" ")[0])!;
  for (let r = 0; r < ROUNDS; r++) {
    if (MODE === "paired") {
      for (const v of variants.filter((x) => x.log !== null)) {
        const off = offOf(v);
        const [a, b] = await Promise.all([wrk(off.port, "/tiny", CONNS, off.pid), wrk(v.port, "/tiny", CONNS, v.pid)]);
        runs.get(off.name)!.push(a);
        runs.get(v.name)!.push(b);
        ratios.get(v.name)!.push(b.rps / a.rps);
      }
    } else {
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) runs.get(v.name)!.push(await wrk(v.port, "/tiny", CONNS, v.pid));
    }
  }

  await new Promise((r) => setTimeout(r, 1500)); // the last batch of lines is flushed (1 s timer)
  console.log(`| variant | req/s | p99 ms | CPU µs/req | req/s vs log off (same run) | errors | lines logged |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|`);
  for (const v of variants) {
    const rs = runs.get(v.name)!;
    const rps = median(rs.map((x) => x.rps));
    const ratio = MODE === "paired" ? median(ratios.get(v.name)!) : rps / median(runs.get(offOf(v).name)!.map((x) => x.rps));
    const lines = v.log ? (await sh(["sh", "-c", `wc -l < ${v.log}`])).trim() : "-";
    const requests = rs.reduce((s, x) => s + x.requests, 0);
    console.log(`| ${v.name} | ${rps.toFixed(0)} | ${median(rs.map((x) => x.p99ms)).toFixed(2)} | ${median(rs.map((x) => x.cpuUs)).toFixed(1)} | ${v.log ? ratio.toFixed(3) : "1"} | ${rs.reduce((s, x) => s + x.errors, 0)} | ${v.log ? `${lines} of ${requests} wrk counted` : "-"} |`);
  }
  if (MODE === "paired") console.log(`\nPer round on/off ratio: ${variants.filter((v) => v.log).map((v) => `${v.name}: ${ratios.get(v.name)!.map((x) => x.toFixed(3)).join(", ")}`).join("; ")}.`);
  console.log(`\nPer round req/s: ${variants.map((v) => `${v.name}: ${runs.get(v.name)!.map((x) => x.rps.toFixed(0)).join(", ")}`).join("; ")}.`);
}

try {
  await main();
} finally {
  await stopStarted();
  if (!runtime.env("BENCH_KEEP")) await sh(["rm", "-rf", work], { allowFail: true });
}
