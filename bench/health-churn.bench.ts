// Churn: wrk keeps GETting through `fulcrum run` to a pool of three nginx backends while, every
// 5 s, one of them is killed (SIGKILL) and started again. The figure is the count of failed GETs
// (non-2xx answers plus wrk's socket errors): retries (next_upstream) cover the requests that
// were on the dying server, health checks take it out until it is back.
//
//   bun bench/health-churn.bench.ts            (fulcrum on Bun)
//   deno run -A --no-check bench/health-churn.bench.ts
//
// CHURN_SECONDS (60), CHURN_EVERY (5, seconds between kills), CHURN_DOWN (2, seconds a killed
// backend stays down), CHURN_CONNECTIONS (16), CHURN_THREADS (1).
import os from "node:os";
import process from "node:process";
import net from "node:net";
import { runtime, type Child } from "../src/runtime/index.ts";
import { freePort } from "../test/helpers/backends.ts";
import { startFulcrum, type Running } from "../test/helpers/fulcrum.ts";
import { sleep } from "../test/helpers/health-servers.ts";

const SECONDS = Number(runtime.env("CHURN_SECONDS") ?? 60);
const EVERY = Number(runtime.env("CHURN_EVERY") ?? 5);
const DOWN = Number(runtime.env("CHURN_DOWN") ?? 2);
const CONNECTIONS = Number(runtime.env("CHURN_CONNECTIONS") ?? 16);
const THREADS = Number(runtime.env("CHURN_THREADS") ?? 1);
const dir = `/tmp/fulcrum-bench-churn-${runtime.name}-${process.pid}`;

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

/** One nginx process (no master, so SIGKILL takes the whole server down at once). */
class Backend {
  child: Child | null = null;
  constructor(readonly name: string, readonly port: number) {}

  async start(): Promise<void> {
    const conf = `${dir}/${this.name}.conf`;
    await runtime.writeTextFile(conf, `
master_process off;
daemon off;
pid ${dir}/${this.name}.pid;
error_log ${dir}/${this.name}.error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${this.port}; location / { return 200 "${this.name}\\n"; } }
}
`);
    this.child = runtime.spawn(["nginx", "-c", conf, "-p", dir]);
    for (let i = 0; i < 100 && !(await accepts(this.port)); i++) await sleep(20);
  }

  async kill(): Promise<void> {
    this.child?.kill("SIGKILL");
    await this.child?.exited;
    this.child = null;
  }
}

interface WrkResult {
  requests: number;
  non2xx: number;
  socketErrors: number;
  requestsPerSecond: number;
  p50: string;
  p99: string;
  raw: string;
}

async function wrk(url: string): Promise<WrkResult> {
  const child = runtime.spawn(["wrk", `-t${THREADS}`, `-c${CONNECTIONS}`, `-d${SECONDS}s`, "--latency", url]);
  const timer = setTimeout(() => child.kill("SIGKILL"), (SECONDS + 30) * 1000);
  const [out] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  await child.exited;
  clearTimeout(timer);
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0,
    requestsPerSecond: num(/Requests\/sec:\s+([\d.]+)/),
    p50: /^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? "?",
    p99: /^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? "?",
    raw: out,
  };
}

await runtime.spawn(["mkdir", "-p", dir]).exited;
const backends = [new Backend("b1", await freePort()), new Backend("b2", await freePort()), new Backend("b3", await freePort())];
let fulcrum: Running | null = null;
try {
  for (const b of backends) await b.start();
  const port = await freePort();
  fulcrum = await startFulcrum(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  churn:
    scheduler: rr
    servers: [${backends.map((b) => `127.0.0.1:${b.port}`).join(", ")}]
    health: { type: http, path: /, interval: 500ms, fastinter: 200ms, timeout: 300ms, rise: 2, fall: 2 }
`);

  console.log(`# churn bench: fulcrum on ${runtime.name} ${runtime.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ` +
    `load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s; one backend killed every ${EVERY}s, down for ${DOWN}s`);

  let kills = 0;
  let churning = true;
  const churn = (async () => {
    for (let i = 0; churning; i++) {
      await sleep(EVERY * 1000 - DOWN * 1000);
      if (!churning) break;
      const victim = backends[i % backends.length];
      await victim.kill();
      kills++;
      await sleep(DOWN * 1000);
      await victim.start();
    }
  })();

  const result = await wrk(`${fulcrum.url}/`);
  churning = false;
  await churn;
  const log = fulcrum.output();

  const failed = result.non2xx + result.socketErrors;
  console.log(`requests ${result.requests} (${result.requestsPerSecond.toFixed(0)}/s), p50 ${result.p50}, p99 ${result.p99}`);
  console.log(`kills ${kills}; DOWN lines ${(log.match(/ DOWN: /g) ?? []).length}, UP lines ${(log.match(/ UP: /g) ?? []).length}`);
  console.log(`failed GETs: ${failed} (non-2xx ${result.non2xx}, socket errors ${result.socketErrors})`);
  if (failed > 0) {
    console.log(result.raw);
    console.log(log.split("\n").filter((l) => /50[234]|DOWN|UP:/.test(l)).slice(0, 40).join("\n"));
  }
} finally {
  await fulcrum?.stop();
  for (const b of backends) await b.kill();
  await runtime.spawn(["rm", "-rf", dir]).exited;
}
runtime.exit(0);
