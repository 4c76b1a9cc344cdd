// HTTP/2 over TLS against nginx: h2load, 64 clients x 10 streams, a tiny body, through each proxy
// to the same upstream (nginx, one worker, HTTP/1.1 keep-alive). nginx proxies with one worker
// and `listen ... ssl http2`; Fulcrum with a TLS listener (ALPN h2). Rounds interleave; medians.
//
//   bun bench/h2.bench.ts
//   BENCH_ROUNDS=3 BENCH_SECONDS=5 BENCH_PROXIES=nginx,fulcrum-bun,fulcrum-deno bun bench/h2.bench.ts
//
// p99 comes from h2load's per-request log (--log-file: start, status, microseconds); CPU per request
// from /proc (less sensitive to a loaded machine than req/s).
import { runtime, type Child } from "../src/runtime/index.ts";
import { median, nginxConf } from "./l7.bench.ts";

const root = new URL("..", import.meta.url).pathname;
const work = `/tmp/fulcrum-h2-bench-${Date.now()}`;
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 3);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const PROXIES = (runtime.env("BENCH_PROXIES") ?? "nginx,fulcrum-bun").split(",");
const started: Child[] = [];

async function sh(cmd: string[], allowFail = false): Promise<string> {
  const child = runtime.spawn(cmd);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  if (code !== 0 && !allowFail) throw new Error(`${cmd.join(" ")} exited ${code}: ${err}`);
  return out + err;
}

function start(cmd: string[]): Child {
  const child = runtime.spawn(cmd);
  started.push(child);
  void new Response(child.stdout).text().catch(() => {});
  void new Response(child.stderr).text().catch(() => {});
  return child;
}

async function freePort(): Promise<number> {
  const l = await runtime.listenTcp({ hostname: "127.0.0.1", port: 0, accept: () => ({ data() {}, drain() {}, close() {} }) });
  const port = l.port;
  await l.stop();
  return port;
}

async function waitUp(url: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if ((await sh(["sh", "-c", `curl -sk -o /dev/null -w '%{http_code}' ${url} || true`], true)).trim() === "200") return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing answered at ${url}`);
}

interface Result { rps: number; p99ms: number; failed: number; cpuUs: number }

/** CPU seconds (user + system) used so far by a process and its children's threads: utime and
 * stime of each pid in /proc, in clock ticks of 1/100 s. */
async function cpuSeconds(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await runtime.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return ticks / 100;
}

/** The pids doing a proxy's work: the process, and its children (nginx's worker). */
async function workPids(pid: number): Promise<number[]> {
  const kids = (await sh(["sh", "-c", `pgrep -P ${pid} || true`], true)).trim().split("\n").filter(Boolean).map(Number);
  return [pid, ...kids];
}

async function h2load(port: number, round: number, name: string, pids: number[]): Promise<Result> {
  const log = `${work}/${name}-${round}.log`;
  const cpuBefore = await cpuSeconds(pids);
  const out = await sh(["h2load", "-c", "64", "-m", "10", "-t", "1", "-D", String(SECONDS), "--warm-up-time=1", `--log-file=${log}`,
    `https://127.0.0.1:${port}/tiny`], true);
  const cpu = await cpuSeconds(pids) - cpuBefore;
  const done = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(out)?.[1] ?? 0);
  const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? 0);
  const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? -1);
  const micros = (await runtime.readTextFile(log)).trim().split("\n").map((l) => Number(l.split("\t")[2])).filter((x) => x >= 0).sort((a, b) => a - b);
  return { rps, failed, p99ms: (micros[Math.floor(micros.length * 0.99)] ?? NaN) / 1000, cpuUs: done > 0 ? cpu * 1e6 / done : NaN };
}

async function main(): Promise<void> {
  await sh(["mkdir", "-p", `${work}/www`]);
  await runtime.writeTextFile(`${work}/www/tiny`, "ok");
  await sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", "/CN=bench.test", "-keyout", `${work}/key.pem`, "-out", `${work}/cert.pem`]);
  const upstream = await freePort();
  const ports: Record<string, number> = {};
  for (const p of PROXIES) ports[p] = await freePort();
  await runtime.writeTextFile(`${work}/upstream.conf`, nginxConf(`server { listen 127.0.0.1:${upstream}; root ${work}/www; location / { } }`, "upstream", work));
  await runtime.writeTextFile(`${work}/nginx.conf`, nginxConf(`
    upstream up { server 127.0.0.1:${upstream}; keepalive 128; }
    server {
      listen 127.0.0.1:${ports.nginx ?? 1} ssl http2 backlog=4096;
      ssl_certificate ${work}/cert.pem;
      ssl_certificate_key ${work}/key.pem;
      http2_max_concurrent_streams 128;
      location / {
        proxy_pass http://up;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
      }
    }`, "proxy", work));
  const fulcrumConf = (port: number) => `listeners:
  - bind: 127.0.0.1:${port}
    request_id: false
    tls: { cert: ${work}/cert.pem, key: ${work}/key.pem }
pools:
  up: { servers: [127.0.0.1:${upstream}] }
`;
  const commands: Record<string, string[]> = {
    nginx: ["nginx", "-c", `${work}/nginx.conf`],
    "fulcrum-bun": [`${root}node_modules/.bin/bun`, `${root}src/cli/main.ts`, "run", "--config", `${work}/fulcrum-bun.yaml`],
    "fulcrum-deno": [`${root}node_modules/.bin/deno`, "run", "-A", "--no-check", `${root}src/cli/main.ts`, "run", "--config", `${work}/fulcrum-deno.yaml`],
  };
  for (const p of PROXIES) if (p.startsWith("fulcrum")) await runtime.writeTextFile(`${work}/${p}.yaml`, fulcrumConf(ports[p]));
  start(["nginx", "-c", `${work}/upstream.conf`]);
  await waitUp(`http://127.0.0.1:${upstream}/tiny`);
  const pids: Record<string, number[]> = {};
  for (const p of PROXIES) { const child = start(commands[p]); await waitUp(`https://127.0.0.1:${ports[p]}/tiny`); pids[p] = await workPids(child.pid); }

  const runs: Record<string, Result[]> = Object.fromEntries(PROXIES.map((p) => [p, []]));
  for (let r = 0; r < ROUNDS; r++) for (const p of PROXIES) runs[p].push(await h2load(ports[p], r, p, pids[p]));
  const cpu = (await runtime.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const versions = (await sh(["sh", "-c", "nginx -v 2>&1; h2load --version | head -1"], true)).trim().replace(/\n/g, "; ");
  console.log(`\n### HTTP/2 over TLS, ${new Date().toISOString()}\n\n${cpu}; ${versions}`);
  console.log(`h2load -c64 -m10 -t1, ${SECONDS} s per run (1 s warm-up), ${ROUNDS} interleaved rounds, medians; tiny body; upstream nginx 1 worker.\n`);
  console.log(`| proxy | req/s | p99 ms | CPU µs/req | req/s vs nginx | p99 vs nginx | CPU vs nginx | failed |\n|---|---:|---:|---:|---:|---:|---:|---:|`);
  const rps = (p: string) => median(runs[p].map((x) => x.rps)), p99 = (p: string) => median(runs[p].map((x) => x.p99ms));
  const cpuPer = (p: string) => median(runs[p].map((x) => x.cpuUs));
  for (const p of PROXIES) {
    const vs = (f: (p: string) => number) => runs.nginx ? (f(p) / f("nginx")).toFixed(2) : "-";
    console.log(`| ${p} | ${rps(p).toFixed(0)} | ${p99(p).toFixed(2)} | ${cpuPer(p).toFixed(0)} | ${vs(rps)} | ${vs(p99)} | ${vs(cpuPer)} | ${runs[p].reduce((s, x) => s + x.failed, 0)} |`);
  }
  console.log("\nCPU µs/req: user + system time of the proxy's processes (nginx: master and worker) over the run, warm-up included, per request done.");
}

try {
  await main();
} finally {
  for (const c of started) c.kill("SIGTERM");
  await Promise.all(started.map((c) => c.exited));
  if (!runtime.env("BENCH_KEEP")) await sh(["rm", "-rf", work], true);
}
