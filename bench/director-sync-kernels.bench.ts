// The sync kernels' cost, WASM against the TS twin (the peer in the same run), with 1,000,000
// ESTABLISHED connections: the master's walk when nothing changed (what every 100 ms tick costs
// in steady state, per entry looked at), the first walk that exports every connection (per
// record), and the backup's import of those records into an empty table (per record).
// Run: `bun bench/director-sync-kernels.bench.ts` and `deno run -A --no-check bench/director-sync-kernels.bench.ts`.
import { runtime } from "../src/runtime/index.ts";
import { Director } from "../src/l4/director/director.ts";
import { buildPacket } from "../src/l4/director/simulator.ts";
import { SyncTable } from "../src/l4/director/sync/table.ts";
import * as L from "../src/core/layout.ts";

const CONNS = Number(runtime.env("DIRECTOR_CONNS") ?? 1_000_000);
const ROUNDS = Number(runtime.env("BENCH_ROUNDS") ?? 5);
const B = L.MAX_BATCH;
const clientOf = (i: number) => [10 + ((i >>> 16) & 63), (i >>> 8) & 255, i & 255, 1024 + ((i >>> 22) & 1023)];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const SERVERS = Array.from({ length: 16 }, (_, k) => ({ address: `10.201.0.${k + 1}`, port: 8080 }));

async function director(impl: "wasm" | "ts"): Promise<Director> {
  const d = await Director.create({ capacity: CONNS + 1024, impl, seed: 1 });
  d.addService({ name: "bench", address: "10.200.0.1", port: 80, protocol: "tcp", kind: "nat", scheduler: "rr", servers: SERVERS });
  return d;
}

// CONNS connections made ESTABLISHED by a SYN and an ACK each (as the data-path bench does).
function populate(d: Director): void {
  const mem = new Uint8Array(d.plane.memory), view = new DataView(d.plane.memory);
  const syn = buildPacket({ src: "10.0.0.1", dst: "10.200.0.1", sport: 1024, dport: 80, protocol: "tcp", flags: { syn: true } });
  const ack = buildPacket({ src: "10.0.0.1", dst: "10.200.0.1", sport: 1024, dport: 80, protocol: "tcp", flags: { ack: true } });
  for (const tpl of [syn, ack]) {
    for (let i = 0; i < CONNS; i += B) {
      const n = Math.min(B, CONNS - i);
      for (let k = 0; k < n; k++) {
        const off = L.DIR_PKT_OFF + k * L.PKT_SLOT + L.PKT_HEADROOM;
        mem.set(tpl, off);
        const [a, b, c, port] = clientOf(i + k);
        mem[off + 13] = a; mem[off + 14] = b; mem[off + 15] = c;
        mem[off + 20] = port >> 8; mem[off + 21] = port & 255;
        const desc = L.DIR_DESC_OFF + k * L.DESC_SIZE;
        view.setUint32(desc + L.DESC_OFF, off, true);
        view.setUint32(desc + L.DESC_LEN, tpl.length, true);
        view.setUint16(desc + L.DESC_FLAGS, 0, true);
      }
      d.processBatch(n, 1000);
    }
  }
  if (d.counters().in_use !== CONNS) throw new Error(`populated ${d.counters().in_use} of ${CONNS}`);
}

interface Figures { idleNsPerEntry: number; exportNsPerRecord: number; importNsPerRecord: number }

async function measure(impl: "wasm" | "ts"): Promise<Figures> {
  const idle: number[] = [], exp: number[] = [], imp: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const master = await director(impl), backup = await director(impl);
    populate(master);
    const from = new SyncTable(master), to = new SyncTable(backup);
    // The first walk: every connection is new to the peer; each batch of records is imported.
    let exportMs = 0, importMs = 0, records = 0;
    for (;;) {
      const t0 = performance.now();
      const e = from.exportRecords(from.maxRecords, 1 << 30, 10_000);
      const t1 = performance.now();
      to.importRecords(e.records, e.count);
      importMs += performance.now() - t1;
      exportMs += t1 - t0;
      records += e.count;
      if (e.wrapped) break;
    }
    if (records !== CONNS || backup.counters().in_use !== CONNS) throw new Error(`${impl}: ${records} exported, ${backup.counters().in_use} imported of ${CONNS}`);
    // Steady state: nothing changed, a whole walk finds nothing to send.
    const t0 = performance.now();
    const e = from.exportRecords(from.maxRecords, 1 << 30, 10_000);
    const idleMs = performance.now() - t0;
    if (e.count !== 0 || !e.wrapped) throw new Error(`${impl}: an idle walk sent ${e.count}`);
    idle.push(idleMs * 1e6 / CONNS); exp.push(exportMs * 1e6 / CONNS); imp.push(importMs * 1e6 / CONNS);
  }
  return { idleNsPerEntry: median(idle), exportNsPerRecord: median(exp), importNsPerRecord: median(imp) };
}

const wasm = await measure("wasm");
const ts = await measure("ts");
console.log(`${runtime.name}: ${CONNS} ESTABLISHED connections, medians of ${ROUNDS} rounds`);
console.log("| | WASM ns | TS ns | faster |\n|---|---:|---:|---|");
const row = (what: string, w: number, t: number) =>
  console.log(`| ${what} | ${w.toFixed(1)} | ${t.toFixed(1)} | ${w <= t ? `WASM ${(t / w).toFixed(2)}x` : `TS ${(w / t).toFixed(2)}x`} |`);
row("idle walk, per entry looked at (nothing to send)", wasm.idleNsPerEntry, ts.idleNsPerEntry);
row("first walk, per record exported", wasm.exportNsPerRecord, ts.exportNsPerRecord);
row("import into an empty table, per record", wasm.importNsPerRecord, ts.importNsPerRecord);
console.log(`An idle walk of all ${CONNS} entries each 100 ms tick: ${(wasm.idleNsPerEntry * CONNS / 1e6).toFixed(1)} ms (WASM) per tick.`);
