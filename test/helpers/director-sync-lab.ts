// The lab of test/director-sync.test.ts (and bench/director-sync.bench.ts), laid out as
// keepalived's LVS-NAT: two directors running `fulcrum run`, Fulcrum to Fulcrum VRRP holding the
// VIP outside and the servers' gateway address inside (a sync group, so they move together),
// three nginx servers routed through that gateway, a client outside.
//
//   client 10.201.S.10 ── br1 ── eth1 [d1 .1 | d2 .2, VIP 10.201.S.100] eth0 ── br0 ── s1 s2 s3
//                                         10.200.S.1 | .2, gateway .254      10.200.S.3-5:8080
//
// With kind "fullnat" (`lb_kind: fullnat`), the inside instance holds the local addresses
// 10.202.S.50 and .51 on eth0 instead of a gateway, and the servers' only route is to their
// subnet, on the link: their replies reach whichever director holds the local addresses (it
// answers ARP for them), and they cannot reach the client at all.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { Lab, run, sleep, waitFor } from "./netns.ts";
import { type Peer, startFulcrum, waitForAddress } from "./vrrp.ts";
export type { Peer };
import { tempDir } from "./l4.ts";
import { spawnLabNginx } from "./lab-nginx.ts";
import type { Child } from "../../src/runtime/index.ts";

const SERVERS = ["s1", "s2", "s3"];
/** The file each download fetches. */
export const SIZE = 1 << 20;

export type SyncMode = "off" | "multicast" | "unicast";
/** The virtual server's lb_kind: nat (servers routed through a gateway address) or fullnat. */
export type SyncLabKind = "nat" | "fullnat";

export interface Outcome { code: number; out: string }
export const complete = (o: Outcome): boolean => o.code === 0 && o.out === `200 ${SIZE}`;

interface L4View {
  director: { counters: Record<string, number> };
  virtual_servers: { real_servers: { active: number }[] }[];
}

export class SyncLab {
  readonly vip: string;
  readonly gateway: string;
  /** fullnat: the directors' sources toward the servers (held by the inside VRRP instance). */
  readonly localAddresses: string[];
  private readonly nginx: Child[] = [];
  private readonly accessLogs: string[] = [];
  private readonly running = new Set<Peer>();

  private constructor(readonly lab: Lab, readonly subnet: number, readonly kind: SyncLabKind) {
    this.vip = `10.201.${subnet}.100`;
    this.gateway = `10.200.${subnet}.254`;
    this.localAddresses = kind === "fullnat" ? [`10.202.${subnet}.50`, `10.202.${subnet}.51`] : [];
  }

  static async create(tag: string, subnet: number, kind: SyncLabKind = "nat"): Promise<SyncLab> {
    const lab = await Lab.create(tag, ["d1", "d2", ...SERVERS], subnet);
    const s = new SyncLab(lab, subnet, kind);
    try {
      await s.build();
    } catch (e) {
      await s.destroy();
      throw e;
    }
    return s;
  }

  private async build(): Promise<void> {
    const { lab, subnet } = this;
    // The outside segment: a second bridge in the switch namespace, the directors' eth1 and the client.
    const sw = lab.switchNs;
    await run(["ip", "-n", sw, "link", "add", "br1", "type", "bridge"]);
    await run(["ip", "-n", sw, "link", "set", "br1", "up"]);
    for (const [i, d] of ["d1", "d2"].entries()) {
      await lab.addLink(d, "eth1");
      await run(["ip", "-n", sw, "link", "set", `eth1-${lab.node(d).port}`, "master", "br1"]);
      await run(["ip", "-n", lab.node(d).ns, "addr", "add", `10.201.${subnet}.${i + 1}/24`, "dev", "eth1"]);
    }
    const client = `10.201.${subnet}.10`;
    const ns = `${lab.prefix}client`;
    await run(["ip", "netns", "add", ns]);
    await run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "pc", "netns", sw]);
    await run(["ip", "-n", sw, "link", "set", "pc", "master", "br1"]);
    await run(["ip", "-n", sw, "link", "set", "pc", "up"]);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await run(["ip", "-n", ns, "addr", "add", `${client}/24`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    lab.nodes.set("client", { name: "client", ns, ipv4: client, ipv6: "", port: "pc", mac: "" });
    for (const s of SERVERS) {
      const route = this.kind === "nat" ? ["default", "via", this.gateway] : [`10.202.${subnet}.0/24`, "dev", "eth0"];
      await run(["ip", "-n", lab.node(s).ns, "route", "add", ...route]);
      const dir = tempDir(`dsync-${s}`);
      writeFileSync(`${dir}/big`, new Uint8Array(SIZE).fill(0x61));
      this.accessLogs.push(`${dir}/access.log`);
      this.nginx.push(spawnLabNginx(lab, s, dir, `    listen ${lab.node(s).ipv4}:8080;
    access_log ${dir}/access.log source;
    # The server paces too: else it could push the rest of the file into the client's socket
    # buffer before the failover, and curl would finish reading it with no path left.
    location = /big { alias ${dir}/big; limit_rate 128k; }`, { http: "  log_format source '$remote_addr $status $body_bytes_sent';\n" }));
      const url = `http://${lab.node(s).ipv4}:8080/big`;
      await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", "-r", "0-99", "-o", "/dev/null", url])).code === 0, 10_000, 100);
    }
  }

  /** The source addresses of the downloads the servers answered, whole or cut off (their access logs;
   * the servers' own readiness probes ask for a range: 206). */
  sources(): string[] {
    return this.accessLogs.flatMap((file) => existsSync(file) ? readFileSync(file, "utf8").split("\n") : [])
      .map((line) => line.split(" ")).filter((f) => f[1] === "200").map((f) => f[0]);
  }

  async destroy(): Promise<void> {
    for (const peer of this.running) await peer.stop();
    for (const child of this.nginx) child.kill("SIGKILL");
    await this.lab.destroy();
  }

  /** Sync off, multicast to IPVS's group, or unicast to the other director's inside address. */
  config(priority: number, sync: SyncMode): string {
    const servers = SERVERS.map((s) => `${this.lab.node(s).ipv4}:8080`).join(", ");
    const locals = this.kind === "fullnat" ? `, local_addresses: [${this.localAddresses.join(", ")}]` : "";
    // The inside instance moves what the servers' replies are sent to: the gateway (nat) or the local addresses.
    const inside = this.kind === "nat" ? `${this.gateway}/24` : this.localAddresses.map((a) => `${a}/24`).join(", ");
    return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web:
    scheduler: rr
    servers: [${servers}]
    health: { type: tcp, interval: 500ms, timeout: 300ms, rise: 1, fall: 2 }
virtual_servers:
  - { name: web, address: ${this.vip}:80, protocol: tcp, lb_kind: ${this.kind}, interface: eth1, pool: web${locals} }
vrrp:
  instances:
    - { name: VI_OUT, interface: eth1, virtual_router_id: 61, priority: ${priority}, version: 3, advert_int: 0.5, virtual_ipaddress: [${this.vip}/24] }
    - { name: VI_IN, interface: eth0, virtual_router_id: 62, priority: ${priority}, version: 3, advert_int: 0.5, virtual_ipaddress: [${inside}] }
  sync_groups:
    G: { group: [VI_OUT, VI_IN] }
${sync === "off" ? "" : `director_sync: { interface: eth0, vrrp_instance: VI_OUT${sync === "unicast" ? `, peer: ${this.peerOf(priority)}` : ""} }\n`}`;
  }

  // d1 (priority 150) sends to d2's inside address, d2 to d1's.
  private peerOf(priority: number): string {
    return this.lab.node(priority === 150 ? "d2" : "d1").ipv4;
  }

  private async start(node: string, priority: number, sync: SyncMode): Promise<Peer> {
    const peer = await startFulcrum(this.lab, node, this.config(priority, sync), 1, /directing tcp:\/\//g);
    this.running.add(peer);
    return peer;
  }

  private async l4(node: string): Promise<L4View> {
    const r = await this.lab.exec(node, ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/api/l4"]);
    assert.equal(r.code, 0, `GET /api/l4 on ${node}: ${r.stderr}`);
    return JSON.parse(r.stdout) as L4View;
  }

  /** A director's counters as GET /api/l4 shows them. */
  async counters(node: string): Promise<Record<string, number>> {
    return (await this.l4(node)).director.counters;
  }

  /** ESTABLISHED connections through a director, over its real servers (GET /api/l4). */
  async active(node: string): Promise<number> {
    return (await this.l4(node)).virtual_servers.flatMap((v) => v.real_servers).reduce((n, r) => n + r.active, 0);
  }

  /** A 1 MiB download through the VIP at 128 KiB/s (curl's --limit-rate and nginx's limit_rate:
   * about 8 s); curl gives up after 8 s without a byte (a broken connection), and after 40 s in all. */
  download(): Promise<Outcome> {
    const child = this.lab.spawn("client", [
      "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--limit-rate", "128k",
      "--speed-limit", "1", "--speed-time", "8", "-m", "40", `http://${this.vip}/big`,
    ]);
    let out = "";
    const reader = (async () => { for await (const c of child.stdout) out += new TextDecoder().decode(c); })();
    return child.exited.then(async (code) => { await reader; return { code, out }; });
  }

  /** Starts both directors (d1 the master), runs `downloads` at once, SIGKILLs d1 once `ready`
   * holds for d2's counters (then `beforeKill`, whose downloads join the others), and returns each download's outcome with d2's counters,
   * /metrics and IPv4 addresses ("dev address", as the new master) after. */
  async failover(sync: SyncMode, downloads: number, ready: (c: Record<string, number>) => boolean,
    beforeKill: (d1: Peer, d2: Peer) => Promise<Promise<Outcome>[]> = async () => []): Promise<{ outcomes: Outcome[]; after: Record<string, number>; metrics: string; addresses: string[] }> {
    const d1 = await this.start("d1", 150, sync);
    await d1.waitForLine(/VI_OUT BACKUP -> MASTER/, 10_000);
    await waitForAddress(this.lab, "d1", this.vip, 5000, "eth1");
    const d2 = await this.start("d2", 100, sync);
    await d2.waitForLine(/VI_OUT .*-> BACKUP/, 10_000);
    const inFlight = Array.from({ length: downloads }, () => this.download());
    // Every download's connection ESTABLISHED on d1 (and, with sync, in d2's table too) before
    // the crash: a curl that connected only after it would be a new connection to the new master.
    await waitFor("the downloads established on d1", async () => (await this.active("d1")) >= downloads, 10_000, 100);
    await waitFor("d2 ready for the failover", async () => ready(await this.counters("d2")), 10_000, 100);
    // Past the client's and the servers' ARP locktime (1 s), so the new master's gratuitous ARPs move their entries.
    await sleep(1100);
    const more = await beforeKill(d1, d2);
    await d1.kill();
    this.running.delete(d1);
    await d2.waitForLine(/VI_OUT BACKUP -> MASTER/, 10_000);
    const outcomes = await Promise.all([...inFlight, ...more]);
    const after = await this.counters("d2");
    const metrics = (await this.lab.exec("d2", ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/metrics"])).stdout;
    const addresses = (await this.lab.exec("d2", ["ip", "-o", "-4", "addr", "show"])).stdout.split("\n")
      .map((line) => /^\d+:\s+(\S+)\s+inet\s+([\d.]+)/.exec(line)).filter((m) => m !== null).map((m) => `${m[1]} ${m[2]}`);
    await d2.stop();
    this.running.delete(d2);
    return { outcomes, after, metrics, addresses };
  }
}
