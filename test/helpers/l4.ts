// Peers and clients for the L4 proxy tests: a real redis-server on a loopback port with its own
// config, and a raw TCP client (node:net) that records what it got and when.
import net from "node:net";
import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import { runtime, type Child } from "../../src/runtime/index.ts";
import { writeTemp } from "./fulcrum.ts";

export { freePort } from "./backends.ts";

/** A child process the test started, stopped by its PID. */
export interface Peer {
  port: number;
  child: Child;
  output(): string;
  stop(): Promise<void>;
}

async function collect(stream: ReadableStream<Uint8Array>, sink: (s: string) => void): Promise<void> {
  const d = new TextDecoder();
  for await (const chunk of stream) sink(d.decode(chunk, { stream: true }));
}

/** Spawns a peer and waits (bounded) until `ready()` resolves true. */
export async function startPeer(cmd: string[], port: number, ready: () => Promise<boolean>, timeoutMs = 10_000): Promise<Peer> {
  const child = runtime.spawn(cmd);
  let out = "";
  collect(child.stdout, (s) => out += s).catch(() => {});
  collect(child.stderr, (s) => out += s).catch(() => {});
  let exited = false;
  child.exited.then(() => exited = true);
  const peer: Peer = {
    port, child, output: () => out,
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await child.exited;
      clearTimeout(t);
    },
  };
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !exited) {
    if (await ready().catch(() => false)) return peer;
    await new Promise((r) => setTimeout(r, 100));
  }
  await peer.stop();
  throw new Error(`${cmd[0]} did not start on port ${port}:\n${out}`);
}

/** redis-server on 127.0.0.1:port, no persistence, its config in a temp file. */
export async function startRedis(port: number): Promise<Peer> {
  const conf = await writeTemp(`port ${port}\nbind 127.0.0.1\nsave ""\nappendonly no\nprotected-mode no\ndaemonize no\nlogfile ""\n`, "conf");
  return startPeer(["redis-server", conf], port, async () => (await resp(port, [["PING"]], 1000))[0] === "+PONG");
}

/** RESP commands sent on one connection; the replies as lines (bulk strings as their text). */
export async function resp(port: number, commands: string[][], timeoutMs = 5000): Promise<string[]> {
  const c = await TcpClient.connect(port);
  try {
    const replies: string[] = [];
    for (const cmd of commands) replies.push(await c.command(cmd, timeoutMs));
    return replies;
  } finally {
    c.destroy();
  }
}

/** A RESP command as bytes. */
export function encodeResp(cmd: string[]): string {
  return `*${cmd.length}\r\n${cmd.map((a) => `$${new TextEncoder().encode(a).length}\r\n${a}\r\n`).join("")}`;
}

/** A raw TCP client: what it received, when, and when it closed (times from performance.now()). */
export class TcpClient {
  received = new Uint8Array(0);
  bytes = 0;
  closedAt: number | null = null;
  endedAt: number | null = null;
  private waiters: (() => void)[] = [];
  /** Keep received bytes (off for bulk counts). */
  keep = true;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Uint8Array) => {
      this.bytes += d.length;
      if (this.keep) {
        const next = new Uint8Array(this.received.length + d.length);
        next.set(this.received);
        next.set(d, this.received.length);
        this.received = next;
      }
      this.wake();
    });
    socket.on("end", () => { this.endedAt = performance.now(); this.wake(); });
    socket.on("close", () => { this.closedAt = performance.now(); this.wake(); });
    socket.on("error", () => {});
  }

  /** `localAddress`: the client's own loopback address (127.0.0.2, ...), to tell clients apart. */
  static connect(port: number, host = "127.0.0.1", allowHalfOpen = false, localAddress?: string): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, allowHalfOpen, ...(localAddress ? { localAddress } : {}) });
      s.once("connect", () => resolve(new TcpClient(s)));
      s.once("error", reject);
    });
  }

  get text(): string {
    return new TextDecoder().decode(this.received);
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Waits (bounded) until `done()` holds; throws on timeout. */
  async until(done: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.text.slice(0, 200))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  /** Sends one RESP command; returns its reply's first line, or a bulk string's text. */
  async command(cmd: string[], timeoutMs = 5000): Promise<string> {
    const start = this.received.length;
    this.write(encodeResp(cmd));
    let reply = "";
    await this.until(() => {
      const t = new TextDecoder().decode(this.received.subarray(start));
      const m = /^(\$(-?\d+)\r\n)/.exec(t);
      if (m) {
        const n = Number(m[2]);
        if (n < 0) { reply = "(nil)"; return true; }
        if (t.length >= m[1].length + n + 2) { reply = t.slice(m[1].length, m[1].length + n); return true; }
        return false;
      }
      const end = t.indexOf("\r\n");
      if (end >= 0) { reply = t.slice(0, end); return true; }
      return this.closedAt !== null;
    }, timeoutMs, `reply to ${cmd[0]}`);
    return reply;
  }

  /** Sends `request` and waits (bounded) for the server to close; returns what came back. */
  async exchange(request: string | Uint8Array, timeoutMs = 5000): Promise<string> {
    this.write(request);
    await this.until(() => this.closedAt !== null, timeoutMs, "close");
    return this.text;
  }

  /** Half-close: FIN, reading goes on. */
  shutdown(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A fresh temp directory for a peer's files. */
export function tempDir(name: string): string {
  const dir = `/tmp/fulcrum-l4-${runtime.name}-${name}-${process.pid}-${Date.now()}`;
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function accepting(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

/** nginx in the foreground, one worker, with `body` inside its top-level context (http/stream blocks). */
export async function startNginx(body: string, port: number): Promise<Peer & { dir: string }> {
  const dir = tempDir("nginx");
  writeFileSync(`${dir}/nginx.conf`, `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
${body.replaceAll("$DIR", dir)}
`);
  const peer = await startPeer(["nginx", "-p", dir, "-c", `${dir}/nginx.conf`], port, () => accepting(port));
  return { ...peer, dir };
}

/** HAProxy in the foreground with the given config text. */
export async function startHaproxy(config: string, port: number): Promise<Peer> {
  const dir = tempDir("haproxy");
  writeFileSync(`${dir}/haproxy.cfg`, config);
  return startPeer(["haproxy", "-db", "-f", `${dir}/haproxy.cfg`], port, () => accepting(port));
}
