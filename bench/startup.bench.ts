// Time from starting the single binary to its listener accepting a connection, over repeated
// runs; prints the median. `bun bench/startup.bench.ts` after `npm run build`.
import net from "node:net";
import { runtime } from "../src/runtime/index.ts";

const root = new URL("..", import.meta.url).pathname;
const bin = `${root}dist/fulcrum`;
const RUNS = Number(runtime.env("BENCH_RUNS") ?? 20);

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

async function once(config: string, port: number): Promise<number> {
  const t0 = performance.now();
  const child = runtime.spawn([bin, "run", "--config", config]);
  const deadline = t0 + 5000;
  while (!(await accepts(port))) {
    if (performance.now() > deadline) throw new Error("the binary did not listen within 5 s");
    await new Promise((r) => setTimeout(r, 1));
  }
  const ms = performance.now() - t0;
  child.kill("SIGTERM");
  await child.exited;
  return ms;
}

const port = 20000 + Math.floor(Math.random() * 20000);
const config = `/tmp/fulcrum-startup-${port}.yaml`;
await runtime.writeTextFile(config, `listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  web: { scheduler: mh, servers: [127.0.0.1:9001, 127.0.0.1:9002, 127.0.0.1:9003] }
`);
const samples: number[] = [];
for (let i = 0; i < RUNS; i++) samples.push(await once(config, port));
samples.sort((a, b) => a - b);
const q = (f: number) => samples[Math.min(samples.length - 1, Math.floor(f * samples.length))].toFixed(1);
console.log(`binary start to listening (${RUNS} runs): median ${q(0.5)} ms, min ${q(0)} ms, p90 ${q(0.9)} ms`);
