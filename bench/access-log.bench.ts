// What the access log costs: the same Fulcrum config with `access_log` off and on (a file, in
// each format), each its own process in front of the same upstream nginx, wrk on the tiny body at
// c64 in interleaved rounds (the order turns each round, so drift from other work on the machine
// falls on both). Reports median req/s, p99 and CPU per request, and the same-run ratio on/off.
// Reuses bench/l7.bench.ts's pieces (wrk, CPU from /proc, nginx config).
//
//   bun bench/access-log.bench.ts
//   BENCH_ROUNDS=7 BENCH_SECONDS=5 BENCH_RUNTIMES=bun,deno BENCH_FORMATS=combined,json bun bench/access-log.bench.ts
import { runtime } from "../src/runtime/index.ts";
import { ensureTools, freePort, median, nginxConf, sh, start, stopStarted, waitPort, wrk, type WrkResult } from "./l7.bench.ts";

const root = new URL("..", import.meta.url).pathname;
const work = `/tmp/fulcrum-access-log-bench-${Date.now()}`;
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 5);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const RUNTIMES = (runtime.env("BENCH_RUNTIMES") ?? "bun").split(",");
const FORMATS = (runtime.env("BENCH_FORMATS") ?? "combined").split(",");
const CONNS = 64;

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
  console.log(`wrk -t1 -c${CONNS} -d${SECONDS}s on the 2-byte body, ${ROUNDS} interleaved rounds (order turned each round), medians; upstream nginx 1 worker; the log to a file in /tmp.\n`);

  const runs = new Map(variants.map((v) => [v.name, [] as WrkResult[]]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) runs.get(v.name)!.push(await wrk(v.port, "/tiny", CONNS, v.pid));
  }

  await new Promise((r) => setTimeout(r, 1500)); // the last batch of lines is flushed (1 s timer)
  console.log(`| variant | req/s | p99 ms | CPU µs/req | req/s vs log off (same run) | errors | lines logged |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|`);
  for (const v of variants) {
    const rs = runs.get(v.name)!;
    const off = runs.get(`${v.name.split(" ")[0]} log off`)!;
    const rps = median(rs.map((x) => x.rps));
    const ratio = rps / median(off.map((x) => x.rps));
    const lines = v.log ? (await sh(["sh", "-c", `wc -l < ${v.log}`])).trim() : "-";
    const requests = rs.reduce((s, x) => s + x.requests, 0);
    console.log(`| ${v.name} | ${rps.toFixed(0)} | ${median(rs.map((x) => x.p99ms)).toFixed(2)} | ${median(rs.map((x) => x.cpuUs)).toFixed(1)} | ${v.log ? ratio.toFixed(3) : "1"} | ${rs.reduce((s, x) => s + x.errors, 0)} | ${v.log ? `${lines} of ${requests} wrk counted` : "-"} |`);
  }
  console.log(`\nPer round req/s: ${variants.map((v) => `${v.name}: ${runs.get(v.name)!.map((x) => x.rps.toFixed(0)).join(", ")}`).join("; ")}.`);
}

try {
  await main();
} finally {
  await stopStarted();
  if (!runtime.env("BENCH_KEEP")) await sh(["rm", "-rf", work], { allowFail: true });
}
