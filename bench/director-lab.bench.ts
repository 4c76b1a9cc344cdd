// The packet director in the NAT lab against the kernel doing the same NAT with nft DNAT, on the
// same namespaces and cores: a client, the director and three nginx real servers routing back
// through it (the lab of test/director-nat.test.ts). wrk from the client through the VIP, keep-
// alive (packets per second, requests per second) and with `Connection: close` (new TCP
// connections per second). Packets through the director are read from its two interfaces' receive
// counters over the run, so both implementations are counted the same way.
// Run as root: `bun bench/director-lab.bench.ts` (or `deno run -A --no-check bench/director-lab.bench.ts`);
// BENCH_RUNS (default 3) trials per figure, BENCH_SECONDS (default 5) per trial.
import { writeFileSync } from "node:fs";
import { runtime, type Child } from "../src/runtime/index.ts";
import { exec, Lab, run, waitFor } from "../test/helpers/netns.ts";
import { type Peer, startFulcrum } from "../test/helpers/vrrp.ts";
import { tempDir } from "../test/helpers/l4.ts";

const RUNS = Number(runtime.env("BENCH_RUNS") ?? 3);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const SUBNET = 63;
const VIP = `10.201.${SUBNET}.100`;
const SERVERS = ["s1", "s2", "s3"];

const lab = await Lab.create("dbench", ["director", ...SERVERS], SUBNET);
const nginx: Child[] = [];
let fulcrum: Peer | null = null;

async function setUp(): Promise<void> {
  await lab.addRoutedNode("client", "director", "eth1", SUBNET);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "route", "add", "default", "via", lab.node("director").ipv4]);
    const dir = tempDir(`director-bench-${s}`);
    writeFileSync(`${dir}/nginx.conf`, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen ${lab.node(s).ipv4}:8080 backlog=4096; location / { return 200 "${s}\\n"; } }
}
`);
    nginx.push(lab.spawn(s, ["nginx", "-p", dir, "-c", `${dir}/nginx.conf`]));
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", `http://${lab.node(s).ipv4}:8080/`])).code === 0, 10_000, 100);
  }
}

/** Packets received on the director's two interfaces so far. */
async function directorPackets(): Promise<number> {
  const links = JSON.parse(await run(["ip", "-s", "-j", "-n", lab.node("director").ns, "link", "show"])) as
    { ifname: string; stats64: { rx: { packets: number } } }[];
  return links.filter((l) => l.ifname === "eth0" || l.ifname === "eth1").reduce((n, l) => n + l.stats64.rx.packets, 0);
}

interface Trial { rps: number; pps: number; errors: number }

async function wrk(close: boolean): Promise<Trial> {
  const before = await directorPackets();
  const t0 = performance.now();
  const argv = ["wrk", "-t1", "-c32", `-d${SECONDS}s`, ...(close ? ["-H", "Connection: close"] : []), `http://${VIP}/`];
  const r = await lab.exec("client", argv, (SECONDS + 30) * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const packets = (await directorPackets()) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0)
    + [...r.stdout.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((n, m) => n + Number(m[2]), 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return { rps, pps: packets / seconds, errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Figures { pps: number; rps: number; cps: number; errors: number }

/** One trial of each kind; the first wrk of a start warms up (ARP, tables, JIT) and is not counted. */
async function trial(): Promise<{ keep: Trial; close: Trial }> {
  await wrk(false);
  return { keep: await wrk(false), close: await wrk(true) };
}

function figures(trials: { keep: Trial; close: Trial }[]): Figures {
  return {
    pps: median(trials.map((t) => t.keep.pps)), rps: median(trials.map((t) => t.keep.rps)),
    cps: median(trials.map((t) => t.close.rps)), errors: trials.reduce((n, t) => n + t.keep.errors + t.close.errors, 0),
  };
}

async function startDirector(): Promise<void> {
  const servers = SERVERS.map((s) => `${lab.node(s).ipv4}:8080`).join(", ");
  fulcrum = await startFulcrum(lab, "director", `
pools:
  web:
    scheduler: rr
    servers: [${servers}]
virtual_servers:
  - name: web
    address: ${VIP}:80
    lb_kind: nat
    interface: eth1
    pool: web
`, 1, /directing tcp:\/\//g);
}

async function startNft(): Promise<void> {
  const map = SERVERS.map((s, i) => `${i} : ${lab.node(s).ipv4} . 8080`).join(", ");
  const file = `${tempDir("director-bench-nft")}/nat.nft`;
  writeFileSync(file, `table ip fulcrum_bench {
  chain pre {
    type nat hook prerouting priority -100;
    ip daddr ${VIP} tcp dport 80 dnat ip to numgen inc mod 3 map { ${map} }
  }
}
`);
  await lab.exec("director", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
  await run(["ip", "-n", lab.node("director").ns, "addr", "add", `${VIP}/32`, "dev", "eth1"]);
  await run(["ip", "netns", "exec", lab.node("director").ns, "nft", "-f", file]);
}

async function stopNft(): Promise<void> {
  await exec(["ip", "netns", "exec", lab.node("director").ns, "nft", "delete", "table", "ip", "fulcrum_bench"]);
  await exec(["ip", "-n", lab.node("director").ns, "addr", "del", `${VIP}/32`, "dev", "eth1"]);
}

try {
  await setUp();
  // Trials alternate, so load from elsewhere on the shared machine falls on both alike.
  const ours: { keep: Trial; close: Trial }[] = [], kernel: { keep: Trial; close: Trial }[] = [];
  for (let i = 0; i < RUNS; i++) {
    await startDirector();
    ours.push(await trial());
    const t0 = performance.now();
    const code = await fulcrum!.stop();
    console.log(`fulcrum stopped: exit ${code} after ${(performance.now() - t0).toFixed(0)} ms`);
    fulcrum = null;
    await startNft();
    kernel.push(await trial());
    await stopNft();
    console.log(`run ${i + 1}: fulcrum ${JSON.stringify(ours[i])}\n       nft ${JSON.stringify(kernel[i])}`);
  }
  const director = figures(ours), nft = figures(kernel);
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  console.log(`\nruntime ${runtime.name} ${runtime.version}; ${RUNS} runs x ${SECONDS} s, medians; wrk -t1 -c32 from the client`);
  console.log("| | packets/s through the director | requests/s (keep-alive) | new connections/s | wrk errors |");
  console.log("|---|---:|---:|---:|---:|");
  console.log(`| Fulcrum nat (${runtime.name}) | ${director.pps.toFixed(0)} | ${director.rps.toFixed(0)} | ${director.cps.toFixed(0)} | ${director.errors} |`);
  console.log(`| nft dnat (kernel) | ${nft.pps.toFixed(0)} | ${nft.rps.toFixed(0)} | ${nft.cps.toFixed(0)} | ${nft.errors} |`);
  console.log(`| ratio Fulcrum / nft | ${ratio(director.pps, nft.pps)} | ${ratio(director.rps, nft.rps)} | ${ratio(director.cps, nft.cps)} | |`);
} finally {
  await (fulcrum as Peer | null)?.stop();
  for (const c of nginx) c.kill("SIGKILL");
  await lab.destroy();
}
