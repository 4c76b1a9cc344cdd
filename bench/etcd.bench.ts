// etcd change to applied: three `fulcrum run` nodes take pool `api` from one real etcd (started
// here on loopback). For each of ETCD_CHANGES changes (a server's weight set to a new value) the
// clock starts before the put is sent and stops, per node, when that node's log line saying it
// applied the weight reaches this process (an upper bound: the pipe is in it). The peer is etcd's
// own client in the same run: `etcdctl watch --prefix`, whose event line is timed the same way.
// Then the outage phase: wrk through node 1 while etcd is SIGKILLed and started again; the figure
// is failed requests (socket errors and non-2xx).
//
//   bun bench/etcd.bench.ts            (fulcrum nodes on Bun)
//   deno run -A --no-check bench/etcd.bench.ts
//
// ETCD_CHANGES (200), ETCD_GAP_MS (20, pause between changes), ETCD_OUTAGE_SECONDS (12).
import os from "node:os";
import { runtime, type Child } from "../src/runtime/index.ts";
import { type Backend, freePort, startBackend } from "../test/helpers/backends.ts";
import { fulcrumCommand, writeTemp } from "../test/helpers/fulcrum.ts";
import { startEtcd } from "../test/helpers/etcd.ts";

const CHANGES = Number(runtime.env("ETCD_CHANGES") ?? 200);
const GAP_MS = Number(runtime.env("ETCD_GAP_MS") ?? 20);
const OUTAGE_SECONDS = Number(runtime.env("ETCD_OUTAGE_SECONDS") ?? 12);
const PREFIX = "/bench/";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Lines of a stream, each with the time it arrived here; waiters are woken by arrivals (no
 * polling, which would take CPU from the nodes on a 2-core machine). */
class TimedLines {
  readonly lines: { at: number; text: string }[] = [];
  private wake: (() => void)[] = [];
  constructor(stream: ReadableStream<Uint8Array>) {
    void (async () => {
      const d = new TextDecoder();
      let buf = "";
      for await (const chunk of stream) {
        const at = performance.now();
        buf += d.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) { this.lines.push({ at, text: buf.slice(0, nl) }); buf = buf.slice(nl + 1); }
        for (const w of this.wake.splice(0)) w();
      }
    })().catch(() => {});
  }

  /** The arrival time of the first line from index `from` matching `re`; null after 5 s. */
  async find(from: number, re: RegExp): Promise<number | null> {
    const deadline = performance.now() + 5_000;
    for (let k = from; ; k++) {
      while (k >= this.lines.length) {
        const left = deadline - performance.now();
        if (left <= 0) return null;
        await new Promise<void>((resolve) => { const t = setTimeout(resolve, left); this.wake.push(() => { clearTimeout(t); resolve(); }); });
      }
      if (re.test(this.lines[k].text)) return this.lines[k].at;
    }
  }
}

/** A `fulcrum run` node whose stderr (the discovery log) this process reads itself. */
async function startNode(config: string): Promise<{ child: Child; url: string; log: TimedLines; output: () => string }> {
  const file = await writeTemp(config);
  const child = runtime.spawn(fulcrumCommand(["run", "--config", file]));
  const log = new TimedLines(child.stderr);
  const out = new TimedLines(child.stdout);
  const at = await out.find(0, /listening on/);
  if (at === null) throw new Error(`node did not start: ${log.lines.map((l) => l.text).join("\n")}`);
  const url = /listening on (http:\/\/\S+)/.exec(out.lines.find((l) => /listening on/.test(l.text))!.text)![1];
  return { child, url, log, output: () => log.lines.map((l) => l.text).join("\n") };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `| ${name} | ${s.length} | ${percentile(s, 50).toFixed(1)} | ${percentile(s, 90).toFixed(1)} | ${percentile(s, 99).toFixed(1)} | ${s[s.length - 1].toFixed(1)} |`;
}

async function wrk(url: string, seconds: number): Promise<{ requests: number; failed: number; out: string }> {
  const child = runtime.spawn(["wrk", "-t1", "-c16", `-d${seconds}s`, url]);
  let out = "";
  const d = new TextDecoder();
  await Promise.all([
    (async () => { for await (const c of child.stdout) out += d.decode(c); })(),
    (async () => { for await (const c of child.stderr) out += d.decode(c); })(),
  ]);
  await child.exited;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { requests: num(/(\d+) requests in/), failed: socketErrors + num(/Non-2xx or 3xx responses: (\d+)/), out };
}

const etcd = await startEtcd();
const backends: Backend[] = await Promise.all(["b1", "b2", "b3"].map((n) => startBackend(n)));
for (const b of backends) await etcd.client.put(`${PREFIX}pools/api/servers/${b.address}`, "");
const nodes: Awaited<ReturnType<typeof startNode>>[] = [];
let watcher: Child | null = null;
try {
  for (let i = 0; i < 3; i++) {
    nodes.push(await startNode(`
discovery:
  etcd: { endpoints: [${etcd.url}], prefix: ${PREFIX} }
listeners: [{ bind: 127.0.0.1:${await freePort()} }]
pools:
  api: { scheduler: mh, discovery: etcd }
`));
  }
  const logs = nodes.map((n) => n.log);
  watcher = runtime.spawn(["etcdctl", "--endpoints", etcd.url, "watch", "--prefix", `${PREFIX}pools/`]);
  const peer = new TimedLines(watcher.stdout);
  await sleep(500);

  const target = backends[0].address;
  const fulcrumMs: number[] = [], perNodeMs: number[] = [], etcdctlMs: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const weight = 2 + (i % 200); // never 1 (the start), never the previous value
    const value = JSON.stringify({ weight });
    const from = logs.map((l) => l.lines.length);
    const peerFrom = peer.lines.length;
    const t0 = performance.now();
    await etcd.client.put(`${PREFIX}pools/api/servers/${target}`, value);
    const re = new RegExp(`api/${target.replace(/\./g, "\\.")} weight ${weight}$`);
    const applied = await Promise.all(logs.map((l, k) => l.find(from[k], re)));
    const seenByPeer = await peer.find(peerFrom, new RegExp(`^${value.replace(/[{}]/g, "\\$&")}$`));
    if (applied.some((a) => a === null) || seenByPeer === null) throw new Error(`change ${i} (weight ${weight}) not applied on every node within 5 s`);
    for (const a of applied) perNodeMs.push(a! - t0);
    fulcrumMs.push(Math.max(...applied.map((a) => a!)) - t0);
    etcdctlMs.push(seenByPeer - t0);
    await sleep(GAP_MS);
  }
  const load = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  console.log(`\netcd change -> applied, ${CHANGES} weight changes, ${GAP_MS} ms apart; ${runtime.name} ${runtime.version}; etcd 3.4; load ${load}`);
  console.log("| measured | changes | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|");
  console.log(summary("fulcrum, last of 3 nodes applied", fulcrumMs));
  console.log(summary("fulcrum, each node", perNodeMs));
  console.log(summary("etcdctl watch (peer) saw the event", etcdctlMs));
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
  console.log(`ratio of medians, fulcrum (3 nodes) / etcdctl: ${(median(fulcrumMs) / median(etcdctlMs)).toFixed(2)}x`);

  // Outage: wrk through node 1; etcd killed after a quarter of the run, started again at half.
  const run = wrk(`${nodes[0].url}/`, OUTAGE_SECONDS);
  await sleep((OUTAGE_SECONDS * 1000) / 4);
  await etcd.kill();
  await sleep((OUTAGE_SECONDS * 1000) / 4);
  await etcd.start();
  const r = await run;
  const resynced = nodes.every((n) => /etcd answers again after \d+ ms: pool api resynced/.test(n.output()));
  console.log(`\netcd SIGKILLed and restarted under wrk -t1 -c16 -d${OUTAGE_SECONDS}s through node 1: ${r.requests} requests, ${r.failed} failed; every node resynced: ${resynced}`);
} finally {
  watcher?.kill("SIGKILL");
  for (const n of nodes) { n.child.kill("SIGTERM"); await n.child.exited; }
  await Promise.all(backends.map((b) => b.stop()));
  await etcd.remove();
}
runtime.exit(0);
