// VRRP failover times and idle CPU, Fulcrum and keepalived measured in the same namespace lab.
// Run as root: `bun bench/vrrp.bench.ts` (or `deno run -A --no-check bench/vrrp.bench.ts`);
// BENCH_RUNS (default 5) trials per figure (0: CPU only), BENCH_CPU_SECONDS (default 30) for the CPU figure.
//
// Failover is read from a packet capture on a third node, so both ends come from one clock:
// - crash: the dead master's last advert → the backup's first advert (the master-down interval
//   plus whatever the backup adds), target ≤ 3 × interval + skew + 50 ms;
// - clean: the master's priority-0 advert → the backup's first advert, target ≤ skew + 50 ms.
// CPU: one process running ten instances (1 s adverts, all master), user+system time over the window.
import { runtime } from "../src/runtime/index.ts";
import { exec, Lab, sleep, waitFor } from "../test/helpers/netns.ts";
import {
  fulcrumConfig, keepalivedConfig, type Peer, startFulcrum, startKeepalived, waitForAddress,
} from "../test/helpers/vrrp.ts";

const RUNS = Number(runtime.env("BENCH_RUNS") ?? 5);
const CPU_SECONDS = Number(runtime.env("BENCH_CPU_SECONDS") ?? 30);
const VIP = "10.200.9.100";
const BACKUP_PRIORITY = 100;

type Impl = "fulcrum" | "keepalived";
interface Setting {
  label: string;
  version: 2 | 3;
  intervalS: number;
}
const SETTINGS: Setting[] = [
  { label: "v2, advert_int 1 s", version: 2, intervalS: 1 },
  { label: "v3, advert_int 10 cs", version: 3, intervalS: 0.1 },
];

/** RFC skew of the backup, in ms (v2 always uses 1 s in the formula). */
function skewMs(s: Setting): number {
  return ((256 - BACKUP_PRIORITY) * (s.version === 2 ? 1000 : s.intervalS * 1000)) / 256;
}

const lab = await Lab.create("bench", ["a", "b", "c"], 9);

async function startPeer(impl: Impl, node: string, priority: number, s: Setting): Promise<Peer> {
  if (impl === "fulcrum") {
    return startFulcrum(lab, node, fulcrumConfig({ priority, version: s.version, interval: s.intervalS, vip: `${VIP}/24` }));
  }
  return startKeepalived(lab, node, keepalivedConfig({ priority, version: s.version, interval: s.intervalS, vip: `${VIP}/24` }));
}

interface Advert {
  t: number;
  source: string;
  priority: number;
}

/** Adverts in a capture, from tcpdump's text decode (times in ms). */
async function readAdverts(file: string): Promise<Advert[]> {
  const r = await exec(["tcpdump", "-n", "-tt", "-r", file], 20_000);
  const out: Advert[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /^(\d+\.\d+) IP (\S+) > \S+: VRRPv\d, Advertisement, vrid \d+, prio (\d+)/.exec(line);
    if (m) out.push({ t: Number(m[1]) * 1000, source: m[2], priority: Number(m[3]) });
  }
  return out;
}

/** One failover: master on a, backup on b, both `impl`; returns the gap on the wire in ms. */
async function trial(impl: Impl, s: Setting, kind: "crash" | "clean"): Promise<number> {
  const file = `/tmp/fulcrum-bench-vrrp-${Date.now()}.pcap`;
  const capture = runtime.spawn(["ip", "netns", "exec", lab.node("c").ns, "tcpdump", "--immediate-mode", "-i", "eth0", "-U", "-w", file, "ip proto 112"]);
  const peers: Peer[] = [];
  try {
    await sleep(300);
    const master = await startPeer(impl, "a", 150, s);
    peers.push(master);
    await waitForAddress(lab, "a", VIP, 10_000);
    const backup = await startPeer(impl, "b", BACKUP_PRIORITY, s);
    peers.push(backup);
    // Let the backup hear the master for a while, then fail at a random point of an interval.
    await sleep(Math.max(1500, 4 * s.intervalS * 1000) + Math.random() * s.intervalS * 1000);
    if (kind === "crash") await master.kill();
    else await master.stop();
    await waitForAddress(lab, "b", VIP, 10_000);
    await sleep(300);
  } finally {
    for (const p of peers) await p.stop();
    capture.kill("SIGINT");
    await capture.exited;
  }
  const adverts = await readAdverts(file);
  if (runtime.env("BENCH_KEEP") === undefined) await exec(["rm", "-f", file]);
  const a = lab.node("a").ipv4, b = lab.node("b").ipv4;
  const firstB = adverts.find((x) => x.source === b && x.priority === BACKUP_PRIORITY && adverts.some((y) => y.source === a && y.t < x.t));
  const lastA = adverts.filter((x) => x.source === a && firstB !== undefined && x.t < firstB.t && (kind === "clean" ? x.priority === 0 : x.priority !== 0)).at(-1);
  if (firstB === undefined || lastA === undefined) throw new Error(`${impl} ${s.label} ${kind}: adverts not found in the capture`);
  return firstB.t - lastA.t;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

/** CPU time (user + system, ms) of a process so far, from /proc/PID/stat (clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await runtime.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function idleCpu(impl: Impl): Promise<number> {
  const vip = (i: number) => `10.200.9.${110 + i}/24`;
  let peer: Peer;
  if (impl === "fulcrum") {
    const instances = Array.from({ length: 10 }, (_, i) =>
      `    - { name: VI_${i}, interface: eth0, virtual_router_id: ${101 + i}, priority: 150, version: 2, advert_int: 1, ` +
      `virtual_ipaddress: [${vip(i)}] }`);
    peer = await startFulcrum(lab, "a", ["vrrp:", "  instances:", ...instances, ""].join("\n"), 10);
  } else {
    const blocks = Array.from({ length: 10 }, (_, i) => keepalivedConfig({ vrid: 101 + i, priority: 150, version: 2, vip: vip(i) })
      .replace(/global_defs \{[^}]*\}\n/, "").replace("vrrp_instance VI_1", `vrrp_instance VI_${i}`)).join("");
    peer = await startKeepalived(lab, "a", `global_defs {\n  router_id fulcrum_bench\n}\n${blocks}`);
  }
  try {
    await waitFor("ten masters", async () => (await lab.addresses("a")).length >= 12, 15_000, 200);
    await sleep(2000);
    // keepalived does its VRRP work in a child process (pid in the pidfile); Fulcrum in one process.
    const pid = impl === "fulcrum"
      ? peer.pid
      : Number((await runtime.readTextFile(`/tmp/fulcrum-test-ka-${lab.node("a").ns}-vrrp.pid`)).trim());
    const before = await cpuMs(pid);
    const t0 = performance.now();
    await sleep(CPU_SECONDS * 1000);
    const used = (await cpuMs(pid)) - before;
    return (100 * used) / (performance.now() - t0);
  } finally {
    await peer.stop();
  }
}

try {
  const lines: string[] = [];
  const say = (line: string) => { console.log(line); lines.push(line); };
  say(`| figure | setting | Fulcrum median ms | keepalived median ms | target ms | Fulcrum / keepalived |`);
  say(`|---|---|---:|---:|---:|---:|`);
  for (const s of RUNS > 0 ? SETTINGS : []) {
    for (const kind of ["crash", "clean"] as const) {
      const results: Record<Impl, number[]> = { fulcrum: [], keepalived: [] };
      for (let i = 0; i < RUNS; i++) {
        for (const impl of ["fulcrum", "keepalived"] as const) results[impl].push(await trial(impl, s, kind));
      }
      const target = kind === "crash" ? 3 * s.intervalS * 1000 + skewMs(s) + 50 : skewMs(s) + 50;
      const f = median(results.fulcrum), k = median(results.keepalived);
      say(`| ${kind} failover | ${s.label} | ${f.toFixed(1)} | ${k.toFixed(1)} | ≤ ${target.toFixed(1)} | ${(f / k).toFixed(2)} |`);
      console.error(`  ${kind} ${s.label}: fulcrum ${results.fulcrum.map((x) => x.toFixed(1)).join(", ")}; keepalived ${results.keepalived.map((x) => x.toFixed(1)).join(", ")}`);
    }
  }
  const fCpu = await idleCpu("fulcrum");
  const kCpu = await idleCpu("keepalived");
  say(`| CPU, ten instances at 1 s (% of one core) | v2, all master, ${CPU_SECONDS} s | ${fCpu.toFixed(2)} | ${kCpu.toFixed(2)} | ≤ 1.00 | ${(fCpu / Math.max(kCpu, 0.01)).toFixed(1)} |`);
} finally {
  await lab.destroy();
}
