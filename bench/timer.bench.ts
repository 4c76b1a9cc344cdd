// The shared timer's own cost: CPU of a process doing nothing but 20 wake-ups a second (the VRRP
// poller at 1 s adverts), by the runtime's setInterval, by the scheduler's every() and by a
// one-shot entry re-armed on every wake-up (what every() first did). Process user+system time.
//
//   bun bench/timer.bench.ts
//   deno run -A --no-check bench/timer.bench.ts
//
// BENCH_SECONDS (10) per variant, BENCH_ROUNDS (2) rounds of all variants.
import process from "node:process";
import os from "node:os";
import { runtime } from "../src/runtime/index.ts";
import { timers } from "../src/core/timer.ts";

const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 10);
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 2);
const PERIOD_MS = 50;

type Start = (tick: () => void) => () => void;
const variants: [string, Start][] = [
  ["setInterval", (tick) => { const t = setInterval(tick, PERIOD_MS); return () => clearInterval(t); }],
  ["scheduler every()", (tick) => { const r = timers.every(PERIOD_MS, tick); return () => r.stop(); }],
  ["scheduler at(), re-armed each wake-up", (tick) => {
    let planned = timers.now() + PERIOD_MS;
    const run = () => { planned += PERIOD_MS; entry = timers.at(planned, run); tick(); };
    let entry = timers.at(planned, run);
    return () => timers.cancel(entry);
  }],
];

console.log(`# timer bench: ${runtime.name} ${runtime.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`);
const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, start] of variants) {
    let ticks = 0;
    const before = process.cpuUsage();
    const stop = start(() => { ticks++; });
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    stop();
    const used = process.cpuUsage(before);
    const percent = (used.user + used.system) / 1e4 / SECONDS;
    results.set(name, [...(results.get(name) ?? []), percent]);
    console.log(`  ${name}: ${ticks} wake-ups in ${SECONDS} s, ${percent.toFixed(3)} % of one core`);
  }
}
for (const [name, r] of results) console.log(`${name}: ${r.map((p) => p.toFixed(2)).join(", ")} % of one core`);
