// The many-nodes lab (issue 12): a client behind a router whose route to each VIP has three next
// hops (ECMP, hashed on ports), three Fulcrum nodes each running `fulcrum run` with one config
// (pools discovered from etcd, no hash_seed, a DR virtual server per pool), three nginx real
// servers and etcd, all on one segment. The test (test/cluster-ecmp.test.ts) and the bench
// (bench/cluster.bench.ts) both build it here.
//
//   client 10.201.S.2 (downloads from .10-.17) ── eth1 [router 10.201.S.1 · 10.200.S.1] eth0 ── bridge 10.200.S.0/24
//   bridge: n1 .2, n2 .3, n3 .4 (Fulcrum: the DR director, the VIPs on eth0); s1 .5, s2 .6, s3 .7
//           (nginx; the VIPs on lo, arp_ignore/announce, default route via the router); etcd .8
//   router: ip route VIP/32 nexthop via n1 nexthop via n2 nexthop via n3; fib_multipath_hash_policy=1
//
// A node lost is what a routing daemon sees: its Fulcrum SIGKILLed, then its next hop taken out
// of every VIP's route; a node added is its next hop put back once it runs. Either way the
// kernel's hash-threshold multipath moves flows, and a flow moved to a node that has no entry for
// it goes on only if that node picks the same server (dr + mh with the hash seed shared through
// etcd: adopted).
import { writeFileSync } from "node:fs";
import { type Child } from "../../src/runtime/index.ts";
import { parseWrk } from "./wrk.ts";
import { spawnLabNginx } from "./lab-nginx.ts";
import { Lab, waitFor } from "./netns.ts";
import { type Peer, startFulcrum } from "./vrrp.ts";
import { startLabEtcd, type LabEtcd } from "./etcd.ts";
import { tempDir } from "./l4.ts";

export const NODES = ["n1", "n2", "n3"];
export const SERVERS = ["s1", "s2", "s3"];
export const PREFIX = "/ecmp/";
/** The client's extra addresses the downloads come from: mh keys on the client address, so
 * several spread the flows over the servers. */
const SOURCES = 8;
const ADMIN = "http://127.0.0.1:9901";

export interface ServiceSpec {
  /** Pool and virtual server name. */
  name: string;
  scheduler: string;
}

export interface Service extends ServiceSpec {
  vip: string;
}

export interface LabOptions {
  /** The slow download's size and nginx's limit_rate for it (bytes, bytes/s). */
  downloadBytes: number;
  rateBytes: number;
}

/** One download's outcome, from curl's -w line. */
export interface Transfer {
  /** The client's address:port (the flow). */
  flow: string;
  exit: number;
  status: number;
  bytes: number;
}

export interface NodeChange {
  /** Per service: downloads established before the change, and those of them that did not complete. */
  held: Record<string, number>;
  broken: Record<string, Transfer[]>;
  /** What the nodes running at the end counted from the change on, summed: flows taken over,
   * and packets dropped for want of an entry. */
  adopted: number;
  notSyn: number;
  /** What was not established at the change ("" when every download was), for the record. */
  unopened: string;
  /** wrk through the first service's VIP across the change. */
  wrk: { requests: number; failed: number; out: string };
}

const esc = (s: string) => s.replace(/\./g, "\\.");

export class EcmpLab {
  readonly nodes = new Map<string, Peer>();
  private readonly nginx: Child[] = [];

  private constructor(
    readonly lab: Lab,
    readonly etcd: LabEtcd,
    readonly services: Service[],
    readonly subnet: number,
    readonly options: LabOptions,
  ) {}

  static async create(tag: string, subnet: number, specs: ServiceSpec[], options: LabOptions): Promise<EcmpLab> {
    const lab = await Lab.create(tag, ["router", ...NODES, ...SERVERS, "etcd"], subnet);
    try {
      const services = specs.map((s, i) => ({ ...s, vip: `10.203.${subnet}.${100 + i}` }));
      await lab.addRoutedNode("client", "router", "eth1", subnet);
      for (let k = 0; k < SOURCES; k++) await lab.exec("client", ["ip", "addr", "add", `10.201.${subnet}.${10 + k}/24`, "dev", "eth0"]);
      for (const [key, value] of [["ip_forward", "1"], ["fib_multipath_hash_policy", "1"]]) {
        await lab.exec("router", ["sysctl", "-q", "-w", `net.ipv4.${key}=${value}`]);
      }
      const etcd = await startLabEtcd(lab, "etcd");
      const self = new EcmpLab(lab, etcd, services, subnet, options);
      for (const s of SERVERS) await self.prepareServer(s);
      for (const svc of services) for (const s of SERVERS) await etcd.put(self.serverKey(svc.name, s), "");
      await self.route(NODES);
      return self;
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  }

  private async prepareServer(server: string): Promise<void> {
    const lab = this.lab;
    for (const svc of this.services) await lab.exec(server, ["ip", "addr", "add", `${svc.vip}/32`, "dev", "lo"]);
    for (const dev of ["all", "eth0"]) {
      await lab.exec(server, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_ignore=1`]);
      await lab.exec(server, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_announce=2`]);
    }
    await lab.exec(server, ["ip", "route", "add", "default", "via", lab.node("router").ipv4]);
    const dir = tempDir(`ecmp-${server}`);
    writeFileSync(`${dir}/big`, new Uint8Array(this.options.downloadBytes).fill(0x61));
    // Port 80 on every address: the VIPs (what the directors send) and its own (health checks).
    this.nginx.push(spawnLabNginx(lab, server, dir, `    listen 80 backlog=1024;
    location / { return 200 "${server}\\n"; }
    location = /big { alias ${dir}/big; limit_rate ${this.options.rateBytes}; }`, { connections: 1024 }));
    const url = `http://${lab.node(server).ipv4}/`;
    await waitFor(`nginx on ${server}`, async () => (await lab.exec(server, ["curl", "-s", "-m", "1", url])).code === 0, 10_000, 100);
  }

  serverKey(pool: string, server: string): string {
    return `${PREFIX}pools/${pool}/servers/${this.lab.node(server).ipv4}:80`;
  }

  /** The one config every node runs. */
  config(): string {
    const pools = this.services.map((s) => `  ${s.name}:
    scheduler: ${s.scheduler}
    discovery: etcd
    health: { type: tcp, interval: 1s, timeout: 500ms, rise: 1, fall: 3 }`).join("\n");
    const vss = this.services.map((s) => `  - { name: ${s.name}, address: "${s.vip}:80", protocol: tcp, lb_kind: dr, interface: eth0, pool: ${s.name} }`).join("\n");
    return `admin: { bind: 127.0.0.1:9901 }
discovery:
  etcd: { endpoints: [${this.etcd.url}], prefix: ${PREFIX} }
pools:
${pools}
virtual_servers:
${vss}
`;
  }

  /** `fulcrum run` on a node, once it directs every virtual server and knows every real server's MAC. */
  async startNode(node: string): Promise<Peer> {
    const peer = await startFulcrum(this.lab, node, this.config(), this.services.length, /directing tcp:\/\//g);
    this.nodes.set(node, peer);
    for (const svc of this.services) {
      for (const s of SERVERS) {
        await peer.waitForLine(new RegExp(`director: ${svc.name}: real server ${esc(this.lab.node(s).ipv4)}:80 is at `), 10_000);
      }
    }
    return peer;
  }

  /** SIGKILL: the node crashed. */
  async killNode(node: string): Promise<void> {
    await this.nodes.get(node)?.kill();
    this.nodes.delete(node);
  }

  /** The router's route to every VIP: one next hop per node given, as a routing daemon keeps it. */
  async route(nodes: string[]): Promise<void> {
    const hops = nodes.flatMap((n) => ["nexthop", "via", this.lab.node(n).ipv4]);
    for (const svc of this.services) {
      const r = await this.lab.exec("router", ["ip", "route", "replace", `${svc.vip}/32`, ...hops]);
      if (r.code !== 0) throw new Error(`route to ${svc.vip}: ${r.stderr}`);
    }
  }

  /** A node's admin API (JSON), read from inside its namespace. */
  async api<T>(node: string, path: string): Promise<T> {
    const r = await this.lab.exec(node, ["curl", "-s", "-m", "3", `${ADMIN}${path}`]);
    if (r.code !== 0) throw new Error(`${node} ${path}: curl exit ${r.code} ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** wrk from the client through a VIP (bounded by `seconds`): requests and failures (socket errors and non-2xx). */
  async wrk(vip: string, seconds: number, connections = 16): Promise<{ requests: number; failed: number; out: string }> {
    const r = await this.lab.exec("client", ["wrk", "-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "3s", `http://${vip}/`], (seconds + 15) * 1000);
    const out = r.stdout + r.stderr;
    const parsed = parseWrk(out);
    if (r.code !== 0 || parsed.requests === 0) throw new Error(`wrk through ${vip}: exit ${r.code}: ${out}`);
    return { requests: parsed.requests, failed: parsed.errors, out };
  }

  /** Starts `perSource` slow downloads from each source address through a service's VIP (a curl
   * per source, its transfers in parallel, each on its own connection). */
  downloads(svc: Service, perSource: number): Downloads {
    return new Downloads(this, svc, perSource);
  }

  /** The client's established connections to `vip`:80, by the client's address:port. */
  async established(vip: string): Promise<Set<string>> {
    const r = await this.lab.exec("client", ["ss", "-tnH", "state", "established", "dst", `${vip}:80`]);
    return new Set(r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[2]).filter((a) => a !== undefined && a !== ""));
  }

  /** One node lost under long-lived connections and wrk (see acrossChange): `victim` SIGKILLed
   * and, `routeDelayMs` later, taken out of the routes. */
  nodeLoss(victim: string, perSource: number, routeDelayMs = 0): Promise<NodeChange> {
    return this.acrossChange(perSource, async () => {
      await this.killNode(victim);
      // A routing daemon's detection time (BFD, a BGP hold timer): the flows still reach the dead node.
      if (routeDelayMs > 0) await new Promise((r) => setTimeout(r, routeDelayMs));
      await this.route(NODES.filter((n) => this.nodes.has(n)));
    });
  }

  /** One node added under long-lived connections and wrk (see acrossChange): `node`, already
   * running and out of the routes (started after a loss), put back in them, as a routing daemon
   * announces a node once it is ready. */
  nodeJoin(node: string, perSource: number): Promise<NodeChange> {
    if (!this.nodes.has(node)) throw new Error(`${node} must run before it joins the routes`);
    return this.acrossChange(perSource, () => this.route(NODES.filter((n) => this.nodes.has(n))));
  }

  /** `perSource` downloads from each source address through every service's VIP; once all are
   * established, wrk starts through the first VIP, and a second later `change` runs. Broken: a
   * download established before the change that did not complete. */
  async acrossChange(perSource: number, change: () => Promise<void>): Promise<NodeChange> {
    const runs = this.services.map((svc) => this.downloads(svc, perSource));
    const want = perSource * SOURCES;
    let held: Set<string>[] = [];
    // Up to 15 s for every download to be open (the downloads last longer); on a loaded machine a
    // handshake may still be retrying then: the change is measured on those established.
    await waitFor(`${want} downloads established through every VIP`, async () => {
      held = await Promise.all(this.services.map((s) => this.established(s.vip)));
      return held.every((set) => set.size >= want);
    }, 15_000, 200).catch(() => {});
    let unopened = "";
    if (held.some((set) => set.size < want)) {
      const states = (await this.lab.exec("client", ["ss", "-tanH", "dst", `10.203.${this.subnet}.0/24`])).stdout;
      const counters = await Promise.all([...this.nodes.keys()].map((n) => this.directorCounters(n)));
      const open = states.split("\n").filter((l) => l !== "" && !/^(ESTAB|TIME-WAIT)/.test(l));
      unopened = `established ${held.map((h) => h.size)} of ${want}; other states: ${open.join("; ")}; curl: ${runs.map((r) => r.progress()).join(" | ")}; directors: ${JSON.stringify(counters)}`;
    }
    // A few connections, bounded to 6 s: requests in flight and keep-alive connections over
    // the change, without taking the CPU the 400 downloads' packets need.
    const load = this.wrk(this.services[0].vip, 6, 4);
    await new Promise((r) => setTimeout(r, 1000));
    const before = new Map<string, Record<string, number>>();
    for (const n of this.nodes.keys()) before.set(n, await this.directorCounters(n));
    await change();
    const results = await Promise.all(runs.map((r) => r.results()));
    const out: NodeChange = { held: {}, broken: {}, adopted: 0, notSyn: 0, wrk: await load, unopened };
    this.services.forEach((svc, i) => {
      out.held[svc.name] = held[i].size;
      out.broken[svc.name] = results[i].filter((t) => held[i].has(t.flow) && !this.completed(t));
    });
    for (const n of this.nodes.keys()) {
      const after = await this.directorCounters(n), was = before.get(n) ?? {};
      out.adopted += (after.adopted ?? 0) - (was.adopted ?? 0);
      out.notSyn += (after.not_syn ?? 0) - (was.not_syn ?? 0);
    }
    return out;
  }

  async directorCounters(node: string): Promise<Record<string, number>> {
    return (await this.api<{ director: { counters: Record<string, number> } }>(node, "/api/l4")).director.counters;
  }

  completed(t: Transfer): boolean {
    return t.exit === 0 && t.status === 200 && t.bytes === this.options.downloadBytes;
  }

  sources(): string[] {
    return Array.from({ length: SOURCES }, (_, k) => `10.201.${this.subnet}.${10 + k}`);
  }

  async destroy(): Promise<void> {
    for (const peer of this.nodes.values()) await peer.stop();
    this.nodes.clear();
    for (const child of this.nginx) child.kill("SIGKILL");
    await this.etcd.remove();
    await this.lab.destroy();
  }
}

/** curl per source address, its transfers in parallel; each prints its exit code, status, size
 * and local port. A transfer that gets no byte for 6 s is aborted (a connection broken: its
 * packets dropped, it would otherwise retransmit for minutes); all end within 90 s. */
export class Downloads {
  private readonly children: { source: string; child: Child; out: string; err: string; code: number | null; read: Promise<void> }[] = [];

  constructor(lab: EcmpLab, svc: Service, perSource: number) {
    const url = `http://${svc.vip}/big`;
    for (const source of lab.sources()) {
      const argv = [
        "curl", "-s", "-S", "--parallel", "--parallel-immediate", "--parallel-max", String(perSource), "--interface", source,
        "--speed-limit", "1", "--speed-time", "6", "-m", "90",
        "-w", "%{exitcode} %{http_code} %{size_download} %{local_port}\\n",
        ...Array.from({ length: perSource }, () => ["-o", "/dev/null", url]).flat(),
      ];
      const child = lab.lab.spawn("client", argv);
      const entry = { source, child, out: "", err: "", code: null as number | null, read: Promise.resolve() };
      const text = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
        const d = new TextDecoder();
        for await (const chunk of stream) add(d.decode(chunk, { stream: true }));
      };
      entry.read = Promise.all([text(child.stdout, (t) => entry.out += t), text(child.stderr, (t) => entry.err += t)]).then(() => {});
      void child.exited.then((code) => entry.code = code);
      this.children.push(entry);
    }
  }

  /** Every transfer's outcome, once every curl has ended. */
  async results(): Promise<Transfer[]> {
    for (const c of this.children) {
      await c.read;
      await c.child.exited;
    }
    return this.children.flatMap((c) => transfers(c.source, c.out));
  }

  /** What each curl reported so far (the transfers that ended, its errors, its exit code). */
  progress(): string {
    return this.children.map((c) => `${c.source}: ${transfers(c.source, c.out).length} ended${c.code === null ? "" : `, curl exited ${c.code}`}${c.err ? ` (${c.err.trim().slice(0, 200)})` : ""}`).join("; ");
  }
}

function transfers(source: string, out: string): Transfer[] {
  const all: Transfer[] = [];
  for (const line of out.split("\n")) {
    const m = /^(\d+) (\d+) (\d+) (\d+)$/.exec(line.trim());
    if (m) all.push({ flow: `${source}:${m[4]}`, exit: Number(m[1]), status: Number(m[2]), bytes: Number(m[3]) });
  }
  return all;
}
