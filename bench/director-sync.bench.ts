// Failover with connection sync, in the labs of test/director-sync.test.ts (NAT) and
// test/director-sync-fullnat.test.ts (FULLNAT): two `fulcrum run` directors, Fulcrum to Fulcrum
// VRRP, three nginx. BENCH_DOWNLOADS downloads through the VIP (1 MiB at 128 KiB/s each), SIGKILL
// of the master a few seconds in, and how many broke (did not finish with every byte), with
// director_sync and without, alternating, BENCH_RUNS times each, per lb_kind in BENCH_KINDS.
// Run as root: `bun bench/director-sync.bench.ts` (or `deno run -A --no-check bench/director-sync.bench.ts`);
// the directors run on the runtime running the bench.
import { loadavg } from "node:os";
import { runtime } from "../src/runtime/index.ts";
import { complete, SyncLab, type SyncLabKind } from "../test/helpers/director-sync-lab.ts";

const RUNS = Number(runtime.env("BENCH_RUNS") ?? 3);
const DOWNLOADS = Number(runtime.env("BENCH_DOWNLOADS") ?? 8);
const KINDS = (runtime.env("BENCH_KINDS") ?? "nat,fullnat").split(",") as SyncLabKind[];
const SUBNETS: Record<SyncLabKind, number> = { nat: 74, fullnat: 78 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");

const rows: string[] = [];
console.log(`load average at the start: ${load()}`);
for (const kind of KINDS) {
  const lab = await SyncLab.create(kind === "nat" ? "dsyncb" : "dsyncbf", SUBNETS[kind], kind);
  const broken: Record<"sync" | "nosync", number[]> = { sync: [], nosync: [] };
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const sync of [true, false]) {
        const r = await lab.failover(sync ? "multicast" : "off", DOWNLOADS, (c) => !sync || c.sync_records_imported >= DOWNLOADS);
        const n = r.outcomes.filter((o) => !complete(o)).length;
        broken[sync ? "sync" : "nosync"].push(n);
        const why = sync
          ? `records imported ${r.after.sync_records_imported}, datagrams received ${r.after.sync_received}, not_syn ${r.after.not_syn}`
          : `not_syn ${r.after.not_syn}, no_service ${r.after.no_service}`;
        console.log(`${kind} run ${run + 1} ${sync ? "with sync   " : "without sync"}: ${n}/${DOWNLOADS} broken (${why}); curl: ${r.outcomes.map((o) => `${o.code}:${o.out}`).join(" ")}`);
      }
    }
    if (kind === "fullnat") {
      const sources = lab.sources();
      console.log(`fullnat: sources the servers logged for the downloads: ${[...new Set(sources)].join(", ")} (${sources.length} downloads)`);
    }
  } finally {
    await lab.destroy();
  }
  rows.push(`| ${kind} | ${median(broken.sync)} | ${broken.sync.join(", ")} | ${median(broken.nosync)} | ${broken.nosync.join(", ")} |`);
}
console.log(`\n${runtime.name}: ${DOWNLOADS} established downloads at SIGKILL of the master, ${RUNS} runs each; load average at the end: ${load()}`);
console.log(`| lb_kind | broken with sync (median) | per run | broken without (median) | per run |\n|---|---:|---|---:|---|`);
for (const row of rows) console.log(row);
