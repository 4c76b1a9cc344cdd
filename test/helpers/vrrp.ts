// VRRP peers for the lab: the real `fulcrum run` and the real keepalived, each started inside a
// lab node's namespace, with their output collected so tests can wait for log lines.
import { runtime, type Child } from "../../src/runtime/index.ts";
import { fulcrumCommand, writeTemp } from "./fulcrum.ts";
import { exec, type Lab, sleep, waitFor } from "./netns.ts";

export interface Peer {
  readonly child: Child;
  readonly pid: number;
  output(): string;
  /** Waits until the output has a line matching `re` (after `from` characters) and returns it. */
  waitForLine(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** Like waitForLine, but returns when that line reached this process (performance.now()),
   * recorded as it arrived, so how often the wait looks does not change it. */
  lineArrival(re: RegExp, timeoutMs?: number, from?: number): Promise<number>;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s; the exit code. */
  stop(): Promise<number>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  readonly exited: Promise<number>;
}

function collect(stream: ReadableStream<Uint8Array>, sink: (s: string) => void): void {
  const decoder = new TextDecoder();
  (async () => {
    for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
  })().catch(() => {});
}

/** A started process as a Peer: its output collected (and timed), `killAlso` giving pids a crash
 * must end first. */
export function peerOf(child: Child, killAlso: () => Promise<number[]> = async () => []): Peer {
  let out = "";
  // When each piece of output arrived: the time, and the output's length after it.
  const arrivals: { at: number; end: number }[] = [];
  const take = (s: string) => { out += s; arrivals.push({ at: performance.now(), end: out.length }); };
  collect(child.stdout, take);
  collect(child.stderr, take);
  let done = false;
  const exited = child.exited.then((code) => { done = true; return code; });
  // The first line matching `re` after `from`, and the offset just past it.
  const lineAt = async (re: RegExp, timeoutMs: number, from: number) => {
    return await waitFor<{ line: string; end: number } | undefined>(`a line matching ${re} in:\n${out}`, () => {
      let start = from;
      for (let nl = out.indexOf("\n", start); nl >= 0; start = nl + 1, nl = out.indexOf("\n", start)) {
        const line = out.slice(start, nl);
        if (re.test(line)) return { line, end: nl + 1 };
      }
      const tail = out.slice(start); // a line still arriving
      if (tail !== "" && re.test(tail)) return { line: tail, end: out.length };
      if (done) throw new Error(`exited before a line matching ${re}:\n${out}`);
      return undefined;
    }, timeoutMs) as { line: string; end: number }; // waitFor only returns a truthy value
  };
  return {
    child,
    pid: child.pid,
    output: () => out,
    exited,
    async waitForLine(re, timeoutMs = 10_000, from = 0): Promise<string> {
      return (await lineAt(re, timeoutMs, from)).line;
    },
    async lineArrival(re, timeoutMs = 10_000, from = 0): Promise<number> {
      const { end } = await lineAt(re, timeoutMs, from);
      return arrivals.find((a) => a.end >= end)!.at;
    },
    async stop() {
      if (done) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      // Helpers first: a keepalived VRRP child whose parent dies first shuts down cleanly (priority 0).
      for (const pid of await killAlso()) await exec(["kill", "-KILL", String(pid)]);
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** `fulcrum run` in a node's namespace; resolves once every instance has joined the election
 * (or `ready` matched `instances` times: a director's "directing" lines). */
export async function startFulcrum(
  lab: Lab, node: string, config: string, instances = 1, ready = /INIT -> /g, env?: Record<string, string>,
): Promise<Peer> {
  const file = await writeTemp(config);
  const child = runtime.spawn(["ip", "netns", "exec", lab.node(node).ns, ...fulcrumCommand(["run", "--config", file])], { env });
  const peer = peerOf(child);
  try {
    await waitFor(`fulcrum in ${node} to start`, () => {
      if (/cannot start|has \d+ error/.test(peer.output())) throw new Error(`fulcrum in ${node} failed:\n${peer.output()}`);
      return (peer.output().match(ready) ?? []).length >= instances;
    }, 20_000);
  } catch (e) {
    // What the process was doing helps tell a slow start from a hang.
    const ps = await exec(["ps", "-o", "pid,stat,wchan:20,etime,time,cmd", "-p", String(child.pid)]);
    await peer.kill();
    throw new Error(`${(e as Error).message}\noutput:\n${peer.output()}\n${ps.stdout}`);
  }
  return peer;
}

/** keepalived (VRRP only, foreground, console log) in a node's namespace; resolves once it started. */
export async function startKeepalived(lab: Lab, node: string, config: string): Promise<Peer> {
  const file = await writeTemp(config, "conf");
  const base = `/tmp/fulcrum-test-ka-${lab.node(node).ns}`;
  const child = runtime.spawn([
    "ip", "netns", "exec", lab.node(node).ns, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
    "--no-syslog", "--dont-respawn", "--use-file", file, "--pid", `${base}.pid`, "--vrrp_pid", `${base}-vrrp.pid`,
  ]);
  // keepalived runs VRRP in a child process; a crash test must kill it too (its pid is in the pidfile).
  const vrrpChild = async () => {
    try {
      return [Number((await runtime.readTextFile(`${base}-vrrp.pid`)).trim())].filter((n) => n > 0);
    } catch {
      return [];
    }
  };
  const peer = peerOf(child, vrrpChild);
  // A killed keepalived leaves its pidfiles behind.
  void peer.exited.then(() => exec(["rm", "-f", `${base}.pid`, `${base}-vrrp.pid`]));
  try {
    await peer.waitForLine(/Startup complete|Entering BACKUP STATE/, 15_000);
  } catch (e) {
    // Never started (or never said so): end it and its VRRP child, by pid, rather than leave them running.
    await peer.kill();
    throw e;
  }
  return peer;
}

/** Waits until `node` holds `address` on eth0 (or `dev`) and returns how long that took. */
export async function waitForAddress(lab: Lab, node: string, address: string, timeoutMs: number, dev = "eth0"): Promise<number> {
  const t0 = performance.now();
  await waitFor(`${address} on ${node}`, () => lab.hasAddress(node, address, dev), timeoutMs, 20);
  return performance.now() - t0;
}

export async function waitForNoAddress(lab: Lab, node: string, address: string, timeoutMs: number): Promise<void> {
  await waitFor(`${address} gone from ${node}`, async () => !(await lab.hasAddress(node, address)), timeoutMs, 20);
}

/** Stays true for the whole period (checked every 100 ms): e.g. "B never takes the address". */
export async function holdsFor(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (!(await check())) throw new Error(`${what} stopped holding`);
    await sleep(100);
  }
}

/** A Fulcrum config with one instance; `extra` lines are added to the instance (indented by 6). */
export function fulcrumConfig(o: {
  vrid?: number; priority: number; version?: 2 | 3; interval?: string | number; vip?: string; extra?: string[]; top?: string[];
}): string {
  return [
    "vrrp:",
    ...(o.top ?? []),
    "  instances:",
    "    - name: VI_1",
    "      interface: eth0",
    `      virtual_router_id: ${o.vrid ?? 51}`,
    `      priority: ${o.priority}`,
    `      version: ${o.version ?? 3}`,
    `      advert_int: ${o.interval ?? 0.5}`,
    `      virtual_ipaddress: [${o.vip ?? "10.200.1.100/24"}]`,
    ...(o.extra ?? []).map((l) => `      ${l}`),
    "",
  ].join("\n");
}

/** A keepalived config with one instance, as an operator would write it. */
export function keepalivedConfig(o: {
  vrid?: number; priority: number; version: 2 | 3; interval?: number; vip: string; password?: string; extra?: string[];
}): string {
  return [
    "global_defs {",
    "  router_id fulcrum_test",
    "  vrrp_garp_master_delay 1",
    "}",
    "vrrp_instance VI_1 {",
    "  state BACKUP",
    "  interface eth0",
    `  virtual_router_id ${o.vrid ?? 51}`,
    `  priority ${o.priority}`,
    `  version ${o.version}`,
    `  advert_int ${o.interval ?? 1}`,
    ...(o.password ? ["  authentication {", "    auth_type PASS", `    auth_pass ${o.password}`, "  }"] : []),
    "  virtual_ipaddress {",
    `    ${o.vip}`,
    "  }",
    ...(o.extra ?? []).map((l) => `  ${l}`),
    "}",
    "",
  ].join("\n");
}
