// L7 proxy throughput against nginx and HAProxy on this machine: the same upstream (nginx, one
// worker), equivalent proxy configs (one worker/thread each, keep-alive upstream connections,
// and the header work of Fulcrum's defaults on every proxy: X-Forwarded-For/Proto/Host,
// X-Real-IP, Via, a generated X-Request-ID sent upstream and returned to the client), and wrk in
// interleaved rounds. Besides req/s and p99 it reports each proxy's CPU time per request
// (user + system from /proc over the run, all its threads), which a busy machine disturbs less.
//
//   bun bench/l7.bench.ts                       all cases
//   BENCH_CASES=tiny:64 BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_PROXIES=nginx,haproxy,fulcrum-bun bun bench/l7.bench.ts
//   BENCH_WORKERS=2 ...: nginx worker_processes 2, HAProxy nbthread 2, Fulcrum workers: 2
//
// Installs nginx, haproxy and wrk from Debian when they are missing. Prints Markdown.
import { provision } from "../scripts/provision.ts";
import { runtime, type Child } from "../src/runtime/index.ts";
import { parseWrk as parseWrkSummary } from "../test/helpers/wrk.ts";

const root = new URL("..", import.meta.url).pathname;
export const work = `/tmp/fulcrum-l7-bench-${Date.now()}`;
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 3);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const CASES = (runtime.env("BENCH_CASES") ?? "tiny:64,1k:64,64k:64,1m:64,tiny:1000").split(",").map((c) => {
  const [body, conns] = c.split(":");
  return { body, conns: Number(conns) };
});
const PROXIES = (runtime.env("BENCH_PROXIES") ?? "nginx,haproxy,fulcrum-bun,fulcrum-deno").split(",");
/** Processes (threads for HAProxy) each proxy serves with; the upstream nginx keeps one. */
const WORKERS = Number(runtime.env("BENCH_WORKERS") ?? 1);
const BODY_FILES: Record<string, number> = { tiny: 2, "1k": 1024, "64k": 65536, "1m": 1048576 };

export async function sh(cmd: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  const child = runtime.spawn(cmd);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  if (code !== 0 && !opts.allowFail) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}`);
  return out + err;
}

/** The peers the L7 benches run, installed from Debian when missing (the test suite's table). */
export async function ensureTools(): Promise<void> {
  const missing = provision(undefined, ["nginx", "haproxy", "wrk"]);
  if (missing.length > 0) throw new Error(`cannot run without ${missing.map((p) => p.pkg).join(" ")}`);
}

export const started: Child[] = [];
const pids: Record<string, number> = {};

/** Restarts a process's peak-RSS counter (Linux: clear_refs 5), so each case reports its own. */
async function resetPeakRss(pid: number): Promise<void> {
  await sh(["sh", "-c", `echo 5 > /proc/${pid}/clear_refs`], { allowFail: true });
}

/** Peak resident memory of a process, MB (VmHWM). */
async function peakRssMb(pid: number): Promise<number> {
  const status = await runtime.readTextFile(`/proc/${pid}/status`).catch(() => "");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

export function start(cmd: string[]): Child {
  const child = runtime.spawn(cmd);
  started.push(child);
  void new Response(child.stdout).text().catch(() => {});
  void new Response(child.stderr).text().catch(() => {});
  return child;
}

export async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const out = await sh(["sh", "-c", `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:${port}/tiny || true`], { allowFail: true });
    if (out.trim() === "200") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing answered on port ${port}`);
}

export interface WrkResult { rps: number; p99ms: number; errors: number; requests: number; cpuUs: number }

export function parseWrk(out: string): Omit<WrkResult, "cpuUs"> {
  const { rps, p99ms, errors, requests } = parseWrkSummary(out);
  return { rps, p99ms, errors, requests };
}

/** CPU seconds (user + system, all threads) of a process and its children: nginx's master
 * forks the worker that does the work. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await runtime.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  // Fields after the command name (which may hold spaces): utime is the 14th field overall.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  let ticks = Number(f[11] ?? 0) + Number(f[12] ?? 0);
  const children = await runtime.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
  for (const c of children.trim().split(/\s+/).filter(Boolean)) ticks += await cpuSeconds(Number(c)) * 100;
  return ticks / 100; // USER_HZ
}

export async function wrk(port: number, path: string, conns: number, pid: number): Promise<WrkResult> {
  const before = await cpuSeconds(pid);
  const out = await sh(["wrk", "-t1", `-c${conns}`, `-d${SECONDS}s`, "--latency", "--timeout", "5s", `http://127.0.0.1:${port}${path}`], { allowFail: true });
  const r = parseWrk(out);
  return { ...r, cpuUs: r.requests > 0 ? (await cpuSeconds(pid) - before) * 1e6 / r.requests : NaN };
}

/** A loopback port the kernel just handed out (bound, then released). */
export async function freePort(): Promise<number> {
  const l = await runtime.listenTcp({ hostname: "127.0.0.1", port: 0, accept: () => ({ data() {}, drain() {}, close() {} }) });
  const port = l.port;
  await l.stop();
  return port;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  await ensureTools();
  await sh(["mkdir", "-p", `${work}/www`]);
  for (const [name, size] of Object.entries(BODY_FILES)) await runtime.writeTextFile(`${work}/www/${name}`, "x".repeat(size));
  const upstream = await freePort();
  const ports: Record<string, number> = {};
  for (const p of ["nginx", "haproxy", "fulcrum-bun", "fulcrum-deno"]) ports[p] = await freePort();

  await runtime.writeTextFile(`${work}/upstream.conf`, nginxConf(`
    server { listen 127.0.0.1:${upstream}; root ${work}/www; location / { } }`, "upstream"));
  await runtime.writeTextFile(`${work}/nginx.conf`, nginxConf(`
    upstream up { server 127.0.0.1:${upstream}; keepalive 128; }
    server {
      listen 127.0.0.1:${ports.nginx} backlog=4096;
      location / {
        proxy_pass http://up;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header Via "1.1 nginx";
        proxy_set_header X-Request-ID $request_id;
        add_header X-Request-ID $request_id always;
      }
    }`, "proxy", work, WORKERS));
  await runtime.writeTextFile(`${work}/haproxy.cfg`, `global
  nbthread ${WORKERS}
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
frontend f
  bind 127.0.0.1:${ports.haproxy}
  unique-id-format %{+X}o%ci%cp%fp%Ts%rt%pid
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Real-IP %[src]
  http-request set-header Via "1.1 haproxy"
  http-request set-header X-Request-ID %[unique-id]
  http-response set-header X-Request-ID %[unique-id]
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:${upstream} maxconn 8000
`);
  const fulcrumConf = (port: number) => `workers: ${WORKERS}
listeners:
  - bind: 127.0.0.1:${port}
    max_connections: 20000
pools:
  up: { servers: [127.0.0.1:${upstream}] }
`;
  await runtime.writeTextFile(`${work}/fulcrum-bun.yaml`, fulcrumConf(ports["fulcrum-bun"]));
  await runtime.writeTextFile(`${work}/fulcrum-deno.yaml`, fulcrumConf(ports["fulcrum-deno"]));

  start(["nginx", "-c", `${work}/upstream.conf`]);
  const commands: Record<string, string[]> = {
    nginx: ["nginx", "-c", `${work}/nginx.conf`],
    haproxy: ["haproxy", "-f", `${work}/haproxy.cfg`],
    "fulcrum-bun": [`${root}node_modules/.bin/bun`, `${root}src/cli/main.ts`, "run", "--config", `${work}/fulcrum-bun.yaml`],
    "fulcrum-deno": [`${root}node_modules/.bin/deno`, "run", "-A", "--no-check", `${root}src/cli/main.ts`, "run", "--config", `${work}/fulcrum-deno.yaml`],
  };
  await waitPort(upstream);
  for (const p of PROXIES) { pids[p] = start(commands[p]).pid; await waitPort(ports[p]); }

  const cpu = (await runtime.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const versions = (await sh(["sh", "-c", "nginx -v 2>&1; haproxy -v | head -1; wrk -v 2>&1 | head -1"], { allowFail: true })).trim().split("\n").map((l) => l.split(" ").slice(0, 3).join(" ")).join("; ");
  console.log(`\n### L7 proxy, ${new Date().toISOString()}\n\n${cpu}, ${versions}; Bun ${await sh([`${root}node_modules/.bin/bun`, "--version"])}`.trim());
  const load = (await runtime.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(`wrk -t1, ${SECONDS} s per run, ${ROUNDS} interleaved rounds, medians; ${WORKERS} worker(s) per proxy; upstream nginx 1 worker; load average at start ${load}.\n`);
  console.log(`| case | ${PROXIES.map((p) => `${p} req/s (p99 ms) [CPU µs/req]`).join(" | ")} | ${PROXIES.filter((p) => p.startsWith("fulcrum")).map((p) => `${p}/nginx, /haproxy req/s (p99)`).join(" | ")} | errors |`);
  console.log(`|---|${PROXIES.map(() => "---:").join("|")}|${PROXIES.filter((p) => p.startsWith("fulcrum")).map(() => "---:").join("|")}|---:|`);
  const fulcrums = PROXIES.filter((p) => p.startsWith("fulcrum"));
  const peaks: string[] = [];
  for (const c of CASES) {
    for (const p of fulcrums) await resetPeakRss(pids[p]);
    const runs: Record<string, WrkResult[]> = Object.fromEntries(PROXIES.map((p) => [p, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of PROXIES) runs[p].push(await wrk(ports[p], `/${c.body}`, c.conns, pids[p]));
    }
    const rps = (p: string) => median(runs[p].map((x) => x.rps));
    const p99 = (p: string) => median(runs[p].map((x) => x.p99ms));
    const cpuUs = (p: string) => median(runs[p].map((x) => x.cpuUs));
    const errors = PROXIES.map((p) => `${p}:${runs[p].reduce((s, x) => s + x.errors, 0)}`).join(" ");
    // Same-run ratios: throughput, and p99 (lower is better) in brackets.
    const ratio = (p: string, peer: string) => runs[peer] ? `${(rps(p) / rps(peer)).toFixed(2)} (${(p99(p) / p99(peer)).toFixed(2)})` : "-";
    console.log(`| ${c.body}, c${c.conns} | ${PROXIES.map((p) => `${rps(p).toFixed(0)} (${p99(p).toFixed(2)}) [${cpuUs(p).toFixed(0)}]`).join(" | ")} | ${
      PROXIES.filter((p) => p.startsWith("fulcrum")).map((p) => `${ratio(p, "nginx")}, ${ratio(p, "haproxy")}`).join(" | ")
    } | ${errors} |`);
    const rss = await Promise.all(fulcrums.map(async (p) => `${p} ${(await peakRssMb(pids[p])).toFixed(0)} MB`));
    peaks.push(`${c.body} c${c.conns}: ${rss.join(", ")}`);
  }
  console.log(`\nPeak RSS per case (VmHWM, reset before each case): ${peaks.join("; ")}.`);
}

export function nginxConf(body: string, name: string, dir = work, workers = 1): string {
  return `worker_processes ${workers};
daemon off;
pid ${dir}/${name}.pid;
error_log ${dir}/${name}-error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  ${body}
}
`;
}

/** Ends every process start() began. */
export async function stopStarted(): Promise<void> {
  for (const c of started) c.kill("SIGTERM");
  await Promise.all(started.map((c) => c.exited));
}

// Other benches (bench/access-log.bench.ts, bench/limits.bench.ts) import the pieces above without running this one.
if (import.meta.main) {
  try {
    await main();
  } finally {
    await stopStarted();
    if (!runtime.env("BENCH_KEEP")) await sh(["rm", "-rf", work], { allowFail: true });
  }
}
