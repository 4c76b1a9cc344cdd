// L4 TCP proxy against nginx `stream` and HAProxy `mode tcp` (one worker/thread each), in one
// run, interleaved rounds, medians: small request/response (redis-benchmark GET of a 100-byte
// value over kept connections), connections per second (redis-benchmark -k 0: a connection per
// request), a bulk 1 GiB transfer (curl through the proxy from an nginx serving a 1 GiB file),
// a UDP case (dnsperf through the proxy to dnsmasq, a session per query as nginx proxy_responses 1
// makes it; HAProxy has no UDP proxying), and the RSS of each proxy holding 10,000 idle
// connections (to redis-server). nginx runs without
// a master process, so its one process is the worker that serves (and whose RSS is measured).
//
//   bun bench/l4.bench.ts
//   BENCH_ROUNDS=3 BENCH_PROXIES=nginx,haproxy,fulcrum-bun,fulcrum-deno BENCH_IDLE=10000 bun bench/l4.bench.ts
//   BENCH_ROUNDS=0 bun bench/l4.bench.ts        idle-connection RSS only
//   BENCH_CASES=udp-dns bun bench/l4.bench.ts    some cases only
//   BENCH_BEFORE=/tmp/old BENCH_PROXIES=nginx,before-bun,fulcrum-bun bun bench/l4.bench.ts
//                                                 an earlier tree (git archive) beside this one
//
// Needs nginx (and libnginx-mod-stream), haproxy, redis-server (with redis-benchmark), curl,
// dnsmasq and dnsperf. Prints Markdown.
import net from "node:net";
import { runtime, type Child } from "../src/runtime/index.ts";

const root = new URL("..", import.meta.url).pathname;
const work = `/tmp/fulcrum-l4-bench-${Date.now()}`;
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 3);
const PROXIES = (runtime.env("BENCH_PROXIES") ?? "nginx,haproxy,fulcrum-bun,fulcrum-deno").split(",");
// A proxied connection holds two descriptors in the proxy: under a hard RLIMIT_NOFILE of 20,000
// (this container's, which root cannot raise) 10,000 do not fit, so the default is what does.
const FD_HARD_LIMIT = Number((await sh(["sh", "-c", "ulimit -Hn"])).trim()) || 1024;
const IDLE = Number(runtime.env("BENCH_IDLE") ?? Math.min(10_000, Math.floor((FD_HARD_LIMIT - 200) / 2)));
const BEFORE = runtime.env("BENCH_BEFORE")?.replace(/\/?$/, "/");
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const REQUESTS = Number(runtime.env("BENCH_REQUESTS") ?? 200_000);
const CONNECTS = Number(runtime.env("BENCH_CONNECTS") ?? 20_000);
const BULK_BYTES = 1024 ** 3;

async function sh(cmd: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  const child = runtime.spawn(cmd);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  if (code !== 0 && !opts.allowFail) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}`);
  return out + err;
}

const started: Child[] = [];
const outputs: string[] = [];

/** Starts a process with its descriptor limit raised to the hard limit (exec keeps the PID). */
function start(cmd: string[]): Child {
  const child = runtime.spawn(["sh", "-c", `ulimit -n ${FD_HARD_LIMIT}; exec "$@"`, "sh", ...cmd]);
  started.push(child);
  const i = outputs.push("") - 1;
  const keep = (t: string) => outputs[i] += t;
  void new Response(child.stdout).text().then(keep).catch(() => {});
  void new Response(child.stderr).text().then(keep).catch(() => {});
  return child;
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (await accepting(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listening on port ${port}`);
}

async function freePort(): Promise<number> {
  const l = await runtime.listenTcp({ hostname: "127.0.0.1", port: 0, accept: () => ({ data() {}, drain() {}, close() {} }) });
  const port = l.port;
  await l.stop();
  return port;
}

async function rssMb(pid: number): Promise<number> {
  const status = await runtime.readTextFile(`/proc/${pid}/status`).catch(() => "");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** CPU seconds the process has used so far, every thread, user and system (/proc/PID/stat). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await runtime.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number((await sh(["getconf", "CLK_TCK"])).trim()) || 100;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** redis-benchmark's requests per second for one test (-q output). */
async function redisBenchmark(port: number, args: string[]): Promise<number> {
  const out = await sh(["redis-benchmark", "-h", "127.0.0.1", "-p", String(port), "-q", ...args], { allowFail: true });
  return Number(/([\d.]+) requests per second/.exec(out)?.[1] ?? 0);
}

/** Bytes per second curl downloads through the proxy. */
async function bulk(port: number): Promise<number> {
  const out = await sh(["curl", "-s", "-o", "/dev/null", "--max-time", "120", "-w", "%{size_download} %{speed_download}", `http://127.0.0.1:${port}/1g`], { allowFail: true });
  const [size, speed] = out.trim().split(" ").map(Number);
  return size === BULK_BYTES ? speed : 0;
}

/** Opens `n` connections through the proxy, each proven through with a PING; returns them. */
async function openIdle(port: number, n: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  const batch = 500;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => new Promise<void>((resolve, reject) => {
      const s = net.connect({ port, host: "127.0.0.1" });
      sockets.push(s);
      s.once("error", reject);
      s.once("connect", () => s.write("PING\r\n"));
      s.once("data", () => resolve());
    })));
  }
  return sockets;
}

const ALL_CASES = ["get-100B", "connects", "bulk-1GiB", "udp-dns"] as const;
type Case = typeof ALL_CASES[number];
const CASES = (runtime.env("BENCH_CASES")?.split(",") ?? [...ALL_CASES]) as Case[];
const UDP_SECONDS = 10;

/** Queries per second dnsperf gets answered through the proxy. */
async function dnsperf(port: number, queries: string): Promise<number> {
  const out = await sh(["dnsperf", "-s", "127.0.0.1", "-p", String(port), "-d", queries, "-l", String(UDP_SECONDS), "-c", "20", "-q", "100"], { allowFail: true });
  return Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
}

async function main(): Promise<void> {
  if (PROXIES.includes("nginx") && !(await runtime.exists(STREAM_MODULE))) {
    console.error("installing libnginx-mod-stream (nginx's stream module) from Debian");
    await sh(["sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnginx-mod-stream"]);
  }
  await sh(["mkdir", "-p", `${work}/www`]);
  await sh(["truncate", "-s", String(BULK_BYTES), `${work}/www/1g`]);
  const redis = await freePort(), http = await freePort(), dns = await freePort();
  const ports: Record<string, { redis: number; bulk: number; udp: number }> = {};
  for (const p of PROXIES) ports[p] = { redis: await freePort(), bulk: await freePort(), udp: await freePort() };
  await runtime.writeTextFile(`${work}/queries`, Array.from({ length: 100 }, (_, i) => `q${i}.bench.test A`).join("\n") + "\n");
  if (CASES.includes("udp-dns")) {
    start(["dnsmasq", "--no-daemon", `--port=${dns}`, "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
      "--address=/bench.test/192.0.2.1", `--pid-file=${work}/dnsmasq.pid`, "--user=root", "--cache-size=0", "--dns-forward-max=10000"]);
  }

  start(["redis-server", "--port", String(redis), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "30000", "--protected-mode", "no"]);
  await runtime.writeTextFile(`${work}/upstream.conf`, `worker_processes 1;
daemon off;
pid ${work}/upstream.pid;
error_log ${work}/upstream-error.log warn;
events { worker_connections 1024; }
http { access_log off; sendfile on; server { listen 127.0.0.1:${http}; root ${work}/www; location / { } } }
`);
  start(["nginx", "-p", work, "-c", `${work}/upstream.conf`]);

  const configs: Record<string, () => Promise<string[]>> = {
    nginx: async () => {
      await runtime.writeTextFile(`${work}/nginx.conf`, `load_module ${STREAM_MODULE};
worker_processes 1;
master_process off;
daemon off;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
worker_rlimit_nofile ${FD_HARD_LIMIT};
events { worker_connections ${FD_HARD_LIMIT - 100}; }
stream {
  server { listen 127.0.0.1:${ports.nginx.redis} backlog=4096; proxy_pass 127.0.0.1:${redis}; }
  server { listen 127.0.0.1:${ports.nginx.bulk}; proxy_pass 127.0.0.1:${http}; }
  server { listen 127.0.0.1:${ports.nginx.udp} udp; proxy_pass 127.0.0.1:${dns}; proxy_responses 1; proxy_timeout 30s; }
}
`);
      return ["nginx", "-p", work, "-c", `${work}/nginx.conf`];
    },
    haproxy: async () => {
      await runtime.writeTextFile(`${work}/haproxy.cfg`, `global
  nbthread 1
  maxconn ${Math.floor((FD_HARD_LIMIT - 100) / 2)}
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend redis
  bind 127.0.0.1:${ports.haproxy.redis}
  default_backend redis
backend redis
  server r 127.0.0.1:${redis}
frontend bulk
  bind 127.0.0.1:${ports.haproxy.bulk}
  default_backend bulk
backend bulk
  server h 127.0.0.1:${http}
`);
      return ["haproxy", "-db", "-f", `${work}/haproxy.cfg`];
    },
  };
  // fulcrum-*: this checkout; before-*: the checkout at BENCH_BEFORE (a tree of an earlier commit),
  // so a change is measured against what it replaces in the same run.
  const trees: [string, string][] = [["fulcrum", root], ...(BEFORE ? [["before", BEFORE] as [string, string]] : [])];
  for (const [label, tree] of trees) {
    for (const rt of ["bun", "deno"]) {
      configs[`${label}-${rt}`] = async () => {
        const p = ports[`${label}-${rt}`];
        await runtime.writeTextFile(`${work}/${label}-${rt}.yaml`, `listeners:
  - { name: redis, bind: 127.0.0.1:${p.redis}, protocol: tcp, pool: redis, max_connections: 30000 }
  - { name: bulk, bind: 127.0.0.1:${p.bulk}, protocol: tcp, pool: bulk }
  - { name: udp, bind: 127.0.0.1:${p.udp}, protocol: udp, pool: dns, responses: 1, max_connections: 30000 }
pools:
  redis: { servers: [127.0.0.1:${redis}] }
  bulk: { servers: [127.0.0.1:${http}] }
  dns: { servers: [127.0.0.1:${dns}] }
`);
        const cli = [`${tree}src/cli/main.ts`, "run", "--config", `${work}/${label}-${rt}.yaml`];
        return rt === "bun" ? [`${root}node_modules/.bin/bun`, ...cli] : [`${root}node_modules/.bin/deno`, "run", "-A", "--no-check", ...cli];
      };
    }
  }

  if (CASES.includes("udp-dns")) await new Promise((r) => setTimeout(r, 500)); // dnsmasq binds at once; no TCP port to wait on
  await waitPort(redis);
  await waitPort(http);
  await sh(["redis-cli", "-p", String(redis), "SET", "key:__rand_int__", "v".repeat(100)]);
  const pids: Record<string, number> = {};
  for (const p of PROXIES) {
    pids[p] = start(await configs[p]()).pid;
    await waitPort(ports[p].redis);
    await waitPort(ports[p].bulk);
  }

  const cpu = (await runtime.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const versions = (await sh(["sh", "-c", "nginx -v 2>&1; haproxy -v | head -1; redis-server --version"], { allowFail: true }))
    .trim().split("\n").map((l) => l.split(" ").slice(0, 3).join(" ")).join("; ");
  console.log(`\n### L4 TCP proxy, ${new Date().toISOString()}\n\n${cpu} (${await sh(["nproc"])}`.trim() + ` cores, shared), ${versions}; Bun ${(await sh([`${root}node_modules/.bin/bun`, "--version"])).trim()}`);
  console.log(`${ROUNDS} interleaved rounds, medians. get-100B: redis-benchmark -c 50 -n ${REQUESTS} -t get (100-byte value); connects: redis-benchmark -k 0 -c 50 -n ${CONNECTS} -t ping_inline (one connection per request); bulk: curl of 1 GiB from nginx (sendfile).\n`);

  const results: Record<string, Record<Case, number[]>> = {};
  const cpuUse: typeof results = {};
  for (const p of PROXIES) results[p] = { "get-100B": [], connects: [], "bulk-1GiB": [], "udp-dns": [] };
  for (const p of PROXIES) cpuUse[p] = { "get-100B": [], connects: [], "bulk-1GiB": [], "udp-dns": [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CASES) {
      for (const p of PROXIES) {
        if (c === "udp-dns" && p === "haproxy") continue; // HAProxy proxies no UDP
        const port = ports[p];
        const cpuBefore = await cpuSeconds(pids[p]);
        const value = c === "get-100B" ? await redisBenchmark(port.redis, ["-c", "50", "-n", String(REQUESTS), "-t", "get"])
          : c === "connects" ? await redisBenchmark(port.redis, ["-k", "0", "-c", "50", "-n", String(CONNECTS), "-t", "ping_inline"])
          : c === "udp-dns" ? await dnsperf(port.udp, `${work}/queries`)
          : await bulk(port.bulk);
        results[p][c].push(value);
        // CPU the proxy spent per unit of work: what the shared machine's load changes least.
        const units = c === "get-100B" ? REQUESTS : c === "connects" ? CONNECTS : c === "udp-dns" ? value * UDP_SECONDS : BULK_BYTES / 1024 ** 3;
        cpuUse[p][c].push(value > 0 ? (await cpuSeconds(pids[p]) - cpuBefore) / units : NaN);
        console.error(`round ${round + 1} ${c} ${p}: ${value.toFixed(0)}`);
      }
    }
  }
  if (ROUNDS > 0) { printThroughput(results); printCpu(cpuUse); }
  await idleRss(ports, pids);
}

function printThroughput(results: Record<string, Record<Case, number[]>>): void {
  const fmt = (c: Case, v: number | undefined) => v === undefined ? "-" : c === "bulk-1GiB" ? `${(v / 1024 ** 2).toFixed(0)} MiB/s` : `${v.toFixed(0)}/s`;
  const fulcrums = PROXIES.filter((p) => p.startsWith("fulcrum") || p.startsWith("before"));
  console.log(`| case | ${PROXIES.join(" | ")} | ${fulcrums.map((f) => `${f} / nginx, / haproxy`).join(" | ")} |`);
  console.log(`|---|${PROXIES.map(() => "---:").join("|")}|${fulcrums.map(() => "---:").join("|")}|`);
  for (const c of CASES) {
    const m = Object.fromEntries(PROXIES.map((p) => [p, median(results[p][c])]));
    const ratio = (f: string, peer: string) => m[peer] && m[f] !== undefined ? (m[f] / m[peer]).toFixed(2) : "-";
    console.log(`| ${c} | ${PROXIES.map((p) => fmt(c, m[p])).join(" | ")} | ${fulcrums.map((f) => `${ratio(f, "nginx")}, ${ratio(f, "haproxy")}`).join(" | ")} |`);
  }

}

/** The proxy's CPU time per request (per GiB for bulk), medians, and the ratio peer / Fulcrum:
 * above 1.0 Fulcrum spends less CPU than the peer for the same work. */
function printCpu(cpu: Record<string, Record<Case, number[]>>): void {
  const fmt = (c: Case, v: number | undefined) => v === undefined || Number.isNaN(v) ? "-" : c === "bulk-1GiB" ? `${v.toFixed(2)} s/GiB` : `${(v * 1e6).toFixed(1)} µs`;
  const fulcrums = PROXIES.filter((p) => p.startsWith("fulcrum") || p.startsWith("before"));
  console.log(`\nProxy CPU per request (user + system, all threads; bulk: per GiB), medians; ratio = peer's CPU / Fulcrum's (>= 1.0: Fulcrum as cheap or cheaper)\n`);
  console.log(`| case | ${PROXIES.join(" | ")} | ${fulcrums.map((f) => `nginx / ${f}, haproxy / ${f}`).join(" | ")} |`);
  console.log(`|---|${PROXIES.map(() => "---:").join("|")}|${fulcrums.map(() => "---:").join("|")}|`);
  for (const c of CASES) {
    const m = Object.fromEntries(PROXIES.map((p) => [p, cpu[p][c].length ? median(cpu[p][c]) : undefined]));
    const ratio = (f: string, peer: string) => m[peer] && m[f] ? (m[peer]! / m[f]!).toFixed(2) : "-";
    console.log(`| ${c} | ${PROXIES.map((p) => fmt(c, m[p])).join(" | ")} | ${fulcrums.map((f) => `${ratio(f, "nginx")}, ${ratio(f, "haproxy")}`).join(" | ")} |`);
  }
}

async function idleRss(ports: Record<string, { redis: number }>, pids: Record<string, number>): Promise<void> {
  // Idle connections, one proxy at a time (each proxied connection costs the upstream one too).
  const rss: Record<string, { before: number; after: number }> = {};
  for (const p of PROXIES) {
    const before = await rssMb(pids[p]);
    const sockets = await openIdle(ports[p].redis, IDLE);
    await new Promise((r) => setTimeout(r, 2000)); // let collectors run on the idle process
    rss[p] = { before, after: await rssMb(pids[p]) };
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 2000));
  }
  console.log(`\n| ${IDLE} idle connections | ${PROXIES.join(" | ")} |`);
  console.log(`|---|${PROXIES.map(() => "---:").join("|")}|`);
  console.log(`| RSS before, MB | ${PROXIES.map((p) => rss[p].before.toFixed(0)).join(" | ")} |`);
  console.log(`| RSS holding them, MB | ${PROXIES.map((p) => rss[p].after.toFixed(0)).join(" | ")} |`);
}

try {
  await main();
} catch (e) {
  console.error(`${(e as Error).message}\n${outputs.join("\n")}`);
  throw e;
} finally {
  for (const c of started) c.kill("SIGTERM");
  await Promise.all(started.map((c) => c.exited));
  await sh(["rm", "-rf", work], { allowFail: true });
}
