// Failover with connection sync, in the lab of test/director-sync.test.ts (two `fulcrum run`
// directors, Fulcrum to Fulcrum VRRP, NAT, three nginx): BENCH_DOWNLOADS downloads through the VIP
// (1 MiB at 128 KiB/s each), SIGKILL of the master a few seconds in, and how many broke (did not
// finish with every byte), with director_sync and without, alternating, BENCH_RUNS times each.
// Run as root: `bun bench/director-sync.bench.ts` (or `deno run -A --no-check bench/director-sync.bench.ts`);
// the directors run on the runtime running the bench.
import { runtime } from "../src/runtime/index.ts";
import { complete, SyncLab } from "../test/helpers/director-sync-lab.ts";

const RUNS = Number(runtime.env("BENCH_RUNS") ?? 3);
const DOWNLOADS = Number(runtime.env("BENCH_DOWNLOADS") ?? 8);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const lab = await SyncLab.create("dsyncb", 74);
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
      console.log(`run ${run + 1} ${sync ? "with sync   " : "without sync"}: ${n}/${DOWNLOADS} broken (${why}); curl: ${r.outcomes.map((o) => `${o.code}:${o.out}`).join(" ")}`);
    }
  }
} finally {
  await lab.destroy();
}
console.log(`\n${runtime.name}: ${DOWNLOADS} established downloads at SIGKILL of the master, ${RUNS} runs each`);
console.log(`| | broken (median) | per run |\n|---|---:|---|`);
console.log(`| with director_sync | ${median(broken.sync)} | ${broken.sync.join(", ")} |`);
console.log(`| without | ${median(broken.nosync)} | ${broken.nosync.join(", ")} |`);
