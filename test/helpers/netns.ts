// A network lab built from Linux network namespaces: one "switch" namespace with a bridge (one
// L2 segment) and a namespace per node, each joined to the bridge by a veth pair whose node end
// is eth0. Names start with fvr-<pid>- so parallel runs never collide, and a lab left by a
// crashed run (its pid gone) is removed before a new one is built.
import process from "node:process";
import { type Child, runtime } from "../../src/runtime/index.ts";

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  let out = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  return out;
}

/** Runs a command to completion (killed after timeoutMs). */
export async function exec(argv: string[], timeoutMs = 10_000): Promise<Exec> {
  const child = runtime.spawn(argv);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr] = await Promise.all([text(child.stdout), text(child.stderr)]);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs a command and throws with its output when it fails. */
export async function run(argv: string[]): Promise<string> {
  const r = await exec(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a truthy value, at most `timeoutMs` (and 1000 tries). */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 5000, everyMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 1000; i++) {
    const value = await check();
    if (value) return value;
    if (performance.now() > deadline) break;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export interface LabNode {
  name: string;
  /** The namespace name, for `ip netns exec`. */
  ns: string;
  ipv4: string;
  ipv6: string;
  /** The port on the bridge (in the switch namespace). */
  port: string;
  mac: string;
}

const PREFIX = "fvr-";

export class Lab {
  readonly nodes = new Map<string, LabNode>();
  readonly switchNs: string;

  private constructor(readonly prefix: string) {
    this.switchNs = `${prefix}sw`;
  }

  /** Builds the switch and the nodes; `subnet` is the third octet of 10.200.X.0/24. */
  static async create(tag: string, names: string[], subnet: number): Promise<Lab> {
    await removeStaleLabs();
    const lab = new Lab(`${PREFIX}${process.pid}-${tag}-`);
    await lab.destroy(); // a previous lab of this very process with this tag
    try {
      await run(["ip", "netns", "add", lab.switchNs]);
      await run(["ip", "-n", lab.switchNs, "link", "add", "br0", "type", "bridge"]);
      // No IGMP/MLD snooping: every node hears every group, as on a plain switch.
      await run(["ip", "-n", lab.switchNs, "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"]);
      await run(["ip", "-n", lab.switchNs, "link", "set", "br0", "up"]);
      for (const [i, name] of names.entries()) await lab.#addNode(name, i + 1, subnet);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  async #addNode(name: string, host: number, subnet: number): Promise<void> {
    const ns = `${this.prefix}${name}`;
    const port = `p${host}`;
    await run(["ip", "netns", "add", ns]);
    await run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", this.switchNs]);
    await run(["ip", "-n", this.switchNs, "link", "set", port, "master", "br0"]);
    await run(["ip", "-n", this.switchNs, "link", "set", port, "up"]);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    const ipv6 = `fd00:200:${subnet}::${host}`;
    await run(["ip", "-n", ns, "addr", "add", `10.200.${subnet}.${host}/24`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "addr", "add", `${ipv6}/64`, "dev", "eth0", "nodad"]);
    // No duplicate address detection: a link-local address stays tentative (unbindable) for about
    // a second after the link comes up, and IPv6 adverts are sent from it.
    await run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    const link = JSON.parse(await run(["ip", "-j", "-n", ns, "link", "show", "eth0"]))[0];
    this.nodes.set(name, { name, ns, ipv4: `10.200.${subnet}.${host}`, ipv6, port, mac: link.address });
  }

  /** A node outside the switch, cabled straight to `to` by a veth pair (its eth0, `to`'s `dev`)
   * on 10.201.S.0/24 and fd00:201:S::/64: `to` is .1 (::1) and the node's default gateway, the
   * node .2 (::2) (a client behind a router: the director in NAT labs). */
  async addRoutedNode(name: string, to: string, dev: string, subnet: number): Promise<LabNode> {
    const ns = `${this.prefix}${name}`;
    await run(["ip", "netns", "add", ns]);
    await run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", dev, "netns", this.node(to).ns]);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    const ipv6 = `fd00:201:${subnet}::2`;
    await run(["ip", "-n", ns, "addr", "add", `10.201.${subnet}.2/24`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "addr", "add", `${ipv6}/64`, "dev", "eth0", "nodad"]);
    await run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    await run(["ip", "-n", this.node(to).ns, "addr", "add", `10.201.${subnet}.1/24`, "dev", dev]);
    await run(["ip", "-n", this.node(to).ns, "addr", "add", `fd00:201:${subnet}::1/64`, "dev", dev, "nodad"]);
    await run(["ip", "netns", "exec", this.node(to).ns, "sysctl", "-q", "-w", `net.ipv6.conf.${dev}.accept_dad=0`]);
    await run(["ip", "-n", this.node(to).ns, "link", "set", dev, "up"]);
    await run(["ip", "-n", ns, "route", "add", "default", "via", `10.201.${subnet}.1`]);
    await run(["ip", "-n", ns, "-6", "route", "add", "default", "via", `fd00:201:${subnet}::1`]);
    const link = JSON.parse(await run(["ip", "-j", "-n", ns, "link", "show", "eth0"]))[0];
    const node: LabNode = { name, ns, ipv4: `10.201.${subnet}.2`, ipv6, port: "", mac: link.address };
    this.nodes.set(name, node);
    return node;
  }

  node(name: string): LabNode {
    const n = this.nodes.get(name);
    if (n === undefined) throw new Error(`no lab node ${name}`);
    return n;
  }

  /** Runs a command inside a node's namespace. */
  exec(node: string, argv: string[], timeoutMs?: number): Promise<Exec> {
    return exec(["ip", "netns", "exec", this.node(node).ns, ...argv], timeoutMs);
  }

  /** Starts a command inside a node's namespace without waiting for it. `ip netns exec` execs the
   * command, so the child's pid is the command's own. */
  spawn(node: string, argv: string[]): Child {
    return runtime.spawn(["ip", "netns", "exec", this.node(node).ns, ...argv]);
  }

  /** The addresses on a node's interface, without prefix lengths. */
  async addresses(node: string, dev = "eth0"): Promise<string[]> {
    const out = await run(["ip", "-j", "-n", this.node(node).ns, "addr", "show", "dev", dev]);
    const links = JSON.parse(out) as { addr_info: { local: string }[] }[];
    return links.flatMap((l) => l.addr_info.map((a) => a.local));
  }

  async hasAddress(node: string, address: string, dev = "eth0"): Promise<boolean> {
    return (await this.addresses(node, dev)).includes(address);
  }

  /** The MAC a node has learnt for an address (ARP or neighbour cache), or null. */
  async neighbour(node: string, address: string): Promise<string | null> {
    const out = await run(["ip", "-j", "-n", this.node(node).ns, "neigh", "show", address]);
    const entries = JSON.parse(out || "[]") as { lladdr?: string }[];
    return entries.find((e) => e.lladdr)?.lladdr ?? null;
  }

  /** Adds a second veth pair to a node (e.g. an uplink to track), its far end left in the switch namespace unbridged. */
  async addLink(node: string, dev: string): Promise<void> {
    const far = `${dev.slice(0, 8)}-${this.node(node).port}`;
    await run(["ip", "link", "add", dev, "netns", this.node(node).ns, "type", "veth", "peer", "name", far, "netns", this.switchNs]);
    await run(["ip", "-n", this.switchNs, "link", "set", far, "up"]);
    await run(["ip", "-n", this.node(node).ns, "link", "set", dev, "up"]);
  }

  /** Cuts or restores a node's cable to the switch (its bridge port), as unplugging it would. */
  async cable(node: string, up: boolean): Promise<void> {
    await run(["ip", "-n", this.switchNs, "link", "set", this.node(node).port, up ? "up" : "down"]);
  }

  /** Bridge port isolation: isolated ports cannot reach each other, only the others (a split brain). */
  async isolate(node: string, on: boolean): Promise<void> {
    await run(["ip", "-n", this.switchNs, "link", "set", "dev", this.node(node).port, "type", "bridge_slave", "isolated", on ? "on" : "off"]);
  }

  /** Ends what still runs in the lab's namespaces, then deletes them. */
  async destroy(): Promise<void> {
    const list = await exec(["ip", "netns", "list"]);
    for (const line of list.stdout.split("\n")) {
      const ns = line.split(" ")[0];
      if (!ns.startsWith(this.prefix)) continue;
      await endProcessesIn(ns);
      await exec(["ip", "netns", "delete", ns]);
    }
  }
}

/** Removes the namespaces of labs whose process is gone (a crashed run), after ending what ran in them. */
async function removeStaleLabs(): Promise<void> {
  const list = await exec(["ip", "netns", "list"]);
  for (const line of list.stdout.split("\n")) {
    const ns = line.split(" ")[0];
    const m = /^fvr-(\d+)-/.exec(ns);
    // /proc/PID/stat, not /proc/PID: Bun's exists() is false for every directory.
    if (m === null || (await runtime.exists(`/proc/${m[1]}/stat`))) continue;
    await endProcessesIn(ns);
    await exec(["ip", "netns", "delete", ns]);
  }
}

/** SIGKILLs every process in a lab namespace: only processes the tests started there (a deleted
 * namespace would otherwise live on in them, with their sockets and addresses). */
async function endProcessesIn(ns: string): Promise<void> {
  const pids = (await exec(["ip", "netns", "pids", ns])).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p));
  if (pids.length === 0) return;
  await exec(["kill", "-KILL", ...pids]);
  // Deleting the namespace only drops its name; wait (bounded) until the processes are gone.
  await waitFor(`the processes in ${ns} to end`, async () => (await exec(["ip", "netns", "pids", ns])).stdout.trim() === "", 3000, 20)
    .catch(() => {});
}

/** One packet as tcpdump printed it: its capture time (seconds since the epoch, from the
 * kernel's timestamp) and the rest of the line. */
export interface CapturedPacket {
  at: number;
  text: string;
}

/** tcpdump on a node's eth0, its packets decoded line by line as they arrive (and written to
 * `file` too when given). Times are the capture's own, so they do not depend on when the test
 * looks. */
export class Capture {
  readonly packets: CapturedPacket[] = [];
  #stderr = "";

  private constructor(readonly child: Child) {}

  static async start(lab: Lab, node: string, filter: string, file?: string): Promise<Capture> {
    const argv = ["tcpdump", "--immediate-mode", "-l", "-n", "-e", "-tt", "-i", "eth0"];
    if (file !== undefined) argv.push("-U", "-w", file, "--print");
    const capture = new Capture(lab.spawn(node, [...argv, filter]));
    const decoder = new TextDecoder();
    let partial = "";
    void (async () => {
      for await (const chunk of capture.child.stdout) {
        partial += decoder.decode(chunk, { stream: true });
        const lines = partial.split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          const m = /^(\d+\.\d+) (.*)$/.exec(line);
          if (m) capture.packets.push({ at: Number(m[1]), text: m[2] });
        }
      }
    })().catch(() => {});
    void (async () => {
      for await (const chunk of capture.child.stderr) capture.#stderr += decoder.decode(chunk);
    })().catch(() => {});
    try {
      await waitFor("tcpdump to listen", () => capture.#stderr.includes("listening on"), 5000, 20);
    } catch (e) {
      await capture.stop();
      throw new Error(`${(e as Error).message}: ${capture.#stderr}`);
    }
    return capture;
  }

  /** Packets whose line matches `re`. */
  matching(re: RegExp): CapturedPacket[] {
    return this.packets.filter((p) => re.test(p.text));
  }

  /** Waits until at least `count` packets match `re`, and returns them. */
  async waitFor(re: RegExp, count: number, timeoutMs: number): Promise<CapturedPacket[]> {
    return await waitFor(`${count} packets matching ${re}; captured:\n${this.packets.map((p) => `${p.at} ${p.text}`).join("\n")}`, () => {
      const found = this.matching(re);
      return found.length >= count ? found : null;
    }, timeoutMs, 20) as CapturedPacket[];
  }

  /** Ends tcpdump (SIGTERM; it flushes its file) and waits for it, SIGKILL after 3 s. */
  async stop(): Promise<void> {
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    await this.child.exited;
    clearTimeout(timer);
  }
}
