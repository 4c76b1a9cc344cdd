// What Fulcrum needs from its host runtime. Bun and Deno each implement it in one file; nothing
// else in the source asks which runtime it runs on.

export interface ServeOptions {
  hostname: string;
  port: number;
  fetch: (req: Request, peer: PeerInfo) => Response | Promise<Response>;
}

export interface PeerInfo {
  /** Client address without brackets, e.g. 127.0.0.1 or ::1. */
  address: string;
  port: number;
}

export interface HttpServer {
  readonly hostname: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Why an upstream connection failed: refused (nothing listening), or anything else. */
export class UpstreamError extends Error {
  constructor(readonly kind: "refused" | "failed", message: string) {
    super(message);
  }
}

/** A listener could not open its address. The message is "ADDRESS: REASON", e.g.
 * "127.0.0.1:8080: address in use", the same on both runtimes and for plain and TLS listeners. */
export class ListenError extends Error {
  constructor(readonly address: string, readonly reason: string, readonly code: string | undefined) {
    super(`${address}: ${reason}`);
  }
}

const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: "address in use",
  EACCES: "permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)",
  EADDRNOTAVAIL: "address not available (not an address of this host)",
};

/** The ListenError for what a runtime threw when listening on hostname:port. Both runtimes set
 * `code` (Bun's own message only says "Failed to listen at HOST"); an unknown one keeps its message. */
export function listenError(hostname: string, port: number, e: unknown): ListenError {
  const code = (e as { code?: string }).code;
  const address = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  return new ListenError(address, (code && LISTEN_REASONS[code]) ?? String((e as Error).message ?? e), code);
}

/** Runs a runtime's synchronous listen call; what it throws becomes a ListenError. */
export function listening<T>(o: { hostname: string; port: number }, listen: () => T): T {
  try {
    return listen();
  } catch (e) {
    throw listenError(o.hostname, o.port, e);
  }
}

/** A TCP connection, push style (as Bun's sockets): data arrives through the handlers. */
export interface TcpSocket {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The address and port the connection arrived at (a PROXY header's destination). */
  readonly localAddress: string;
  readonly localPort: number;
  /** Sends data[offset, offset + length); false once more than the high-water mark is queued
   * (stop producing and wait for drain). What it cannot send at once it copies, unless `keep`:
   * the caller hands `data` over and never changes it again, so the socket queues a view. */
  write(data: Uint8Array, offset?: number, length?: number, keep?: boolean): boolean;
  /** Bytes queued and not yet handed to the kernel. */
  readonly pending: number;
  /** True when the data chunks this socket delivers are the handler's to keep (the runtime
   * never reuses their memory, even where lent chunks were allowed): a handler may pass them
   * on to another socket's write with `keep`. */
  readonly chunksOwned: boolean;
  /** Closes after the queued bytes are written. */
  end(): void;
  /** Closes now, dropping queued bytes. */
  destroy(): void;
  /** Half-close: sends FIN once the queued bytes are written and goes on reading. For sockets
   * opened with `halfOpen` (the L4 proxy passes a client's FIN on to its server). */
  shutdown(): void;
  /** Stops delivering data until resume(): backpressure towards the peer. */
  pause(): void;
  resume(): void;
  /** The protocol TLS ALPN agreed on ("h2", "http/1.1"), for accepted TLS connections. */
  readonly alpnProtocol?: string | null;
}

export interface TcpHandlers {
  data(chunk: Uint8Array): void;
  /** The write queue emptied after write() returned false. */
  drain(): void;
  /** The connection is gone (either side), once. */
  close(): void;
  /** The peer sent FIN (sockets opened with `halfOpen`): no more data comes, writes still go
   * out, and the socket stays open until its owner ends it. */
  peerEnded?(): void;
}

export interface TcpListener {
  readonly port: number;
  /** Stops accepting; connections already accepted go on (a drain). */
  close(): void;
  /** Stops accepting and closes every connection it accepted. */
  stop(): Promise<void>;
  /** TLS listeners: serve these certificates for new handshakes from now on (a reload). */
  setCertificates?(certs: TlsCertificate[]): void;
}

export interface TlsCertificate {
  /** PEM text. */
  cert: string;
  key: string;
  /** SNI names this certificate serves; the first certificate is the default. */
  serverNames: string[];
}

export interface ListenTcpOptions {
  hostname: string;
  port: number;
  tls?: TlsCertificate[];
  /** ALPN protocols a TLS listener offers, most preferred first (the client's order decides
   * nothing: the server picks). */
  alpn?: string[];
  /** Called for each accepted connection; returns its handlers. Data chunks of accepted
   * connections are lent: valid only during the data() call (copy what you keep). */
  accept(socket: TcpSocket): TcpHandlers;
  /** A peer's FIN is reported through `peerEnded` and leaves the socket open (plain TCP only). */
  halfOpen?: boolean;
  /** SO_REUSEPORT: other processes (workers) listen on the same address and the kernel spreads
   * new connections between them. */
  reusePort?: boolean;
}

export interface ConnectTcpOptions {
  hostname: string;
  port: number;
  handlers: TcpHandlers;
  /** Bytes per read where the runtime reads into a buffer it allocates (Deno); 64 KiB by default.
   * Small exchanges (health checks) read cheaper with a small one. */
  readSize?: number;
  /** Data chunks are lent: valid only during the data() call, so the runtime may read every
   * chunk into one buffer (Deno); the handler copies what it keeps. Default: fresh chunks. */
  lendChunks?: boolean;
  /** A peer's FIN is reported through `peerEnded` and leaves the socket open. */
  halfOpen?: boolean;
}

/** A file opened to append to (the access log). Writes run off the event loop: Deno's node:fs
 * write() blocks it (on a pipe that is full, indefinitely), so each runtime uses its own. */
export interface AppendFile {
  /** Writes some of `data` (all of it, for a regular file); resolves the bytes written. */
  write(data: Uint8Array): Promise<number>;
  /** Writes all of `data` before returning (the last lines at exit). */
  writeAllSync(data: Uint8Array): void;
  close(): void;
}

/** A UDP socket, push style: datagrams arrive through `message`. */
export interface UdpSocket {
  /** The port it is bound to. */
  readonly port: number;
  /** Sends one datagram, to `port` and `address` (an IP literal), or to the connected peer when
   * they are left out. UDP may drop it (a full send buffer): nothing is queued. */
  send(data: Uint8Array, port?: number, address?: string): void;
  close(): void;
}

export interface UdpOptions {
  /** The address to bind (an IP literal; its family is the socket's). */
  hostname: string;
  /** 0: any free port. */
  port: number;
  /** A connected socket: datagrams go there by default and only its datagrams arrive. */
  connect?: { hostname: string; port: number };
  /** A datagram and its sender; `data` is the handler's to keep. */
  message(data: Uint8Array, port: number, address: string): void;
  /** A send or receive failed (an ICMP port unreachable on a connected socket, say). */
  error?(e: Error): void;
}

export interface Child {
  readonly pid: number;
  /** Exit code (signal deaths map to 128 + signal number where the runtime reports it). */
  readonly exited: Promise<number>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  kill(signal?: "SIGTERM" | "SIGKILL" | "SIGINT" | "SIGHUP"): void;
  /** The child's standard input, when spawned with `stdin: true`; null otherwise. */
  readonly stdin: ChildInput | null;
}

/** Writes to a child's standard input, in order; close() ends it (the child reads EOF). */
export interface ChildInput {
  write(data: Uint8Array): void;
  close(): void;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** A pipe to the child's standard input (Child.stdin); without it the child reads nothing. */
  stdin?: boolean;
  /** The child writes to this process's standard error itself (Child.stderr is then empty), so
   * its lines come out in the order it writes them with what it does (a worker's logs). */
  inheritStderr?: boolean;
}

/** "usize": a size_t or a raw address, passed as a number or bigint and returned as a bigint. */
export type FfiType = "i32" | "u32" | "i64" | "u64" | "usize" | "buffer" | "void";
export interface FfiSymbol {
  args: FfiType[];
  returns: FfiType;
}
export type FfiLibrary<S extends Record<string, FfiSymbol>> = {
  // deno-lint-ignore no-explicit-any
  [K in keyof S]: (...args: any[]) => any;
};

export interface Runtime {
  readonly name: "bun" | "deno";
  readonly version: string;
  /** Command-line arguments after the script (or after the compiled binary). */
  readonly args: string[];
  /** argv prefix that runs a TypeScript file on this runtime, e.g. ["bun"] or ["deno","run","-A"]. */
  scriptCommand(script: string): string[];
  /** The argv that runs this same program (the single binary, or the CLI source on this
   * runtime) with `args`: how the supervisor starts its workers. Listening with `reusePort`
   * works in what it starts (Deno's needs --unstable-net). */
  selfCommand(args: string[]): string[];
  /** This process's standard input (a worker reads its supervisor's messages there). */
  stdin(): ReadableStream<Uint8Array>;
  /** `length` bytes of memory at a raw address (an mmap'd segment) as an ArrayBuffer; the
   * memory must stay mapped as long as the buffer is used. */
  viewAddress(address: bigint, length: number): ArrayBuffer;
  env(name: string): string | undefined;
  exit(code: number): never;
  cwd(): string;
  readTextFile(path: string): Promise<string>;
  writeTextFile(path: string, text: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Opens a file to append to, created if absent, or "stdout"; throws when it cannot. */
  openAppend(path: string): AppendFile;
  /** The compiled data-plane module (embedded in the single binary on Bun). */
  wasmBytes(): Promise<Uint8Array>;
  /** A plain HTTP server for fetch-style handlers (the demo's and the tests' backends). */
  serveHttp(options: ServeOptions): Promise<HttpServer>;
  /** Accepts TCP (optionally TLS) connections. */
  listenTcp(options: ListenTcpOptions): Promise<TcpListener>;
  /** Opens a TCP connection; rejects with UpstreamError ("refused" or "failed"). */
  connectTcp(options: ConnectTcpOptions): Promise<TcpSocket>;
  /** Binds a UDP socket; rejects with a ListenError. */
  bindUdp(options: UdpOptions): Promise<UdpSocket>;
  onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGUSR1", handler: () => void): void;
  /** A `fetch` that trusts the PEM certificates in `ca` for https URLs (etcd with its own CA). */
  fetchTrusting(ca: string): typeof fetch;
  spawn(cmd: string[], options?: SpawnOptions): Child;
  dlopen<S extends Record<string, FfiSymbol>>(path: string, symbols: S): FfiLibrary<S>;
  /** An ArrayBuffer over native memory at a raw address (a ring the kernel shares by mmap), no
   * copy; valid only while that memory stays mapped. */
  nativeMemory(address: number, length: number): ArrayBuffer;
  /** poll(2) for input on `fds` off the event loop (a thread of its own blocks in it): resolves
   * with poll's result (descriptors ready, 0 when `timeoutMs` passed first, -1 on error). Bun
   * answers waits in the order they were asked (one worker thread blocks in them). */
  waitReadable(fds: number[], timeoutMs: number): Promise<number>;
}
