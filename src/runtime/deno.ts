// Runtime adapter for Deno.
import dgram from "node:dgram";
import {
  listenError, listening, UpstreamError, type Child, type FfiSymbol, type FfiLibrary, type Runtime, type ServeOptions, type TcpHandlers,
  type TcpSocket, type UdpOptions, type UdpSocket,
} from "./types.ts";
import { HIGH_WATER, WriteQueue } from "./tcp-queue.ts";
import { listenTls } from "./node-tls.ts";

declare const Deno: any; // deno-lint-ignore no-explicit-any

/** Plain TCP through libc and epoll (deno-epoll.ts) unless FULCRUM_DENO_SOCKETS=deno asks for
 * Deno's own sockets, or the FFI is not allowed. */
const epoll = Deno.env.get("FULCRUM_DENO_SOCKETS") === "deno" ? null : await import("./deno-epoll.ts").catch(() => null);

// deno-lint-ignore no-explicit-any
let pollLib: any = null;

/** struct pollfd per descriptor (int fd, short events = POLLIN, short revents). */
function pollFds(fds: number[]): Int32Array {
  const out = new Int32Array(fds.length * 2);
  for (const [i, fd] of fds.entries()) { out[i * 2] = fd; out[i * 2 + 1] = 1; }
  return out;
}

const FFI_TYPES: Record<string, string> = {
  i32: "i32", u32: "u32", i64: "i64", u64: "u64", usize: "usize", buffer: "buffer", void: "void",
};
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Largest lent read buffer (see DenoTcp.lent): 64 KiB a read measured 15-25 % less CPU per
 * 64 KB response than 16 KiB. */
const LENT_MAX = 65536;
/** Where a lent read buffer starts and what it shrinks back to: a pending read holds its buffer
 * while the connection is idle, so an idle connection's memory is this (bench/RESULTS.md, L4). */
const LENT_MIN = 1024;

// Deno's connections are pull style; this turns one into the push style the edge uses: a read
// loop delivers data, a write pump drains the queue.
class DenoTcp implements TcpSocket {
  private readonly queue = new WriteQueue();
  private writing = false;
  private ending = false;
  private closed = false;
  private blocked = false;
  private shuttingDown = false;
  private paused: { resume: () => void; wait: Promise<void> } | null = null;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  /** One buffer for every read when chunks are lent (see ConnectTcpOptions.lendChunks). It
   * starts at readSize and doubles, up to LENT_MAX, each time a read fills it: a connection that
   * carries large bodies then needs a quarter of the reads (each an awaited op). It halves, down
   * to LENT_MIN, after a read that filled less than a quarter of it: the read left pending on an
   * idle connection holds a small buffer, whatever the connection carried before. */
  private lent: Uint8Array | null;
  readonly chunksOwned: boolean;

  constructor(
    private readonly conn: any, public handlers: TcpHandlers, private readonly readSize = 65536, lendChunks = false,
    private readonly halfOpen = false,
  ) {
    this.lent = lendChunks ? new Uint8Array(readSize) : null;
    this.chunksOwned = !lendChunks;
    this.remoteAddress = conn.remoteAddr?.hostname ?? "";
    this.remotePort = conn.remoteAddr?.port ?? 0;
    this.localAddress = conn.localAddr?.hostname ?? "";
    this.localPort = conn.localAddr?.port ?? 0;
    try { conn.setNoDelay(true); } catch { /* not TCP */ }
  }

  get pending(): number { return this.queue.bytes; }

  async read(): Promise<void> {
    try {
      for (;;) {
        if (this.paused) await this.paused.wait;
        if (this.closed) break;
        const buf = this.lent ?? new Uint8Array(this.readSize);
        const n = await this.conn.read(buf);
        if (n === null) {
          // Half-open: the peer's FIN is reported; the owner ends the socket later.
          if (this.halfOpen && this.handlers.peerEnded && !this.closed) { this.handlers.peerEnded(); return; }
          break;
        }
        this.handlers.data(buf.subarray(0, n));
        // The handler is done with a lent chunk once data() returns: the buffer may be replaced.
        const lent = this.lent;
        if (lent !== null) {
          if (n === lent.length) { if (n < LENT_MAX) this.lent = new Uint8Array(n * 2); }
          else if (n < lent.length >> 2 && lent.length > LENT_MIN) this.lent = new Uint8Array(lent.length >> 1);
        }
      }
    } catch { /* reset or closed by us */ }
    this.destroy(); // a peer's FIN closes ours too (as Bun does), unless the socket is half-open
  }

  write(data: Uint8Array, offset = 0, length = data.length - offset, keep = false): boolean {
    if (this.closed) return false;
    // Written later: unless handed over, copied (the caller may reuse data).
    const end = offset + length;
    this.queue.push(keep ? data.subarray(offset, end) : data.slice(offset, end));
    if (!this.writing) void this.pump();
    if (this.queue.bytes < HIGH_WATER) return true;
    this.blocked = true;
    return false;
  }

  private async pump(): Promise<void> {
    this.writing = true;
    try {
      for (let chunk = this.queue.shift(); chunk && !this.closed; chunk = this.queue.shift()) {
        for (let off = 0; off < chunk.length;) off += await this.conn.write(chunk.subarray(off));
        if (this.blocked && this.queue.bytes < HIGH_WATER / 2) { this.blocked = false; this.handlers.drain(); }
      }
    } catch {
      this.destroy();
    }
    this.writing = false;
    if (this.ending && this.queue.empty) this.destroy();
    else if (this.shuttingDown && this.queue.empty) this.closeWrite();
  }

  shutdown(): void {
    this.shuttingDown = true;
    if (!this.writing && this.queue.empty) this.closeWrite();
  }

  private closeWrite(): void {
    this.shuttingDown = false;
    if (this.closed) return;
    try { this.conn.closeWrite(); } catch { /* already closed */ }
  }

  end(): void {
    this.ending = true;
    if (!this.writing && this.queue.empty) this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    try { this.conn.close(); } catch { /* already closed */ }
    this.onClose();
  }

  pause(): void {
    if (this.paused) return;
    let resume = () => {};
    const wait = new Promise<void>((r) => resume = r);
    this.paused = { resume, wait };
  }

  resume(): void {
    const p = this.paused;
    this.paused = null;
    p?.resume();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    this.paused?.resume();
    this.handlers.close();
  }
}

// UDP through node:dgram (Deno.listenDatagram is behind --unstable-net) when the epoll engine is off.
class DenoUdp implements UdpSocket {
  constructor(private readonly socket: dgram.Socket) {}
  get port(): number { return this.socket.address().port; }
  send(data: Uint8Array, port?: number, address?: string): void {
    if (port === undefined) this.socket.send(data);
    else this.socket.send(data, port, address);
  }
  close(): void {
    try { this.socket.close(); } catch { /* closed */ }
  }
}

function bindUdp(o: UdpOptions): Promise<UdpSocket> {
  if (epoll) {
    try { return Promise.resolve(epoll.epollBindUdp(o)); } catch (e) { return Promise.reject(e); }
  }
  const socket = dgram.createSocket(o.hostname.includes(":") ? "udp6" : "udp4");
  socket.on("message", (msg: Uint8Array, from: dgram.RemoteInfo) => o.message(msg, from.port, from.address));
  return new Promise((resolve, reject) => {
    const failed = (e: Error) => reject(listenError(o.hostname, o.port, e));
    socket.once("error", failed);
    const ready = () => {
      socket.off("error", failed);
      socket.on("error", (e: Error) => o.error?.(e));
      resolve(new DenoUdp(socket));
    };
    socket.bind(o.port, o.hostname, () => o.connect ? socket.connect(o.connect.port, o.connect.hostname, ready) : ready());
  });
}

export const runtime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  args: [...Deno.args],
  scriptCommand: (script) => [Deno.execPath(), "run", "-A", "--no-check", script],
  // A compiled binary is its own program (its flags were given to `deno compile`).
  selfCommand: (args) => /\/deno$/.test(Deno.execPath())
    ? [Deno.execPath(), "run", "-A", "--no-check", "--unstable-net", new URL(Deno.mainModule).pathname, ...args]
    : [Deno.execPath(), ...args],
  stdin: () => Deno.stdin.readable,
  viewAddress: (address, length) => Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(address), length),
  env: (name) => Deno.env.get(name),
  exit: (code) => Deno.exit(code) as never,
  cwd: () => Deno.cwd(),
  readTextFile: (path) => Deno.readTextFile(path),
  writeTextFile: (path, text) => Deno.writeTextFile(path, text),
  openAppend(path) {
    const file = path === "stdout" ? Deno.stdout : Deno.openSync(path, { append: true, create: true });
    return {
      write: (data) => file.write(data),
      writeAllSync: (data) => { for (let at = 0; at < data.length;) at += file.writeSync(data.subarray(at)); },
      close: () => { if (file !== Deno.stdout) file.close(); },
    };
  },
  async exists(path) {
    try { await Deno.stat(path); return true; } catch { return false; }
  },
  wasmBytes: () => Deno.readFile(new URL("../../build/fulcrum.wasm", import.meta.url)),
  serveHttp(o: ServeOptions) {
    // A ListenError thrown in the executor rejects the promise.
    return new Promise((resolve) => {
      const server = listening(o, () => Deno.serve({
        hostname: o.hostname,
        port: o.port,
        onListen: (addr: { hostname: string; port: number }) =>
          resolve({ hostname: addr.hostname, port: addr.port, stop: () => server.shutdown() }),
      }, (req: Request, info: { remoteAddr: { hostname: string; port: number } }) =>
        o.fetch(req, { address: info.remoteAddr.hostname, port: info.remoteAddr.port })));
    });
  },
  async listenTcp(o) {
    if (o.tls) return listenTls(o);
    if (epoll) return epoll.epollListen(o);
    const listener = listening(o, () => Deno.listen({ hostname: o.hostname, port: o.port, ...(o.reusePort ? { reusePort: true } : {}) }));
    let stopped = false;
    (async () => {
      while (!stopped) {
        let conn;
        try {
          conn = await listener.accept();
        } catch (e) {
          // Only a closed listener ends the loop. A client that reset before its accept (Deno
          // reports ENOTCONN) must not stop the listener; anything else (EMFILE) is retried shortly.
          if (stopped || e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) break;
          const code = (e as { code?: string }).code;
          if (code !== "ENOTCONN" && code !== "ECONNABORTED") await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const s = new DenoTcp(conn, { data() {}, drain() {}, close() {} }, LENT_MIN, true, o.halfOpen);
        s.handlers = o.accept(s);
        void s.read();
      }
    })();
    const close = () => { stopped = true; try { listener.close(); } catch { /* closed */ } };
    return { port: listener.addr.port, close, stop: async () => close() };
  },
  async connectTcp(o) {
    if (epoll?.epollCanConnect(o.hostname)) return epoll.epollConnect(o.hostname, o.port, o.handlers, !(o.lendChunks ?? false), o.halfOpen ?? false);
    let conn;
    try {
      conn = await Deno.connect({ hostname: o.hostname, port: o.port });
    } catch (e) {
      throw new UpstreamError(e instanceof Deno.errors.ConnectionRefused ? "refused" : "failed", String((e as Error).message));
    }
    const s = new DenoTcp(conn, o.handlers, o.readSize ?? (o.lendChunks ? LENT_MIN : 65536), o.lendChunks ?? false, o.halfOpen);
    void s.read();
    return s;
  },
  bindUdp,
  onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
  fetchTrusting(ca) {
    const client = Deno.createHttpClient({ caCerts: [ca] });
    return ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, client } as RequestInit)) as typeof fetch;
  },
  spawn(cmd, options = {}): Child {
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: options.env,
      cwd: options.cwd,
      stdout: "piped",
      stderr: options.inheritStderr ? "inherit" : "piped",
      stdin: options.stdin ? "piped" : "null",
    }).spawn();
    // Writes are queued in order on the stream's writer; one that fails (the child exited) is dropped.
    const input = options.stdin ? child.stdin.getWriter() : null;
    return {
      pid: child.pid,
      exited: child.status.then((s: { code: number; signal: string | null }) =>
        s.signal ? 128 + (SIGNALS[s.signal] ?? 0) : s.code),
      stdout: child.stdout,
      stderr: options.inheritStderr ? new ReadableStream<Uint8Array>({ start: (c) => c.close() }) : child.stderr,
      kill: (signal = "SIGTERM") => { try { child.kill(signal); } catch { /* already gone */ } },
      stdin: !input ? null : {
        write: (data: Uint8Array) => { input.write(data).catch(() => {}); },
        close: () => { input.close().catch(() => {}); },
      },
    };
  },
  dlopen<S extends Record<string, FfiSymbol>>(path: string, symbols: S): FfiLibrary<S> {
    const mapped: Record<string, { parameters: string[]; result: string }> = {};
    for (const [name, s] of Object.entries(symbols)) {
      mapped[name] = { parameters: s.args.map((t) => FFI_TYPES[t]), result: FFI_TYPES[s.returns] };
    }
    return Deno.dlopen(path, mapped).symbols as FfiLibrary<S>;
  },
  waitReadable(fds: number[], timeoutMs: number): Promise<number> {
    // A nonblocking symbol runs on a thread of Deno's and returns a promise.
    pollLib ??= Deno.dlopen("libc.so.6", { poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true } });
    return pollLib.symbols.poll(pollFds(fds), BigInt(fds.length), timeoutMs) as Promise<number>;
  },
  nativeMemory(address: number, length: number): ArrayBuffer {
    return Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(BigInt(address)), length);
  },
};

