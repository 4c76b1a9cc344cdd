// Runtime adapter for Bun.
import { dlopen as bunDlopen, toArrayBuffer } from "bun:ffi";
import wasmPath from "../../build/fulcrum.wasm" with { type: "file" };
import {
  listenError, listening, UpstreamError, type Child, type FfiSymbol, type FfiLibrary, type Runtime, type ServeOptions, type TcpHandlers,
  type TcpSocket, type UdpOptions, type UdpSocket,
} from "./types.ts";
import { HIGH_WATER, WriteQueue } from "./tcp-queue.ts";
import { listenTls } from "./node-tls.ts";
import { closeSync, openSync, write as fsWrite, writeSync } from "node:fs";

declare const Bun: any; // deno-lint-ignore no-explicit-any

// bun:ffi calls only block the calling thread, so poll(2) runs in a worker of its own, one wait
// per message, answered in order. Its code is here, not in a file, so the single binary has it.
const POLL_WORKER = `
import { dlopen } from "bun:ffi";
const { symbols } = dlopen("libc.so.6", { poll: { args: ["ptr", "u64", "i32"], returns: "i32" } });
self.onmessage = (e) => {
  const { fds, timeoutMs } = e.data;
  const pollfds = new Int32Array(Math.max(1, fds.length) * 2);
  for (let i = 0; i < fds.length; i++) { pollfds[i * 2] = fds[i]; pollfds[i * 2 + 1] = 1; }
  postMessage(symbols.poll(pollfds, fds.length, timeoutMs));
};
`;
let worker: Worker | null = null;
const pollWaits: ((n: number) => void)[] = [];
function pollWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(URL.createObjectURL(new Blob([POLL_WORKER], { type: "application/typescript" })));
  w.onmessage = (e: MessageEvent) => pollWaits.shift()?.(e.data as number);
  // An idle wait must not keep the process alive.
  (w as unknown as { unref(): void }).unref();
  return worker = w;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// In a compiled binary argv[1] is the embedded entry under /$bunfs; under `bun script.ts` it is
// the script. Either way the arguments start at argv[2].
const argv: string[] = Bun.argv;

// Bun does not keep what a socket's write() did not take: the queue holds it until drain.
// Bun sets TCP_NODELAY on every socket it accepts or connects (a setNoDelay of ours was a second
// setsockopt per socket). Bun hands every read to the data handler as a new Buffer of its own
// (it copies out of its read buffer), so chunks are always the handler's to keep, lent or not.
class BunTcp implements TcpSocket {
  readonly chunksOwned = true;
  private readonly queue = new WriteQueue();
  private ending = false;
  private closed = false;
  private blocked = false;
  private shuttingDown = false;

  constructor(private readonly raw: any, public handlers: TcpHandlers, private readonly halfOpen = false) {}

  // Each of Bun's address getters is a getpeername/getsockname call: read once, kept.
  private remote: { address: string; port: number } | null = null;
  private local: { address: string; port: number } | null = null;
  get remoteAddress(): string { return (this.remote ??= { address: this.raw.remoteAddress ?? "", port: this.raw.remotePort ?? 0 }).address; }
  get remotePort(): number { return (this.remote ??= { address: this.raw.remoteAddress ?? "", port: this.raw.remotePort ?? 0 }).port; }
  get localAddress(): string { return (this.local ??= { address: this.raw.localAddress ?? "", port: this.raw.localPort ?? 0 }).address; }
  get localPort(): number { return (this.local ??= { address: this.raw.localAddress ?? "", port: this.raw.localPort ?? 0 }).port; }
  get pending(): number { return this.queue.bytes; }

  write(data: Uint8Array, offset = 0, length = data.length - offset, keep = false): boolean {
    if (this.closed) return false;
    let from = offset;
    if (this.queue.empty) {
      const n = this.raw.write(data, offset, length);
      if (n >= length) return true;
      if (n > 0) from += n;
    }
    // Unless handed over, copies: the caller may reuse its buffer once write() returns.
    const end = offset + length;
    this.queue.push(keep ? data.subarray(from, end) : data.slice(from, end));
    if (this.queue.bytes < HIGH_WATER) return true;
    this.blocked = true;
    return false;
  }

  onDrain(): void {
    this.queue.flush((d) => this.raw.write(d));
    if (!this.queue.empty) return;
    if (this.ending) { this.raw.end(); return; }
    if (this.shuttingDown) { this.shuttingDown = false; this.raw.shutdown(); }
    if (this.blocked) { this.blocked = false; this.handlers.drain(); }
  }

  end(): void {
    if (this.closed) return;
    if (this.queue.empty) this.raw.end();
    else this.ending = true;
  }

  destroy(): void {
    if (this.closed) return;
    this.queue.clear();
    this.raw.terminate();
  }

  shutdown(): void {
    if (this.closed) return;
    if (this.queue.empty) this.raw.shutdown();
    else this.shuttingDown = true;
  }

  onEnd(): void {
    if (this.halfOpen && !this.closed) this.handlers.peerEnded?.();
  }

  pause(): void { this.raw.pause(); }
  resume(): void { this.raw.resume(); }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    this.handlers.close();
  }
}

// Bun's own UDP sockets (node:dgram is a layer of events and address lookups over them). A
// connected one sends with one argument only.
class BunUdp implements UdpSocket {
  constructor(private readonly raw: any) {}
  get port(): number { return this.raw.port; }
  send(data: Uint8Array, port?: number, address?: string): void {
    if (port === undefined) this.raw.send(data);
    else this.raw.send(data, port, address);
  }
  close(): void { this.raw.close(); }
}

async function bindUdp(o: UdpOptions): Promise<UdpSocket> {
  try {
    const raw = await Bun.udpSocket({
      hostname: o.hostname,
      port: o.port,
      binaryType: "uint8array",
      ...(o.connect ? { connect: o.connect } : {}),
      socket: {
        data: (_s: unknown, data: Uint8Array, port: number, address: string) => o.message(data, port, address),
        error: (_s: unknown, e: Error) => o.error?.(e),
      },
    });
    return new BunUdp(raw);
  } catch (e) {
    throw listenError(o.hostname, o.port, e);
  }
}

// No forced collections: they were a fix for JSC postponing collections while the data plane's
// 64 MB WASM memory counted as live; the memory now starts at 1 MB and grows with the tables,
// and the forced full collections (12-45 ms each) were what lengthened the tail
// (bench/RESULTS.md, "L7 tail and memory").
const bunSocketHandlers = {
  data: (raw: any, chunk: Uint8Array) => raw.data?.handlers.data(chunk),
  drain: (raw: any) => raw.data?.onDrain(),
  close: (raw: any) => raw.data?.onClose(),
  end: (raw: any) => raw.data?.onEnd(),
  error: (raw: any) => raw.data?.onClose(),
};

/** A connecting socket's data until it opens: where its events go then. Events before that (a
 * refused connect) reach no handler: the connect's promise reports them. */
const NO_HANDLERS: TcpHandlers = { data() {}, drain() {}, close() {} };

class PendingConnect {
  readonly handlers = NO_HANDLERS;
  constructor(readonly target: TcpHandlers, readonly halfOpen: boolean) {}
  onDrain(): void {}
  onClose(): void {}
  onEnd(): void {}
}

// One handler object for every connect (the connection's own state rides in `data`): Bun reads
// a connect's handlers into native callbacks each time it is given a new object.
const connectHandlers = {
  ...bunSocketHandlers,
  open(raw: any) {
    const pending = raw.data as PendingConnect;
    raw.data = new BunTcp(raw, pending.target, pending.halfOpen);
  },
};

export const runtime: Runtime = {
  name: "bun",
  version: Bun.version,
  args: argv.slice(2),
  scriptCommand: (script) => [process.execPath, script],
  // A compiled binary's entry lives under /$bunfs and is not passed again.
  selfCommand: (args) => argv[1]?.startsWith("/$bunfs/") ? [process.execPath, ...args] : [process.execPath, argv[1], ...args],
  stdin: () => Bun.stdin.stream(),
  viewAddress: (address, length) => toArrayBuffer(Number(address) as never, 0, length),
  env: (name) => process.env[name],
  exit: (code) => process.exit(code),
  cwd: () => process.cwd(),
  readTextFile: (path) => Bun.file(path).text(),
  writeTextFile: async (path, text) => { await Bun.write(path, text); },
  openAppend(path) {
    const fd = path === "stdout" ? 1 : openSync(path, "a");
    return {
      write: (data) => new Promise((resolve, reject) => fsWrite(fd, data, 0, data.length, null, (e, n) => e ? reject(e) : resolve(n))),
      writeAllSync: (data) => { for (let at = 0; at < data.length;) at += writeSync(fd, data, at, data.length - at); },
      close: () => { if (fd !== 1) closeSync(fd); },
    };
  },
  exists: (path) => Bun.file(path).exists(),
  wasmBytes: () => Bun.file(wasmPath).bytes(),
  async serveHttp(o: ServeOptions) {
    const server = listening(o, () => Bun.serve({
      hostname: o.hostname,
      port: o.port,
      idleTimeout: 120, // seconds (Bun's default is 10): an edge's pooled connections stay open
      fetch(req: Request, srv: any) {
        const ip = srv.requestIP(req);
        return o.fetch(req, { address: ip?.address ?? "", port: ip?.port ?? 0 });
      },
    }));
    return {
      hostname: server.hostname,
      port: server.port,
      stop: () => server.stop(true),
    };
  },
  async listenTcp(o) {
    if (o.tls) return listenTls(o);
    const listener = listening(o, () => Bun.listen({
      hostname: o.hostname,
      port: o.port,
      allowHalfOpen: o.halfOpen ?? false,
      reusePort: o.reusePort ?? false,
      socket: {
        ...bunSocketHandlers,
        open(raw: any) {
          const s = new BunTcp(raw, NO_HANDLERS, o.halfOpen);
          raw.data = s;
          s.handlers = o.accept(s);
        },
      },
    }));
    return { port: listener.port, close: () => listener.stop(false), stop: async () => listener.stop(true) };
  },
  connectTcp(o) {
    return Bun.connect({
      hostname: o.hostname,
      port: o.port,
      allowHalfOpen: o.halfOpen ?? false,
      data: new PendingConnect(o.handlers, o.halfOpen ?? false),
      socket: connectHandlers,
    }).then((raw: any) => raw.data as BunTcp, (e: unknown) => {
      const code = (e as { code?: string }).code;
      throw new UpstreamError(code === "ECONNREFUSED" || code === "ConnectionRefused" ? "refused" : "failed", String((e as Error).message ?? e));
    });
  },
  bindUdp,
  onSignal: (signal, handler) => { process.on(signal, handler); },
  fetchTrusting: (ca) => ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, tls: { ca } } as RequestInit)) as typeof fetch,
  spawn(cmd, options = {}): Child {
    const proc = Bun.spawn(cmd, {
      env: { ...process.env, ...options.env }, // this process's environment as it is now (Bun's default is a copy made at start)
      cwd: options.cwd,
      stdout: "pipe",
      stderr: options.inheritStderr ? "inherit" : "pipe",
      stdin: options.stdin ? "pipe" : "ignore",
    });
    return {
      pid: proc.pid,
      exited: proc.exited.then((code: number | null) =>
        code ?? 128 + (SIGNALS[proc.signalCode ?? ""] ?? 0)),
      stdout: proc.stdout,
      stderr: options.inheritStderr ? new ReadableStream<Uint8Array>({ start: (c) => c.close() }) : proc.stderr,
      kill: (signal = "SIGTERM") => proc.kill(signal),
      stdin: !options.stdin ? null : {
        write: (data: Uint8Array) => { try { proc.stdin.write(data); proc.stdin.flush(); } catch { /* exited */ } },
        close: () => { try { proc.stdin.end(); } catch { /* exited */ } },
      },
    };
  },
  dlopen<S extends Record<string, FfiSymbol>>(path: string, symbols: S): FfiLibrary<S> {
    const mapped: Record<string, { args: string[]; returns: string }> = {};
    for (const [name, s] of Object.entries(symbols)) mapped[name] = { args: s.args, returns: s.returns };
    return bunDlopen(path, mapped).symbols as FfiLibrary<S>;
  },
  waitReadable(fds: number[], timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      pollWaits.push(resolve);
      pollWorker().postMessage({ fds, timeoutMs });
    });
  },
  nativeMemory(address: number, length: number): ArrayBuffer {
    return toArrayBuffer(address, 0, length);
  },
};

