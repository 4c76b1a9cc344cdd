// The packet director in namespace labs against the kernel doing the same job on the same
// namespaces and cores, wrk from a client through the VIP to three nginx real servers:
// - nat (the lab of test/director-nat.test.ts: the servers route back through the director)
//   against nft DNAT (a prerouting nat chain, numgen round robin, conntrack);
// - dr (the lab of test/director-dr.test.ts: one segment, the VIP on the servers' lo) against
//   nft in the netdev ingress hook setting the destination MAC by a hash of the flow and
//   forwarding the frame back out (`ether daddr set jhash ... fwd to`);
// - tun (the lab of test/director-tun.test.ts: dr's segment, the servers decapsulating IPIP with
//   test/helpers/ipip-decap.ts, as this kernel has no ipip device) against the same kernel DR:
//   the kernel here cannot encapsulate (no ipip device, nft has no IPIP), so its nearest job is
//   the one-directional forward to the servers without the outer header.
// - fullnat (the lab of test/director-fullnat.test.ts: the servers' only route leads to the local
//   addresses) against nft DNAT in prerouting plus SNAT to the same local addresses in postrouting.
// Keep-alive (requests/s, and packets/s through the director: the packets received on its
// interfaces over the run, counted the same way for both) and `Connection: close` (new TCP
// connections/s).
// Run as root: `bun bench/director-lab.bench.ts` (or `deno run -A --no-check bench/director-lab.bench.ts`);
// BENCH_RUNS (default 3) trials per figure, BENCH_SECONDS (default 5) per trial, BENCH_CASES
// (default "nat,dr"; "tun", "fullnat" and "idle" too), BENCH_DR_TX (default "sendmmsg,ring": dr is run with each of the frame
// port's senders in turn, FULCRUM_DR_TX, in the same trial rounds), BENCH_IDLE_MODES (default
// "wait"; "tick,wait": every case is run with each port reader mode in turn, FULCRUM_DIRECTOR_IDLE).
// BENCH_CASES=idle: the nat lab with no traffic: the director's CPU over BENCH_IDLE_SECONDS
// (default 30; /proc/PID/stat) and the first packet's latency after an idle spell (curl's TCP
// connect time through the VIP, BENCH_FIRST samples 300 ms apart), the port reader's idle wait
// against the 1 ms poll it replaced (FULCRUM_DIRECTOR_IDLE=tick), alternating.
import { writeFileSync } from "node:fs";
import { runtime, type Child } from "../src/runtime/index.ts";
import { exec, Lab, run, waitFor } from "../test/helpers/netns.ts";
import { type Peer, startFulcrum } from "../test/helpers/vrrp.ts";
import { tempDir } from "../test/helpers/l4.ts";
import { startIpipDecap } from "../test/helpers/lab-ipip.ts";

const RUNS = Number(runtime.env("BENCH_RUNS") ?? 3);
const SECONDS = Number(runtime.env("BENCH_SECONDS") ?? 5);
const CASES = (runtime.env("BENCH_CASES") ?? "nat,dr").split(",");
const SERVERS = ["s1", "s2", "s3"];
const DR_TX = (runtime.env("BENCH_DR_TX") ?? "sendmmsg,ring").split(",");
const IDLE_MODES = (runtime.env("BENCH_IDLE_MODES") ?? "wait").split(",");
const IDLE_SECONDS = Number(runtime.env("BENCH_IDLE_SECONDS") ?? 30);
const FIRST = Number(runtime.env("BENCH_FIRST") ?? 15);
const CLOCK_TICKS = Number((await run(["getconf", "CLK_TCK"])).trim()) || 100;

/** CPU seconds a process has used so far, every thread, user and system (/proc/PID/stat). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await runtime.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const nginx: Child[] = [];
const decaps: Child[] = [];
const labs: Lab[] = [];
let fulcrum: Peer | null = null;

interface Bench {
  kind: "nat" | "dr" | "tun" | "fullnat";
  lab: Lab;
  vip: string;
  /** The director's interfaces whose received packets count. */
  devices: string[];
  fulcrumConfig(): string;
  /** Output lines that say Fulcrum is ready to direct. */
  ready: RegExp[];
  startKernel(): Promise<void>;
  stopKernel(): Promise<void>;
}

function nginxConf(dir: string, server: string, listen: string): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen ${listen} backlog=4096; location / { return 200 "${server}\\n"; } }
}
`;
}

async function startNginx(lab: Lab, listen: (s: string) => string, url: (s: string) => string): Promise<Child[]> {
  const out: Child[] = [];
  for (const s of SERVERS) {
    const dir = tempDir(`director-bench-${s}`);
    writeFileSync(`${dir}/nginx.conf`, nginxConf(dir, s, listen(s)));
    out.push(lab.spawn(s, ["nginx", "-p", dir, "-c", `${dir}/nginx.conf`]));
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", url(s)])).code === 0, 10_000, 100);
  }
  return out;
}

async function nft(lab: Lab, text: string): Promise<void> {
  const file = `${tempDir("director-bench-nft")}/rules.nft`;
  writeFileSync(file, text);
  await run(["ip", "netns", "exec", lab.node("director").ns, "nft", "-f", file]);
}

async function natBench(): Promise<Bench> {
  const subnet = 63, vip = `10.201.${subnet}.100`;
  const lab = await Lab.create("dbench", ["director", ...SERVERS], subnet);
  labs.push(lab);
  await lab.addRoutedNode("client", "director", "eth1", subnet);
  for (const s of SERVERS) await lab.exec(s, ["ip", "route", "add", "default", "via", lab.node("director").ipv4]);
  nginx.push(...await startNginx(lab, (s) => `${lab.node(s).ipv4}:8080`, (s) => `http://${lab.node(s).ipv4}:8080/`));
  const dir = lab.node("director").ns;
  return {
    kind: "nat", lab, vip, devices: ["eth0", "eth1"],
    fulcrumConfig: () => `
pools:
  web:
    scheduler: rr
    servers: [${SERVERS.map((s) => `${lab.node(s).ipv4}:8080`).join(", ")}]
virtual_servers:
  - name: web
    address: ${vip}:80
    lb_kind: nat
    interface: eth1
    pool: web
`,
    ready: [],
    async startKernel() {
      await lab.exec("director", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      await run(["ip", "-n", dir, "addr", "add", `${vip}/32`, "dev", "eth1"]);
      const map = SERVERS.map((s, i) => `${i} : ${lab.node(s).ipv4} . 8080`).join(", ");
      await nft(lab, `table ip fulcrum_bench {
  chain pre {
    type nat hook prerouting priority -100;
    ip daddr ${vip} tcp dport 80 dnat ip to numgen inc mod 3 map { ${map} }
  }
}
`);
    },
    async stopKernel() {
      await exec(["ip", "netns", "exec", dir, "nft", "delete", "table", "ip", "fulcrum_bench"]);
      await exec(["ip", "-n", dir, "addr", "del", `${vip}/32`, "dev", "eth1"]);
    },
  };
}

async function fullnatBench(): Promise<Bench> {
  const subnet = 66, vip = `10.201.${subnet}.100`, locals = [`10.202.${subnet}.50`, `10.202.${subnet}.51`];
  const lab = await Lab.create("dbfn", ["director", ...SERVERS], subnet);
  labs.push(lab);
  await lab.addRoutedNode("client", "director", "eth1", subnet);
  for (const s of SERVERS) await lab.exec(s, ["ip", "route", "add", `10.202.${subnet}.0/24`, "via", lab.node("director").ipv4]);
  nginx.push(...await startNginx(lab, (s) => `${lab.node(s).ipv4}:8080`, (s) => `http://${lab.node(s).ipv4}:8080/`));
  const dir = lab.node("director").ns;
  const addresses = [`${vip}/32`, ...locals.map((a) => `${a}/32`)];
  return {
    kind: "fullnat", lab, vip, devices: ["eth0", "eth1"],
    fulcrumConfig: () => `
pools:
  web:
    scheduler: rr
    servers: [${SERVERS.map((s) => `${lab.node(s).ipv4}:8080`).join(", ")}]
virtual_servers:
  - name: web
    address: ${vip}:80
    lb_kind: fullnat
    interface: eth1
    pool: web
    local_addresses: [${locals.join(", ")}]
`,
    ready: [],
    async startKernel() {
      await lab.exec("director", ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      for (const a of addresses) await run(["ip", "-n", dir, "addr", "add", a, "dev", "eth1"]);
      const map = SERVERS.map((s, i) => `${i} : ${lab.node(s).ipv4} . 8080`).join(", ");
      await nft(lab, `table ip fulcrum_bench {
  chain pre {
    type nat hook prerouting priority -100;
    ip daddr ${vip} tcp dport 80 dnat ip to numgen inc mod 3 map { ${map} }
  }
  chain post {
    type nat hook postrouting priority 100;
    ip daddr 10.200.${subnet}.0/24 tcp dport 8080 snat ip to ${locals[0]}-${locals[1]}
  }
}
`);
    },
    async stopKernel() {
      await exec(["ip", "netns", "exec", dir, "nft", "delete", "table", "ip", "fulcrum_bench"]);
      for (const a of addresses) await exec(["ip", "-n", dir, "addr", "del", a, "dev", "eth1"]);
    },
  };
}

/** dr and tun: one segment, the VIP on the servers' lo (tun: they decapsulate IPIP too); the
 * kernel's peer is DR in the netdev ingress hook for both. */
async function directBench(kind: "dr" | "tun"): Promise<Bench> {
  const subnet = kind === "dr" ? 64 : 68, vip = `10.200.${subnet}.100`;
  const lab = await Lab.create(kind === "dr" ? "dbdr" : "dbtun", ["director", "client", ...SERVERS], subnet);
  labs.push(lab);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "addr", "add", `${vip}/32`, "dev", "lo"]);
    for (const dev of ["all", "eth0"]) {
      await lab.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_ignore=1`]);
      await lab.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_announce=2`]);
    }
    if (kind === "tun") decaps.push((await startIpipDecap(lab, s, "ipip0")).child);
  }
  nginx.push(...await startNginx(lab, () => "80", (s) => `http://${lab.node(s).ipv4}/`));
  const dir = lab.node("director").ns;
  const esc = (t: string) => t.replace(/\./g, "\\.");
  return {
    kind, lab, vip, devices: ["eth0"],
    fulcrumConfig: () => `
pools:
  web:
    scheduler: rr
    servers: [${SERVERS.map((s) => `${lab.node(s).ipv4}:80`).join(", ")}]
    health: { type: tcp, interval: 1s }
virtual_servers:
  - name: web
    address: ${vip}:80
    lb_kind: ${kind}
    interface: eth0
    pool: web
`,
    // dr: each server is down until its MAC is known; tun needs none (the kernel routes).
    ready: kind === "dr" ? SERVERS.map((s) => new RegExp(`real server ${esc(lab.node(s).ipv4)}:80 is at`)) : [],
    async startKernel() {
      await run(["ip", "-n", dir, "addr", "add", `${vip}/32`, "dev", "eth0"]);
      // The flow's hash picks the server, so a connection's packets all go to one; the source MAC
      // becomes the director's, as Fulcrum's (else the switch learns the client behind it).
      const map = SERVERS.map((s, i) => `${i} : ${lab.node(s).mac}`).join(", ");
      await nft(lab, `table netdev fulcrum_bench {
  chain ingress {
    type filter hook ingress device "eth0" priority 0;
    ip daddr ${vip} tcp dport 80 ether saddr set ${lab.node("director").mac} ether daddr set jhash ip saddr . tcp sport mod 3 map { ${map} } fwd to "eth0"
  }
}
`);
    },
    async stopKernel() {
      await exec(["ip", "netns", "exec", dir, "nft", "delete", "table", "netdev", "fulcrum_bench"]);
      await exec(["ip", "-n", dir, "addr", "del", `${vip}/32`, "dev", "eth0"]);
    },
  };
}

/** Packets received on the director's counted interfaces so far. */
async function directorPackets(b: Bench): Promise<number> {
  const links = JSON.parse(await run(["ip", "-s", "-j", "-n", b.lab.node("director").ns, "link", "show"])) as
    { ifname: string; stats64: { rx: { packets: number } } }[];
  return links.filter((l) => b.devices.includes(l.ifname)).reduce((n, l) => n + l.stats64.rx.packets, 0);
}

interface Trial { rps: number; pps: number; errors: number }

async function wrk(b: Bench, close: boolean): Promise<Trial> {
  const before = await directorPackets(b);
  const t0 = performance.now();
  const argv = ["wrk", "-t1", "-c32", `-d${SECONDS}s`, ...(close ? ["-H", "Connection: close"] : []), `http://${b.vip}/`];
  const r = await b.lab.exec("client", argv, (SECONDS + 30) * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const packets = (await directorPackets(b)) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0)
    + [...r.stdout.matchAll(/(connect|read|write|timeout) (\d+)/g)].reduce((n, m) => n + Number(m[2]), 0);
  if (!Number.isFinite(rps)) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return { rps, pps: packets / seconds, errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface Figures { pps: number; rps: number; cps: number; errors: number }

/** One trial of each kind; the first wrk of a start warms up (ARP, tables, JIT) and is not counted. */
async function trial(b: Bench): Promise<{ keep: Trial; close: Trial }> {
  await wrk(b, false);
  return { keep: await wrk(b, false), close: await wrk(b, true) };
}

function figures(trials: { keep: Trial; close: Trial }[]): Figures {
  return {
    pps: median(trials.map((t) => t.keep.pps)), rps: median(trials.map((t) => t.keep.rps)),
    cps: median(trials.map((t) => t.close.rps)), errors: trials.reduce((n, t) => n + t.keep.errors + t.close.errors, 0),
  };
}

async function fulcrumTrial(b: Bench, env?: Record<string, string>): Promise<{ keep: Trial; close: Trial }> {
  fulcrum = await startFulcrum(b.lab, "director", b.fulcrumConfig(), 1, /directing tcp:\/\//g, env);
  for (const re of b.ready) await fulcrum.waitForLine(re, 10_000);
  const t = await trial(b);
  const t0 = performance.now();
  const code = await fulcrum.stop();
  console.log(`fulcrum stopped: exit ${code} after ${(performance.now() - t0).toFixed(0)} ms`);
  if (code !== 0) console.log(`its output:\n${fulcrum.output().slice(-2000)}`);
  fulcrum = null;
  return t;
}

async function compare(b: Bench): Promise<void> {
  // Trials alternate, so load from elsewhere on the shared machine falls on all alike. dr runs
  // once per frame sender (FULCRUM_DR_TX in Fulcrum's environment), every case once per idle mode.
  const variants = (b.kind === "dr" ? DR_TX : [""]).flatMap((tx) => IDLE_MODES.map((idle) => ({ tx, idle })))
    .map(({ tx, idle }) => ({
      name: [tx, IDLE_MODES.length > 1 ? `idle=${idle}` : ""].filter(Boolean).join(" "),
      env: { FULCRUM_DIRECTOR_IDLE: idle, ...(tx ? { FULCRUM_DR_TX: tx } : {}) } as Record<string, string>,
    }));
  const ours = variants.map(() => [] as { keep: Trial; close: Trial }[]), kernel: { keep: Trial; close: Trial }[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [v, { name, env }] of variants.entries()) {
      ours[v].push(await fulcrumTrial(b, env));
      console.log(`${b.kind}${name ? ` (${name})` : ""} run ${i + 1}: fulcrum ${JSON.stringify(ours[v][i])}`);
    }
    await b.startKernel();
    kernel.push(await trial(b));
    await b.stopKernel();
    console.log(`${b.kind} run ${i + 1}: nft ${JSON.stringify(kernel[i])}`);
  }
  const nftFigures = figures(kernel);
  const ratio = (a: number, c: number) => (a / c).toFixed(2);
  const peer = { nat: "nft dnat (kernel)", dr: "nft netdev fwd (kernel)", tun: "nft netdev fwd (kernel dr, no IPIP)", fullnat: "nft dnat + snat (kernel)" }[b.kind];
  console.log(`\n${b.kind}: runtime ${runtime.name} ${runtime.version}; ${RUNS} runs x ${SECONDS} s, medians; wrk -t1 -c32 from the client`);
  console.log("| | packets/s through the director | requests/s (keep-alive) | new connections/s | wrk errors |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [v, { name: variant }] of variants.entries()) {
    const director = figures(ours[v]), name = `Fulcrum ${b.kind}${variant ? ` ${variant}` : ""} (${runtime.name})`;
    console.log(`| ${name} | ${director.pps.toFixed(0)} | ${director.rps.toFixed(0)} | ${director.cps.toFixed(0)} | ${director.errors} |`);
    console.log(`| ratio to nft | ${ratio(director.pps, nftFigures.pps)} | ${ratio(director.rps, nftFigures.rps)} | ${ratio(director.cps, nftFigures.cps)} | |`);
  }
  console.log(`| ${peer} | ${nftFigures.pps.toFixed(0)} | ${nftFigures.rps.toFixed(0)} | ${nftFigures.cps.toFixed(0)} | ${nftFigures.errors} |\n`);
  if (variants.length === 2) {
    const per = ours[1].map((t, i) => t.keep.pps / ours[0][i].keep.pps);
    console.log(`${variants[1].name} / ${variants[0].name} packets/s, per round: ${per.map((r) => r.toFixed(2)).join(", ")}; median ${median(per).toFixed(2)}\n`);
  }
}

interface Idle { cpuPercent: number; connectMs: number }

/** One start in `mode`: idle CPU, then the connect times of FIRST requests after idle spells. */
async function idleTrial(b: Bench, mode: string): Promise<Idle> {
  fulcrum = await startFulcrum(b.lab, "director", b.fulcrumConfig(), 1, /directing tcp:\/\//g, { FULCRUM_DIRECTOR_IDLE: mode });
  const url = `http://${b.vip}/`;
  // ARP and JIT warm-up, then a settled start.
  await b.lab.exec("client", ["curl", "-s", "-o", "/dev/null", "-m", "2", url]);
  await sleep(2000);
  const c0 = await cpuSeconds(fulcrum.pid), t0 = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const cpuPercent = (await cpuSeconds(fulcrum.pid) - c0) / ((performance.now() - t0) / 1000) * 100;
  const connects: number[] = [];
  for (let i = 0; i < FIRST; i++) {
    await sleep(300);
    const r = await b.lab.exec("client", ["curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{time_connect}", url]);
    connects.push(Number(r.stdout) * 1000);
  }
  await fulcrum.stop();
  fulcrum = null;
  return { cpuPercent, connectMs: median(connects) };
}

async function idle(b: Bench): Promise<void> {
  const modes = ["tick", "wait"], trials = modes.map(() => [] as Idle[]);
  for (let i = 0; i < RUNS; i++) {
    for (const [m, mode] of modes.entries()) {
      trials[m].push(await idleTrial(b, mode));
      console.log(`idle (${mode}) run ${i + 1}: ${JSON.stringify(trials[m][i])}`);
    }
  }
  console.log(`\nidle: runtime ${runtime.name} ${runtime.version}; ${RUNS} runs; CPU over ${IDLE_SECONDS} s idle; connect = median of ${FIRST} curl connects through the VIP, 300 ms apart`);
  console.log("| port reader | idle CPU (% of a core) | first connect through the VIP (ms) |\n|---|---:|---:|");
  const label = { tick: "1 ms poll (before)", wait: "idle wait in poll(2) off the event loop" } as Record<string, string>;
  for (const [m, mode] of modes.entries()) {
    console.log(`| ${label[mode]} | ${median(trials[m].map((t) => t.cpuPercent)).toFixed(2)} | ${median(trials[m].map((t) => t.connectMs)).toFixed(3)} |`);
  }
}

try {
  for (const kind of CASES) {
    const make = ({ nat: natBench, idle: natBench, dr: () => directBench("dr"), tun: () => directBench("tun"), fullnat: fullnatBench } as Record<string, () => Promise<Bench>>)[kind];
    if (make === undefined) throw new Error(`BENCH_CASES: unknown case ${kind} (nat, dr, tun, fullnat, idle)`);
    const b = await make();
    if (kind === "idle") await idle(b);
    else await compare(b);
  }
} finally {
  await (fulcrum as Peer | null)?.stop();
  for (const c of [...nginx, ...decaps]) c.kill("SIGKILL");
  for (const lab of labs) await lab.destroy();
}
