// Runtime adapter for Bun.
import { dlopen as bunDlopen } from "bun:ffi";
import wasmPath from "../../build/fulcrum.wasm" with { type: "file" };
import {
  listening, UpstreamError, type Child, type FfiSymbol, type FfiLibrary, type Runtime, type ServeOptions, type TcpHandlers,
  type TcpSocket,
} from "./types.ts";
import { HIGH_WATER, WriteQueue } from "./tcp-queue.ts";
import { listenTls } from "./node-tls.ts";

declare const Bun: any; // deno-lint-ignore no-explicit-any

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// In a compiled binary argv[1] is the embedded entry under /$bunfs; under `bun script.ts` it is
// the script. Either way the arguments start at argv[2].
const argv: string[] = Bun.argv;

// Bun does not keep what a socket's write() did not take: the queue holds it until drain.
// Bun hands every read to the data handler as a new Buffer of its own (it copies out of its
// read buffer), so chunks are always the handler's to keep, lent or not.
class BunTcp implements TcpSocket {
  readonly chunksOwned = true;
  private readonly queue = new WriteQueue();
  private ending = false;
  private closed = false;
  private blocked = false;
  private shuttingDown = false;

  constructor(private readonly raw: any, public handlers: TcpHandlers, private readonly halfOpen = false) {}

  get remoteAddress(): string { return this.raw.remoteAddress; }
  get remotePort(): number { return this.raw.remotePort ?? 0; }
  get localAddress(): string { return this.raw.localAddress ?? ""; }
  get localPort(): number { return this.raw.localPort ?? 0; }
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

export const runtime: Runtime = {
  name: "bun",
  version: Bun.version,
  args: argv.slice(2),
  scriptCommand: (script) => [process.execPath, script],
  env: (name) => process.env[name],
  exit: (code) => process.exit(code),
  cwd: () => process.cwd(),
  readTextFile: (path) => Bun.file(path).text(),
  writeTextFile: async (path, text) => { await Bun.write(path, text); },
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
      socket: {
        ...bunSocketHandlers,
        open(raw: any) {
          raw.setNoDelay(true);
          const s = new BunTcp(raw, { data() {}, drain() {}, close() {} }, o.halfOpen);
          raw.data = s;
          s.handlers = o.accept(s);
        },
      },
    }));
    return { port: listener.port, close: () => listener.stop(false), stop: async () => listener.stop(true) };
  },
  async connectTcp(o) {
    try {
      const raw = await Bun.connect({
        hostname: o.hostname,
        port: o.port,
        allowHalfOpen: o.halfOpen ?? false,
        socket: {
          ...bunSocketHandlers,
          open(raw: any) { raw.setNoDelay(true); raw.data = new BunTcp(raw, o.handlers, o.halfOpen); },
        },
      });
      return raw.data as BunTcp;
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new UpstreamError(code === "ECONNREFUSED" || code === "ConnectionRefused" ? "refused" : "failed", String((e as Error).message ?? e));
    }
  },
  onSignal: (signal, handler) => { process.on(signal, handler); },
  fetchTrusting: (ca) => ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, tls: { ca } } as RequestInit)) as typeof fetch,
  spawn(cmd, options = {}): Child {
    const proc = Bun.spawn(cmd, {
      env: options.env ? { ...process.env, ...options.env } : undefined,
      cwd: options.cwd,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    return {
      pid: proc.pid,
      exited: proc.exited.then((code: number | null) =>
        code ?? 128 + (SIGNALS[proc.signalCode ?? ""] ?? 0)),
      stdout: proc.stdout,
      stderr: proc.stderr,
      kill: (signal = "SIGTERM") => proc.kill(signal),
    };
  },
  dlopen<S extends Record<string, FfiSymbol>>(path: string, symbols: S): FfiLibrary<S> {
    const mapped: Record<string, { args: string[]; returns: string }> = {};
    for (const [name, s] of Object.entries(symbols)) mapped[name] = { args: s.args, returns: s.returns };
    return bunDlopen(path, mapped).symbols as FfiLibrary<S>;
  },
};

