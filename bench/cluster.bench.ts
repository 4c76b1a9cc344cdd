// Many nodes behind ECMP, in the lab of test/helpers/ecmp-lab.ts (a router's multipath route to
// each VIP over three `fulcrum run` nodes, pools from etcd, DR to three nginx):
// - etcd change to applied on all three nodes: for each of CLUSTER_CHANGES changes (a server's
//   weight) the clock starts when the put is handed to a putter process in etcd's namespace (one
//   etcd client there, over a pipe) and stops, per node, when that node's log line saying it
//   applied the weight reaches this process (an upper bound: both pipes are in it). The peer is
//   etcd's own client in the same run: `etcdctl watch --prefix` in node n1's namespace, its event
//   line timed the same way.
// - one node of three lost under long downloads: per trial, CLUSTER_PER_SOURCE downloads from
//   each of 8 client addresses through each VIP (mh and rr side by side, one virtual server each),
//   and wrk through the mh VIP; one node SIGKILLed (n1, n2, n3 in turn) and taken out of the
//   routes; the share of the downloads established at the kill that did not complete, for mh +
//   DR against rr (a director whose picks differ between nodes). Then the node is started again
//   and, under a new set of downloads, put back in the routes: the same share across the join.
//
//   bun bench/cluster.bench.ts                     (as root; the nodes run on Bun)
//   deno run -A --no-check bench/cluster.bench.ts  (the nodes run on Deno)
//
// CLUSTER_CHANGES (200), CLUSTER_GAP_MS (20, pause between changes), CLUSTER_TRIALS (5),
// CLUSTER_PER_SOURCE (25: 200 downloads per VIP), CLUSTER_ROUTE_DELAY_MS (0: from the kill to the
// route change, a routing daemon's detection time); 0 changes or 0 trials skips that part.
import os from "node:os";
import process from "node:process";
import { spawn } from "node:child_process";
import { runtime } from "../src/runtime/index.ts";
import { EtcdClient } from "../src/discovery/etcd-client.ts";
import { EcmpLab, type NodeChange, NODES, PREFIX } from "../test/helpers/ecmp-lab.ts";
import { peerOf } from "../test/helpers/vrrp.ts";

const CHANGES = Number(runtime.env("CLUSTER_CHANGES") ?? 200);
const GAP_MS = Number(runtime.env("CLUSTER_GAP_MS") ?? 20);
const TRIALS = Number(runtime.env("CLUSTER_TRIALS") ?? 5);
const PER_SOURCE = Number(runtime.env("CLUSTER_PER_SOURCE") ?? 25);
const ROUTE_DELAY_MS = Number(runtime.env("CLUSTER_ROUTE_DELAY_MS") ?? 0);
const SELF = new URL(import.meta.url).pathname;

/** The putter: run in etcd's namespace with CLUSTER_PUTTER=<etcd url>; puts each "key<TAB>value"
 * line of its stdin and answers "ok" (or the error) on stdout. */
async function putter(url: string): Promise<void> {
  const client = new EtcdClient({ endpoints: [url], ca: null, username: null, password: null });
  let buffer = "";
  for await (const chunk of process.stdin) {
    buffer += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      const [key, value] = buffer.slice(0, nl).split("\t");
      buffer = buffer.slice(nl + 1);
      try {
        await client.put(key, value);
        process.stdout.write("ok\n");
      } catch (e) {
        process.stdout.write(`error ${(e as Error).message}\n`);
      }
    }
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

function summary(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `| ${name} | ${s.length} | ${percentile(s, 50).toFixed(1)} | ${percentile(s, 90).toFixed(1)} | ${percentile(s, 99).toFixed(1)} | ${s[s.length - 1].toFixed(1)} |`;
}

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

async function changeToApplied(lab: EcmpLab): Promise<void> {
  const etcdNs = lab.lab.node("etcd").ns;
  const put = spawn("ip", ["netns", "exec", etcdNs, ...runtime.scriptCommand(SELF)], {
    env: { ...process.env, CLUSTER_PUTTER: lab.etcd.url }, stdio: ["pipe", "pipe", "inherit"],
  });
  const answers: string[] = [];
  const wake: (() => void)[] = [];
  let partial = "";
  put.stdout!.on("data", (chunk: Uint8Array) => {
    partial += new TextDecoder().decode(chunk);
    const lines = partial.split("\n");
    partial = lines.pop()!;
    answers.push(...lines);
    for (const w of wake.splice(0)) w();
  });
  const answer = async (i: number) => {
    for (let k = 0; k < 100 && answers.length <= i; k++) await new Promise<void>((r) => { const t = setTimeout(r, 100); wake.push(() => { clearTimeout(t); r(); }); });
    if (answers[i] !== "ok") throw new Error(`put ${i}: ${answers[i] ?? "no answer in 10 s"}`);
  };
  const watcher = peerOf(lab.lab.spawn("n1", ["etcdctl", "--endpoints", lab.etcd.url, "watch", "--prefix", `${PREFIX}pools/`]));
  try {
    // The putter's client is up once a first put was answered.
    put.stdin!.write(`${PREFIX}bench/warm\t1\n`);
    await answer(0);
    await new Promise((r) => setTimeout(r, 500));
    const target = lab.lab.node("s1").ipv4 + ":80";
    const key = lab.serverKey("web", "s1");
    const nodes = NODES.map((n) => lab.nodes.get(n)!);
    const lastMs: number[] = [], eachMs: number[] = [], peerMs: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const weight = 2 + (i % 200); // never 1 (the start), never the previous value
      const value = JSON.stringify({ weight });
      const marks = nodes.map((p) => p.output().length);
      const peerMark = watcher.output().length;
      const re = new RegExp(`discovery: web/${target.replace(/\./g, "\\.")} weight ${weight}$`);
      const t0 = performance.now();
      put.stdin!.write(`${key}\t${value}\n`);
      const applied = await Promise.all(nodes.map((p, k) => p.lineArrival(re, 5000, marks[k])));
      const seen = await watcher.lineArrival(new RegExp(`^${value.replace(/[{}]/g, "\\$&")}$`), 5000, peerMark);
      await answer(i + 1);
      for (const a of applied) eachMs.push(a - t0);
      lastMs.push(Math.max(...applied) - t0);
      peerMs.push(seen - t0);
      await new Promise((r) => setTimeout(r, GAP_MS));
    }
    await lab.etcd.put(key, "");
    console.log(`\netcd change -> applied in the ECMP lab, ${CHANGES} weight changes, ${GAP_MS} ms apart; nodes on ${runtime.name} ${runtime.version}; load ${load()}`);
    console.log("| measured | changes | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|");
    console.log(summary("fulcrum, last of 3 nodes applied", lastMs));
    console.log(summary("fulcrum, each node", eachMs));
    console.log(summary("etcdctl watch in n1's namespace (peer) saw the event", peerMs));
    console.log(`ratio of medians, fulcrum (last of 3) / etcdctl: ${(median(lastMs) / median(peerMs)).toFixed(2)}x; of p99s: ${(percentile([...lastMs].sort((a, b) => a - b), 99) / percentile([...peerMs].sort((a, b) => a - b), 99)).toFixed(2)}x`);
  } finally {
    put.kill("SIGKILL");
    watcher.child.kill("SIGKILL");
  }
}

/** One trial's row, and the broken shares (%) of mh and rr. */
function row(t: number, node: string, c: NodeChange, loadBefore: string): { text: string; mh: number; rr: number } {
  const share = (name: string) => 100 * c.broken[name].length / c.held[name];
  const text = `| ${t + 1} | ${node} | ${c.broken.web.length} / ${c.held.web} (${share("web").toFixed(1)}%) | ${c.broken.webrr.length} / ${c.held.webrr} (${share("webrr").toFixed(1)}%) | ${c.adopted} | ${c.notSyn} | ${c.wrk.requests} / ${c.wrk.failed} | ${loadBefore} |`;
  return { text, mh: share("web"), rr: share("webrr") };
}

function table(title: string, rows: { text: string; mh: number; rr: number }[], notes: string[]): void {
  console.log(`\n${title}; nodes on ${runtime.name} ${runtime.version}`);
  console.log("| trial | node | mh + dr: broken | rr + dr: broken | adopted | not_syn drops | wrk (mh) requests / failed | load before |\n|---:|---|---:|---:|---:|---:|---:|---|");
  for (const r of rows) console.log(r.text);
  for (const n of notes) console.log(n);
  console.log(`median broken share: mh ${median(rows.map((r) => r.mh)).toFixed(1)}%, rr ${median(rows.map((r) => r.rr)).toFixed(1)}% (${rows.length} trials)`);
}

/** Per trial: a node lost (SIGKILLed, its next hop withdrawn), then the same node started again
 * and put back in the routes, each under its own set of downloads. */
async function nodeChanges(lab: EcmpLab): Promise<void> {
  const lost: ReturnType<typeof row>[] = [], joined: ReturnType<typeof row>[] = [];
  const notes: string[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const node = NODES[t % NODES.length];
    let loadBefore = load();
    const loss = await lab.nodeLoss(node, PER_SOURCE, ROUTE_DELAY_MS);
    if (loss.unopened) notes.push(`loss ${t + 1}: ${loss.unopened}`);
    lost.push(row(t, node, loss, loadBefore));
    await lab.startNode(node);
    loadBefore = load();
    const join = await lab.nodeJoin(node, PER_SOURCE);
    if (join.unopened) notes.push(`join ${t + 1}: ${join.unopened}`);
    joined.push(row(t, node, join, loadBefore));
  }
  const held = `${8 * PER_SOURCE} downloads per VIP held across it (16 KiB/s each) and wrk -c4 through the mh VIP`;
  table(`one node of three SIGKILLed and taken out of the routes ${ROUTE_DELAY_MS} ms later, ${held}`, lost, []);
  table(`that node started again and put back in the routes, ${held}`, joined, notes);
}

async function main(): Promise<void> {
  const cpu = (await runtime.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  console.log(`machine: ${os.cpus().length} cores (${cpu}), ${os.release()}; load ${load()}`);
  // 320 KiB at 16 KiB/s: 20 s downloads, as the test's.
  const lab = await EcmpLab.create("ecmpb", 71, [{ name: "web", scheduler: "mh" }, { name: "webrr", scheduler: "rr" }], {
    downloadBytes: 320 * 1024, rateBytes: 16 * 1024,
  });
  try {
    for (const n of NODES) await lab.startNode(n);
    if (CHANGES > 0) await changeToApplied(lab);
    if (TRIALS > 0) await nodeChanges(lab);
  } finally {
    await lab.destroy();
  }
}

const putterUrl = runtime.env("CLUSTER_PUTTER");
if (putterUrl) await putter(putterUrl);
else await main();
runtime.exit(0);
