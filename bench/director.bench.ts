// The packet director's data path per packet, in WASM and in the TS twin (the peer in the same
// run): parse + connection lookup + NAT rewrite + incremental checksums, in batches of 256 over
// descriptors in linear memory, with 1,000,000 tracked connections (and 1,000 for the cached
// case); the rate of new connections; memory per connection. Run: `bun bench/director.bench.ts`
// and `deno run -A --no-check bench/director.bench.ts`. Prints Markdown rows.
import { runtime } from "../src/runtime/index.ts";
import { Director } from "../src/l4/director/director.ts";
import { buildPacket } from "../src/l4/director/simulator.ts";
import { bytesPerConnection, directorMemoryBytes } from "../src/l4/director/memory.ts";
import * as L from "../src/core/layout.ts";
import process from "node:process";

const CONNS = Number(runtime.env("DIRECTOR_CONNS") ?? 1_000_000);
const BATCHES = Number(runtime.env("DIRECTOR_BATCHES") ?? 2_000);
const B = L.MAX_BATCH;
// DIRECTOR_HUGE_PAGES=0: the table on 4 KiB pages (the A/B of the huge-page advice).
const HUGE = runtime.env("DIRECTOR_HUGE_PAGES") !== "0";
// DIRECTOR_TWIN=0 leaves the TS twin out (quicker A/B runs of the WASM kernel alone).
const TWIN = runtime.env("DIRECTOR_TWIN") !== "0";

/** Anonymous memory on transparent huge pages in this process (kB), from the kernel. */
async function anonHugeKb(): Promise<number> {
  try {
    const m = /AnonHugePages:\s+(\d+)/.exec(await runtime.readTextFile("/proc/self/smaps_rollup"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// One client address and port per connection i (distinct tuples for up to 2^32 connections).
const clientOf = (i: number) => [10 + ((i >>> 16) & 63), (i >>> 8) & 255, i & 255, 1024 + ((i >>> 22) & 1023)];

interface Run { nsPerPacket: number; p10: number; cpuNs: number; createNs: number; forwarded: number; hugeKb: number; advised: number }

async function measure(impl: "wasm" | "ts", conns: number, batches: number): Promise<Run> {
  const d = await Director.create({ capacity: conns + 1024, impl, seed: 1, hugePages: HUGE });
  d.addService({
    name: "bench", address: "10.200.0.1", port: 80, protocol: "tcp", kind: "nat", scheduler: "wlc",
    servers: Array.from({ length: 16 }, (_, k) => ({ address: `10.201.0.${k + 1}`, port: 8080 })),
  });
  const mem = new Uint8Array(d.plane.memory), view = new DataView(d.plane.memory);
  const syn = buildPacket({ src: "10.0.0.1", dst: "10.200.0.1", sport: 1024, dport: 80, protocol: "tcp", flags: { syn: true } });
  const ack = buildPacket({ src: "10.0.0.1", dst: "10.200.0.1", sport: 1024, dport: 80, protocol: "tcp", flags: { ack: true, psh: true }, payload: 24 });
  // Writes packet k of a batch: the template with connection i's client address and port
  // (checksums are not checked by the director; incremental updates work on any value).
  const place = (k: number, tpl: Uint8Array, i: number) => {
    const off = L.DIR_PKT_OFF + k * L.PKT_SLOT + L.PKT_HEADROOM;
    mem.set(tpl, off);
    const [a, b, c, port] = clientOf(i);
    mem[off + 13] = a; mem[off + 14] = b; mem[off + 15] = c;
    mem[off + 20] = port >> 8; mem[off + 21] = port & 255;
    const desc = L.DIR_DESC_OFF + k * L.DESC_SIZE;
    view.setUint32(desc + L.DESC_OFF, off, true);
    view.setUint32(desc + L.DESC_LEN, tpl.length, true);
    view.setUint16(desc + L.DESC_FLAGS, 0, true);
  };
  let now = 1_000, createMs = 0;
  // Populate: a SYN, then an ACK, per connection (ESTABLISHED, as steady traffic finds them).
  for (const tpl of [syn, ack]) {
    for (let i = 0; i < conns; i += B) {
      const n = Math.min(B, conns - i);
      for (let k = 0; k < n; k++) place(k, tpl, i + k);
      const t0 = performance.now();
      d.processBatch(n, now);
      if (tpl === syn) createMs += performance.now() - t0;
    }
  }
  if (d.counters().in_use !== conns) throw new Error(`populated ${d.counters().in_use} of ${conns}`);
  const hugeKb = await anonHugeKb();
  // Steady state: batches of ACKs to random tracked connections; only processBatch is timed.
  let x = 0x9e3779b9, forwarded = 0;
  const perBatch: number[] = [];
  let cpuUs = 0;
  for (let r = 0; r < batches; r++) {
    for (let k = 0; k < B; k++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      place(k, ack, (x >>> 0) % conns);
    }
    now += 1;
    const c0 = process.cpuUsage(), t0 = performance.now();
    forwarded += d.processBatch(B, now);
    perBatch.push(performance.now() - t0);
    const c1 = process.cpuUsage(c0);
    cpuUs += c1.user + c1.system;
  }
  perBatch.sort((a, b) => a - b);
  const ns = (q: number) => perBatch[Math.floor(perBatch.length * q)] * 1e6 / B;
  return { nsPerPacket: ns(0.5), p10: ns(0.1), cpuNs: cpuUs * 1e3 / (batches * B), createNs: createMs * 1e6 / conns, forwarded, hugeKb, advised: d.hugePageBytes };
}

const rows: string[] = [];
const pages: string[] = [];
const NONE: Run = { nsPerPacket: NaN, p10: NaN, cpuNs: NaN, createNs: NaN, forwarded: 0, hugeKb: 0, advised: 0 };
for (const conns of [1_000, CONNS]) {
  const w = await measure("wasm", conns, BATCHES);
  pages.push(`${conns.toLocaleString("en")} conns: ${(w.advised / 2 ** 20).toFixed(0)} MiB advised, process AnonHugePages ${(w.hugeKb / 1024).toFixed(0)} MiB`);
  const t = TWIN ? await measure("ts", conns, Math.max(50, BATCHES >> 3)) : NONE;
  if (w.forwarded !== BATCHES * B) throw new Error(`wasm forwarded ${w.forwarded} of ${BATCHES * B}`);
  rows.push(`| tracked packet, NAT in (${conns.toLocaleString("en")} conns) | ${w.nsPerPacket.toFixed(1)} / ${w.p10.toFixed(1)} / ${w.cpuNs.toFixed(1)} | ${t.nsPerPacket.toFixed(1)} / ${t.p10.toFixed(1)} / ${t.cpuNs.toFixed(1)} | ${(t.nsPerPacket / w.nsPerPacket).toFixed(2)}x |`);
  rows.push(`| new connection (SYN: schedule wlc + insert), to ${conns.toLocaleString("en")} | ${w.createNs.toFixed(1)} | ${t.createNs.toFixed(1)} | ${(t.createNs / w.createNs).toFixed(2)}x |`);
}
// Calibration in the same run: the scheduler kernel bench/RESULTS.md recorded on a quieter day
// (pick wlc, N=10: 33.6 ns on Bun, 72.8 ns on Deno), to read the figures above against the load.
{
  const d = await Director.create({ capacity: 1024, impl: "wasm", seed: 2 });
  const pool = d.plane.addPool({ scheduler: "wlc", servers: Array.from({ length: 10 }, (_, i) => ({ address: `10.9.0.${i}:80`, weight: 1 + (i % 4) })) });
  const pick = d.plane.wasm!.pick;
  const times: number[] = [];
  let sink = 0;
  for (let r = 0; r < 30; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) sink += pick(pool.id, i);
    times.push((performance.now() - t0) * 1e6 / 100_000);
  }
  times.sort((a, b) => a - b);
  rows.push(`| calibration: pick wlc N=10 from JS (RESULTS.md: 33.6 Bun / 72.8 Deno) | ${times[15].toFixed(1)} | | ${sink === -1 ? "" : ""} |`);
}
const name = `${runtime.name} ${runtime.version}`;
console.log(`### ${name}: per packet, median of ${BATCHES} batches of ${B} (ns)\n`);
console.log("| case | WASM ns: median / p10 / CPU | TS twin ns: median / p10 / CPU | WASM faster by (medians) |\n|---|---:|---:|---:|");
for (const r of rows) console.log(r);
console.log(`\nTable for ${CONNS.toLocaleString("en")} connections: ${bytesPerConnection(CONNS + 1024).toFixed(1)} bytes per connection `
  + `(entry ${L.CT_SIZE} + buckets); memory ${(directorMemoryBytes(CONNS + 1024) / 2 ** 20).toFixed(0)} MiB in all.`);
console.log(`Huge pages ${HUGE ? "advised" : "off (DIRECTOR_HUGE_PAGES=0)"}: ${pages.join("; ")}.`);
