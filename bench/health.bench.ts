// Health checks, measured: (1) the CPU cost of checking 1000 servers every second (TCP and HTTP),
// against nginx listening on 1000 loopback ports in its own process, so only the checker's side
// is counted; (2) detection time from a server breaking (dies, answers 503, hangs after accept)
// to the DOWN transition, against the bound interval × fall + timeout.
//
//   bun bench/health.bench.ts
//   deno run -A --no-check bench/health.bench.ts
//
// BENCH_SERVERS (1000), BENCH_SECONDS (10, the CPU window per kind), BENCH_RUNS (12 detections
// per failure kind), BENCH_PARTS ("cpu,detect"), BENCH_VARIANT (only CPU variants whose name
// starts with it, e.g. "http").
import process from "node:process";
import os from "node:os";
import { runtime, type Child } from "../src/runtime/index.ts";
import { validateConfig } from "../src/control/schema.ts";
import { createDataPlane } from "../src/core/wasm.ts";
import { Balancer } from "../src/balancer/balancer.ts";
import { HealthService } from "../src/health/service.ts";
import { FlakyServer, waitFor, sleep } from "../test/helpers/health-servers.ts";

const SERVERS = Number(runtime.env("BENCH_SERVERS") ?? 1000);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 10);
const RUNS = Number(runtime.env("BENCH_RUNS") ?? 12);
const PARTS = (runtime.env("BENCH_PARTS") ?? "cpu,detect").split(",");
const dir = `/tmp/fulcrum-bench-health-${runtime.name}-${process.pid}`;

function pools(servers: string[], health: string) {
  const result = validateConfig({
    listeners: [{ bind: "127.0.0.1:1" }],
    pools: { bench: { servers, health: JSON.parse(health) } },
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.config.pools;
}

// ------------------------------------------------------------------------------------- nginx

/** nginx answering 200 "ok" on `count` consecutive loopback ports; tries a few bases if one is taken. */
async function startNginx(count: number): Promise<{ child: Child; ports: number[] }> {
  await runtime.spawn(["mkdir", "-p", dir]).exited;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Below Linux's ephemeral range (32768 and up), where outgoing connections take their ports.
    const base = 10000 + Math.floor(Math.random() * (32000 - 10000 - count));
    const ports = Array.from({ length: count }, (_, i) => base + i);
    await runtime.writeTextFile(`${dir}/nginx.conf`, `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server {
${ports.map((p) => `    listen 127.0.0.1:${p};`).join("\n")}
    location / { return 200 "ok\\n"; }
  }
}
`);
    const child = runtime.spawn(["nginx", "-c", `${dir}/nginx.conf`, "-p", dir]);
    const net = await import("node:net");
    const accepts = (port: number) => new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => { s.destroy(); resolve(true); });
      s.once("error", () => resolve(false));
    });
    let exited = false;
    child.exited.then(() => { exited = true; });
    for (let i = 0; i < 50 && !exited; i++) {
      // nginx binds every port before it accepts on any; a failed bind makes it exit.
      if (await accepts(ports[count - 1]) && await accepts(ports[0])) {
        await sleep(200);
        if (!exited) return { child, ports };
      }
      await sleep(100);
    }
    child.kill("SIGKILL");
    await child.exited;
  }
  throw new Error(`nginx did not start on ${count} ports (see ${dir}/error.log)`);
}

// ---------------------------------------------------------------------------------------- CPU

interface Cost {
  cpuPercent: number;
  userPercent: number;
  systemPercent: number;
  checksPerSecond: number;
  downs: number;
}

async function cpuCost(kind: "tcp" | "http", ports: number[], extra: Record<string, unknown> = {}): Promise<Cost> {
  const [config] = pools(ports.map((p) => `127.0.0.1:${p}`), JSON.stringify({ type: kind, interval: "1s", timeout: "500ms", ...extra }));
  const dp = await createDataPlane({ seed: 1 });
  const balancer = new Balancer(dp, [config]);
  let downs = 0;
  let firstDown = "";
  const service = new HealthService(balancer, { log: (l) => { if (l.includes(" DOWN")) { downs++; firstDown ||= l; } } });
  service.start();
  await sleep(3000); // the first round is spread over the first second; let the JIT settle
  const monitors = service.registry.all();
  const checks0 = monitors.reduce((n, m) => n + m.checks, 0);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const checks = monitors.reduce((n, m) => n + m.checks, 0) - checks0;
  service.stop();
  balancer.stop();
  if (firstDown) console.log(`  first DOWN: ${firstDown}`);
  const percent = (us: number) => (us / 1e6 / seconds) * 100;
  return {
    cpuPercent: percent(cpu.user + cpu.system), userPercent: percent(cpu.user), systemPercent: percent(cpu.system),
    checksPerSecond: checks / seconds, downs,
  };
}

async function idleCost(): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(3000);
  const cpu = process.cpuUsage(cpu0);
  return ((cpu.user + cpu.system) / 1e6 / ((performance.now() - t0) / 1000)) * 100;
}

// ---------------------------------------------------------------------------------- detection

type Breakage = "dies" | "503" | "hangs";

async function detection(breakage: Breakage, check: { interval: number; fall: number; timeout: number }): Promise<number[]> {
  const samples: number[] = [];
  const server = new FlakyServer("detect");
  await server.start();
  const health = JSON.stringify({
    type: "http", interval: `${check.interval}ms`, timeout: `${check.timeout}ms`, fall: check.fall, rise: 1,
  });
  for (let run = 0; run < RUNS; run++) {
    const [config] = pools([server.address], health);
    const dp = await createDataPlane({ seed: 1 });
    const balancer = new Balancer(dp, [config]);
    let downAt = 0;
    const service = new HealthService(balancer, { log: (l) => { if (l.includes(" DOWN")) downAt = performance.now(); } });
    service.start();
    const monitor = service.registry.all()[0];
    await waitFor("two checks", () => monitor.checks >= 2, 5000, 5);
    await sleep(Math.random() * check.interval); // break at a random phase of the schedule
    const t0 = performance.now();
    if (breakage === "dies") await server.kill();
    else server.mode = breakage === "503" ? { status: 503 } : "hang";
    await waitFor("DOWN", () => downAt > 0, check.interval * check.fall + check.timeout + 5000, 2);
    samples.push(downAt - t0);
    service.stop();
    balancer.stop();
    if (breakage === "dies") await server.start();
    server.mode = "ok";
  }
  await server.kill();
  return samples;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const max = (xs: number[]) => Math.max(...xs);

// ----------------------------------------------------------------------------------------- main

const cpuModel = os.cpus()[0]?.model ?? "unknown CPU";
console.log(`# health bench: ${runtime.name} ${runtime.version}, ${os.cpus().length} × ${cpuModel}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);

try {
  if (PARTS.includes("cpu")) {
    const nginx = await startNginx(SERVERS);
    try {
      const idle = await idleCost();
      console.log(`idle process: ${idle.toFixed(2)}% of one core`);
      const variants: [string, "tcp" | "http", Record<string, unknown>][] = [
        ["tcp", "tcp", {}],
        ["http (connection reused, the default)", "http", {}],
        ["http (new connection per check)", "http", { reuse_connection: false }],
      ];
      let nginxExit: number | null = null;
      nginx.child.exited.then((code) => { nginxExit = code; });
      const only = runtime.env("BENCH_VARIANT"); // e.g. "tcp": only the variants whose name starts so
      for (const [name, kind, extra] of variants.filter(([n]) => !only || n.startsWith(only))) {
        const r = await cpuCost(kind, nginx.ports, extra);
        if (nginxExit !== null) {
          const log = await runtime.readTextFile(`${dir}/error.log`).catch(() => "");
          throw new Error(`nginx exited (${nginxExit}) during the run: ${log.slice(-500)}`);
        }
        console.log(`${name}: ${SERVERS} servers every 1s: ${r.checksPerSecond.toFixed(0)} checks/s, ` +
          `${r.cpuPercent.toFixed(2)}% of one core (user ${r.userPercent.toFixed(2)}%, system ${r.systemPercent.toFixed(2)}%) ` +
          `over ${SECONDS}s, ${r.downs} DOWN transitions`);
      }
    } finally {
      nginx.child.kill("SIGTERM");
      await nginx.child.exited;
    }
  }

  if (PARTS.includes("detect")) {
    const check = { interval: 200, fall: 3, timeout: 100 };
    const bound = check.interval * check.fall + check.timeout;
    console.log(`detection, http check interval ${check.interval}ms fall ${check.fall} timeout ${check.timeout}ms: bound ${bound} ms, ${RUNS} runs each`);
    for (const breakage of ["dies", "503", "hangs"] as const) {
      const s = await detection(breakage, check);
      console.log(`  ${breakage.padEnd(5)} median ${median(s).toFixed(0)} ms, max ${max(s).toFixed(0)} ms (${s.filter((x) => x <= bound).length}/${s.length} within the bound)`);
    }
  }
} finally {
  await runtime.spawn(["rm", "-rf", dir]).exited;
}
runtime.exit(0);
