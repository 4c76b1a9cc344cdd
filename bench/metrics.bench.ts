// /metrics with 1000 servers. In process: Fulcrum's registry rendering a generation of 10 pools
// of 100 servers (each with a TCP check, counters filled), median and p99 of repeated renders
// (the issue's bound: <= 10 ms), as the bytes the admin listener sends. Over HTTP: scraping a real `fulcrum run` and a real HAProxy
// (its built-in Prometheus exporter), each with the same 1000 servers, median of repeated
// scrapes in the same run. `bun bench/metrics.bench.ts` (or `deno run -A bench/metrics.bench.ts`).
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { parseConfigText } from "../src/control/schema.ts";
import { Generation } from "../src/control/generation.ts";
import { ControlState } from "../src/control/admin-state.ts";
import { fulcrumMetrics } from "../src/control/metrics-fulcrum.ts";
import { freePort } from "../test/helpers/backends.ts";
import { startFulcrum, writeTemp } from "../test/helpers/fulcrum.ts";

const POOLS = 10, PER_POOL = 100;
const RENDERS = Number(runtime.env("BENCH_RUNS") ?? 200);
const SCRAPES = 50;

// Servers on ports nothing listens on; the checks are built but never started.
const servers = (p: number) => Array.from({ length: PER_POOL }, (_, i) => `127.0.0.1:${20000 + p * PER_POOL + i}`);
const poolYaml = Array.from({ length: POOLS }, (_, p) =>
  `  p${p}:\n    servers: [${servers(p).join(", ")}]\n    health: { type: tcp, interval: 60s }`).join("\n");
const routesYaml = Array.from({ length: POOLS }, (_, p) => `  - { path_prefix: /p${p}/, pool: p${p} }`).join("\n");

function quantile(sorted: number[], f: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
}

async function inProcess(): Promise<{ median: number; p99: number; cpu: number; bytes: number; lines: number }> {
  const parsed = parseConfigText(`listeners: [{ bind: "127.0.0.1:1" }]\nroutes:\n${routesYaml}\npools:\n${poolYaml}\n`);
  if (!parsed.ok) throw new Error(parsed.message);
  const g = await Generation.build(parsed.config);
  let n = 1;
  for (const pool of g.balancer.all()) {
    for (const s of pool.servers) {
      s.requests = n * 7;
      s.traffic.bytesIn = n * 1000;
      s.traffic.bytesOut = n * 9000;
      s.traffic.responses[2] = n * 6;
      s.traffic.responses[5] = n;
      for (let k = 0; k < 20; k++) { s.traffic.responseTime.observe((n * k) % 700); s.traffic.connectTime.observe(k % 3); }
      n++;
    }
  }
  const metrics = fulcrumMetrics(new ControlState(g, null), new Map());
  let bytes: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 20; i++) bytes = metrics.render(); // warm up
  // Wall time, and CPU time (which other work on a loaded machine does not inflate).
  const times: number[] = [], cpu: number[] = [];
  for (let i = 0; i < RENDERS; i++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    bytes = metrics.render();
    const c = process.cpuUsage(c0);
    times.push(performance.now() - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  g.balancer.stop();
  const lines = bytes.reduce((n, b) => n + (b === 10 ? 1 : 0), 0);
  return { median: quantile(times, 0.5), p99: quantile(times, 0.99), cpu: quantile(cpu, 0.5), bytes: bytes.length, lines };
}

async function scrape(url: string): Promise<{ median: number; bytes: number }> {
  let body = "";
  for (let i = 0; i < 5; i++) body = await (await fetch(url)).text();
  const times: number[] = [];
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = performance.now();
    body = await (await fetch(url)).text();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: quantile(times, 0.5), bytes: body.length };
}

async function overHttp(): Promise<{ fulcrum: { median: number; bytes: number }; haproxy: { median: number; bytes: number } | null }> {
  const adminPort = await freePort();
  const fulcrum = await startFulcrum(`admin: { bind: 127.0.0.1:${adminPort} }\nlisteners: [{ bind: 127.0.0.1:${await freePort()} }]\nroutes:\n${routesYaml}\npools:\n${poolYaml}\n`);
  let f;
  try {
    f = await scrape(`http://127.0.0.1:${adminPort}/metrics`);
  } finally {
    await fulcrum.stop();
  }
  let h = null;
  try {
    const port = await freePort();
    const backends = Array.from({ length: POOLS }, (_, p) =>
      `backend p${p}\n${servers(p).map((s, i) => `  server s${i} ${s}`).join("\n")}`).join("\n");
    const cfg = await writeTemp(`global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\nfrontend stats\n  bind 127.0.0.1:${port}\n  http-request use-service prometheus-exporter if { path /metrics }\n${backends}\n`, "cfg");
    const child = runtime.spawn(["haproxy", "-f", cfg]);
    try {
      for (let i = 0; i < 50; i++) {
        if (await fetch(`http://127.0.0.1:${port}/metrics`).then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      h = await scrape(`http://127.0.0.1:${port}/metrics`);
    } finally {
      child.kill("SIGTERM");
      await child.exited;
    }
  } catch (e) {
    console.error(`haproxy: ${(e as Error).message}`);
  }
  return { fulcrum: f, haproxy: h };
}

const local = await inProcess();
console.log(`${runtime.name} ${runtime.version}: render /metrics, ${POOLS * PER_POOL} servers (${local.lines} lines, ${(local.bytes / 1024).toFixed(0)} KiB), ${RENDERS} renders: median ${local.median.toFixed(2)} ms (CPU ${local.cpu.toFixed(2)} ms), p99 ${local.p99.toFixed(2)} ms`);
const http = await overHttp();
console.log(`scrape over HTTP, ${SCRAPES} scrapes: fulcrum median ${http.fulcrum.median.toFixed(2)} ms (${(http.fulcrum.bytes / 1024).toFixed(0)} KiB)` +
  (http.haproxy ? `; haproxy promex median ${http.haproxy.median.toFixed(2)} ms (${(http.haproxy.bytes / 1024).toFixed(0)} KiB); fulcrum/haproxy ${(http.fulcrum.median / http.haproxy.median).toFixed(2)}x` : ""));
