// Plain TCP for Deno through libc: nonblocking sockets on one epoll set, with reads and writes
// as synchronous FFI calls and one awaited call per batch of readiness events (epoll_wait runs
// on Deno's blocking pool: `nonblocking: true`). Deno's own sockets cost an awaited op per read
// and per write, which is most of what kept Fulcrum on Deno at about half of Bun (bench/RESULTS.md,
// "Deno sockets"). Only IP literals connect here; names go through Deno.connect (deno.ts).
import { isIP } from "node:net";
import {
  listenError, UpstreamError, type ListenTcpOptions, type TcpHandlers, type TcpListener, type TcpSocket, type UdpOptions, type UdpSocket,
} from "./types.ts";
import { HIGH_WATER, WriteQueue } from "./tcp-queue.ts";

declare const Deno: any; // deno-lint-ignore no-explicit-any

const AF_INET = 2, AF_INET6 = 10;
const SOCK_STREAM_NB = 1 | 0o4000 | 0o2000000; // SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC
const SOCK_DGRAM_NB = 2 | 0o4000 | 0o2000000;
const ACCEPT_FLAGS = 0o4000 | 0o2000000;
const SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_ERROR = 4, SO_REUSEPORT = 15;
const IPPROTO_TCP = 6, TCP_NODELAY = 1;
const MSG_NOSIGNAL = 0x4000;
const EPOLLIN = 0x1, EPOLLOUT = 0x4, EPOLLERR = 0x8, EPOLLHUP = 0x10, EPOLLRDHUP = 0x2000;
const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3;
const EAGAIN = 11, EINPROGRESS = 115, ECONNREFUSED = 111, EINTR = 4;
const ERRNO_CODES: Record<number, string> = { 98: "EADDRINUSE", 13: "EACCES", 99: "EADDRNOTAVAIL", 24: "EMFILE" };
/** Events taken per epoll_wait; the queue of ready sockets beyond it waits for the next call. */
const MAX_EVENTS = 256;
/** Batches taken without waiting after a wait, while events are ready (see Loop.run). */
const POLLS_PER_WAIT = 8;
/** One read buffer for every socket: chunks are lent (copied for sockets that own theirs). */
const READ_SIZE = 65536;
/** Reads per ready socket per batch, so one fast sender cannot hold the loop. */
const READS_PER_EVENT = 4;
/** How long an ended connection waits for the peer's close (lingerThenClose). */
const LINGER_MS = 2000;
const SHUT_WR = 1;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // recvmsg/sendmsg take no size_t argument, so Deno calls them on V8's fast path (no argument
  // vectors allocated, no slow-path dispatch): a usize parameter costs each call about 110 ns
  // and two mallocs here. The sizes travel in a prebuilt iovec instead.
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_poll: { name: "epoll_wait", parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
}).symbols;

/** errno of the main thread (every synchronous call runs there). */
const errnoView = new Deno.UnsafePointerView(libc.__errno_location());
const errno = (): number => errnoView.getInt32();

const ONE = new Uint8Array(new Int32Array([1]).buffer);

/** A struct msghdr with one iovec over `data` (x86-64/aarch64 Linux layout), for recvmsg and
 * sendmsg on a fixed buffer; `setLength` sets the iovec's length for the next call. */
class FixedMessage {
  readonly header = new Uint8Array(56);
  private readonly iov = new Uint8Array(16);
  private readonly iovLength = new DataView(this.iov.buffer, 8, 8);

  constructor(readonly data: Uint8Array) {
    const h = new DataView(this.header.buffer);
    h.setBigUint64(16, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.iov))), true); // msg_iov
    h.setBigUint64(24, 1n, true); // msg_iovlen
    new DataView(this.iov.buffer).setBigUint64(0, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(data))), true);
    this.setLength(data.length);
  }

  setLength(n: number): void {
    this.iovLength.setUint32(0, n, true); // the high word stays 0: n < 2^32
  }
}

/** Sends up to this size are copied into one staging buffer and sent with sendmsg (fast path);
 * larger ones go through send, where the copy would cost more than the slow call. */
const STAGED_SEND = 16384;
const staged = new FixedMessage(new Uint8Array(STAGED_SEND));

function sockaddr(address: string, port: number): Uint8Array {
  const v6 = address.includes(":");
  const sa = new Uint8Array(v6 ? 28 : 16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  dv.setUint16(2, port, false);
  if (!v6) sa.set(address.split(".").map(Number), 4);
  else sa.set(ipv6Bytes(address), 8);
  return sa;
}

function ipv6Bytes(address: string): number[] {
  const mapped = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  let text = address;
  if (mapped) {
    const b = mapped[2].split(".").map(Number);
    text = `${mapped[1]}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === null ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => { const v = parseInt(g, 16); return [v >> 8, v & 255]; });
}

/** "address", port of a sockaddr the kernel filled; IPv6 in its short form, as Deno reports it. */
function peerOf(sa: Uint8Array): [string, number] {
  const dv = new DataView(sa.buffer, sa.byteOffset);
  const port = dv.getUint16(2, false);
  if (dv.getUint16(0, true) === AF_INET) return [`${sa[4]}.${sa[5]}.${sa[6]}.${sa[7]}`, port];
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(dv.getUint16(8 + i * 2, false));
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return [`::ffff:${sa[20]}.${sa[21]}.${sa[22]}.${sa[23]}`, port];
  }
  // The longest run of zero groups becomes "::".
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return [hex(g), port];
  return [`${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`, port];
}

function localOf(fd: number): [string, number] {
  const sa = new Uint8Array(28);
  const len = new Uint32Array([28]);
  libc.getsockname(fd, sa, new Uint8Array(len.buffer));
  return peerOf(sa);
}

interface Ready {
  /** The events epoll reported for this registration. */
  ready(events: number): void;
  /** ready() threw. */
  failed(): void;
}

/** The epoll set and its wait loop: one per process. The loop runs while anything is
 * registered; an eventfd wakes the blocked wait when the last registration leaves. */
class Loop {
  private readonly ep = libc.epoll_create1(0o2000000);
  private readonly wake = libc.eventfd(0, 0o4000 | 0o2000000);
  private readonly ev = new Uint8Array(12);
  private readonly evView = new DataView(this.ev.buffer);
  private readonly events = new Uint8Array(12 * MAX_EVENTS);
  private readonly eventsView = new DataView(this.events.buffer);
  /** Registrations by token: a token is never reused, so a stale event for a closed descriptor
   * (its number already taken by a new socket) finds nothing. */
  private readonly byToken = new Map<number, Ready>();
  private nextToken = 1;
  private running = false;
  readonly buffer = new Uint8Array(READ_SIZE);
  /** recvmsg into `buffer`, READ_SIZE at most. */
  private readonly reading = new FixedMessage(this.buffer);

  constructor() {
    this.ctl(EPOLL_CTL_ADD, this.wake, EPOLLIN, 0);
  }

  /** Reads into `buffer`: bytes read, 0 at the peer's FIN, -1 with errno set. */
  recv(fd: number): number {
    return libc.recvmsg(fd, this.reading.header, 0);
  }

  private ctl(op: number, fd: number, events: number, token: number): number {
    this.evView.setUint32(0, events, true);
    this.evView.setUint32(4, token, true);
    this.evView.setUint32(8, 0, true);
    return libc.epoll_ctl(this.ep, op, fd, this.ev);
  }

  add(fd: number, events: number, r: Ready): number {
    const token = this.nextToken++;
    if (this.nextToken > 0xffffffff) this.nextToken = 1;
    this.byToken.set(token, r);
    this.ctl(EPOLL_CTL_ADD, fd, events, token);
    if (!this.running) void this.run();
    return token;
  }

  /** New interest for a registration; 0 takes the descriptor out of the set (epoll reports
   * hang-ups even to no interest) while the registration stays. */
  modify(fd: number, from: number, to: number, token: number): void {
    if (to === 0) this.ctl(EPOLL_CTL_DEL, fd, 0, 0);
    else this.ctl(from === 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, to, token);
  }

  remove(fd: number, token: number, registered = true): void {
    if (registered) this.ctl(EPOLL_CTL_DEL, fd, 0, 0);
    this.byToken.delete(token);
    if (this.byToken.size === 0) libc.write(this.wake, new Uint8Array(new BigUint64Array([1n]).buffer), 8);
  }

  private async run(): Promise<void> {
    this.running = true;
    const drain = new Uint8Array(8);
    try {
      // After each wait, up to POLLS_PER_WAIT more batches are taken at once while they are
      // there (each saves a thread hop through Deno's blocking pool), with promise continuations
      // run between them; then the wait again, which lets timers and Deno's own I/O run.
      let polls = POLLS_PER_WAIT;
      while (this.byToken.size > 0) {
        let n = 0;
        if (polls < POLLS_PER_WAIT) {
          await undefined;
          n = libc.epoll_poll(this.ep, this.events, MAX_EVENTS, 0);
        }
        polls++;
        if (n <= 0) { polls = 0; n = await libc.epoll_wait(this.ep, this.events, MAX_EVENTS, -1); }
        if (n < 0) { if (errno() === EINTR) continue; throw new Error(`epoll_wait failed (errno ${errno()})`); }
        for (let i = 0; i < n; i++) {
          const events = this.eventsView.getUint32(i * 12, true);
          const token = this.eventsView.getUint32(i * 12 + 4, true);
          if (token === 0) { libc.read(this.wake, drain, 8); continue; }
          const r = this.byToken.get(token);
          // A handler that throws loses its own connection, as a read loop's would; the loop and
          // every other connection go on.
          try { r?.ready(events); } catch { r?.failed(); }
        }
      }
    } finally {
      this.running = false;
    }
  }
}

let loopInstance: Loop | null = null;
const loop = (): Loop => loopInstance ??= new Loop();

class EpollTcp implements TcpSocket, Ready {
  private readonly queue = new WriteQueue();
  private token = 0;
  private closed = false;
  private ending = false;
  private shuttingDown = false;
  private paused = false;
  /** The peer's FIN arrived (half-open sockets): nothing more to read. */
  private eof = false;
  /** Reads wait until the owner holds the socket (see ready()). */
  private reading = true;
  private blocked = false;
  /** Waiting for a nonblocking connect to finish. */
  private connecting: { resolve(): void; reject(e: Error): void } | null = null;
  private interest = 0;
  remoteAddress = "";
  remotePort = 0;
  localAddress = "";
  localPort = 0;

  constructor(
    private readonly fd: number, public handlers: TcpHandlers, readonly chunksOwned: boolean,
    private readonly halfOpen: boolean, private readonly onGone?: (s: EpollTcp) => void,
  ) {}

  register(connecting: boolean): void {
    this.interest = connecting ? EPOLLOUT : EPOLLIN | EPOLLRDHUP;
    this.token = loop().add(this.fd, this.interest, this);
  }

  private setInterest(): void {
    if (this.closed) return;
    const want = this.connecting ? EPOLLOUT
      : (this.paused || this.eof || !this.reading ? 0 : EPOLLIN | EPOLLRDHUP) | (this.queue.empty ? 0 : EPOLLOUT);
    if (want !== this.interest) { loop().modify(this.fd, this.interest, want, this.token); this.interest = want; }
  }

  /** Resolves when a nonblocking connect completes; rejects with the reason it failed. */
  connected(): Promise<void> {
    return new Promise((resolve, reject) => { this.connecting = { resolve, reject }; });
  }

  get pending(): number { return this.queue.bytes; }

  ready(events: number): void {
    if (this.connecting) {
      const c = this.connecting;
      const err = new Int32Array(1);
      const len = new Uint32Array([4]);
      libc.getsockopt(this.fd, SOL_SOCKET, SO_ERROR, new Uint8Array(err.buffer), new Uint8Array(len.buffer));
      if (err[0] !== 0) {
        this.destroy(); // still connecting: the owner hears of it through the rejection only
        this.connecting = null;
        c.reject(new UpstreamError(err[0] === ECONNREFUSED ? "refused" : "failed", `connect failed (errno ${err[0]})`));
        return;
      }
      this.connecting = null;
      [this.localAddress, this.localPort] = localOf(this.fd);
      // The owner gets the socket through promise continuations, which run only after this batch
      // and the next one the loop may take at once: data read before then would reach a handler
      // not set up yet. Reading starts once the owner uses the socket, or on the next turn.
      this.reading = false;
      this.setInterest();
      setTimeout(() => this.startReading(), 0);
      c.resolve();
      return;
    }
    if ((events & EPOLLOUT) !== 0) this.flush();
    if (this.closed) return;
    if ((this.interest & EPOLLIN) !== 0) {
      if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) !== 0) this.read(events);
    } else if ((events & (EPOLLHUP | EPOLLERR)) !== 0) {
      this.destroy(); // gone both ways while only writing: what is queued cannot arrive
    }
  }

  failed(): void {
    this.destroy();
  }

  private read(events: number): void {
    const l = loop(), buf = l.buffer;
    for (let i = 0; i < READS_PER_EVENT && !this.closed && !this.paused; i++) {
      const n = l.recv(this.fd);
      if (n > 0) {
        this.handlers.data(this.chunksOwned ? buf.slice(0, n) : buf.subarray(0, n));
        if (n < READ_SIZE) return;
        continue;
      }
      if (n === 0) { this.peerFin(); return; }
      const e = errno();
      if (e === EAGAIN) {
        if ((events & (EPOLLHUP | EPOLLERR)) !== 0) this.destroy();
        return;
      }
      if (e !== EINTR) { this.destroy(); return; }
    }
  }

  private peerFin(): void {
    if (this.halfOpen && this.handlers.peerEnded) {
      // No more reads: the socket stays for writes until its owner ends it.
      this.eof = true;
      this.setInterest();
      this.handlers.peerEnded();
      return;
    }
    this.destroy(); // a peer's FIN closes ours too (as Bun does), unless the socket is half-open
  }

  private startReading(): void {
    if (this.reading) return;
    this.reading = true;
    this.setInterest();
  }

  write(data: Uint8Array, offset = 0, length = data.length - offset, keep = false): boolean {
    if (this.closed) return false;
    if (!this.reading) this.startReading();
    let sent = 0;
    if (this.queue.empty && !this.connecting) {
      const view = offset === 0 && length === data.length ? data : data.subarray(offset, offset + length);
      sent = this.sendSome(view);
      if (sent < 0) return false;
      if (sent === length) return true;
    }
    const end = offset + length;
    this.queue.push(keep ? data.subarray(offset + sent, end) : data.slice(offset + sent, end));
    this.setInterest();
    if (this.queue.bytes < HIGH_WATER) return true;
    this.blocked = true;
    return false;
  }

  /** Bytes the kernel took (0 when its buffer is full); -1 after a failure closed the socket. */
  private sendSome(data: Uint8Array): number {
    const small = data.length <= STAGED_SEND;
    if (small) { staged.data.set(data); staged.setLength(data.length); }
    for (;;) {
      const n = small ? libc.sendmsg(this.fd, staged.header, MSG_NOSIGNAL) : libc.send(this.fd, data, data.length, MSG_NOSIGNAL);
      if (n >= 0) return n;
      const e = errno();
      if (e === EAGAIN) return 0;
      if (e === EINTR) continue;
      this.destroy();
      return -1;
    }
  }

  private flush(): void {
    let failed = false;
    this.queue.flush((chunk) => {
      const n = this.sendSome(chunk);
      if (n < 0) failed = true;
      return n;
    });
    if (failed || this.closed) return;
    if (this.blocked && this.queue.bytes < HIGH_WATER / 2) { this.blocked = false; this.handlers.drain(); }
    if (this.closed) return;
    if (this.queue.empty) {
      if (this.ending) { this.finish(); return; }
      if (this.shuttingDown) this.closeWrite();
    }
    this.setInterest();
  }

  shutdown(): void {
    this.shuttingDown = true;
    if (this.queue.empty) this.closeWrite();
  }

  private closeWrite(): void {
    this.shuttingDown = false;
    if (!this.closed) libc.shutdown(this.fd, SHUT_WR);
  }

  end(): void {
    this.ending = true;
    if (this.queue.empty) this.finish();
  }

  /** end() once the queue is out: FIN, then the descriptor lingers until the peer closes (or
   * LINGER_MS) so bytes it sent that were never read do not turn the close into a reset, which
   * can destroy the answer still on its way (nginx's lingering close). */
  private finish(): void {
    this.release(true);
  }

  destroy(): void {
    this.release(false);
  }

  private release(linger: boolean): void {
    if (this.closed) return;
    this.closed = true;
    loop().remove(this.fd, this.token, this.interest !== 0);
    if (linger && libc.shutdown(this.fd, SHUT_WR) === 0) lingerThenClose(this.fd);
    else libc.close(this.fd);
    this.queue.clear();
    this.onGone?.(this);
    if (this.connecting) return; // the connect promise reports it
    this.handlers.close();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.setInterest();
  }

  resume(): void {
    if (!this.reading) this.startReading();
    if (!this.paused) return;
    this.paused = false;
    this.setInterest();
  }
}

/** Reads and drops what a peer still sends after our FIN, then closes: at its FIN, an error,
 * or after LINGER_MS. */
function lingerThenClose(fd: number): void {
  let token = 0;
  let done = false;
  const close = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    loop().remove(fd, token);
    libc.close(fd);
  };
  const timer = setTimeout(close, LINGER_MS);
  Deno.unrefTimer(timer); // a lingering close never keeps the process up
  token = loop().add(fd, EPOLLIN | EPOLLRDHUP, {
    ready() {
      for (let i = 0; i < READS_PER_EVENT; i++) {
        const n = loop().recv(fd);
        if (n > 0) continue;
        if (n < 0 && errno() === EAGAIN) return;
        close();
        return;
      }
    },
    failed: close,
  });
}

/** True when this engine can open the address (an IP literal). */
export const epollCanConnect = (hostname: string): boolean => isIP(hostname) !== 0;

export function epollListen(o: ListenTcpOptions): TcpListener {
  const sa = sockaddr(o.hostname, o.port);
  const fd = libc.socket(sa.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM_NB, 0);
  const fail = () => {
    const e = errno();
    libc.close(fd);
    throw listenError(o.hostname, o.port, Object.assign(new Error(`errno ${e}`), { code: ERRNO_CODES[e] }));
  };
  if (fd < 0) throw listenError(o.hostname, o.port, new Error(`socket failed (errno ${errno()})`));
  libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, ONE, 4);
  if (o.reusePort) libc.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, ONE, 4);
  if (libc.bind(fd, sa, sa.length) !== 0) fail();
  if (libc.listen(fd, 4096) !== 0) fail();
  const port = localOf(fd)[1];
  const accepted = new Set<EpollTcp>();
  const gone = (s: EpollTcp) => accepted.delete(s);
  const peer = new Uint8Array(28);
  const peerLen = new Uint32Array(1);
  const peerLenBytes = new Uint8Array(peerLen.buffer);
  let open = true;
  const token = loop().add(fd, EPOLLIN, {
    ready() {
      // Everything waiting, up to a bound: accept errors (a client that reset first, EMFILE)
      // end this round and the listener goes on.
      for (let i = 0; i < 64 && open; i++) {
        peerLen[0] = 28;
        const c = libc.accept4(fd, peer, peerLenBytes, ACCEPT_FLAGS);
        if (c < 0) return;
        libc.setsockopt(c, IPPROTO_TCP, TCP_NODELAY, ONE, 4);
        const s = new EpollTcp(c, { data() {}, drain() {}, close() {} }, false, o.halfOpen ?? false, gone);
        [s.remoteAddress, s.remotePort] = peerOf(peer);
        [s.localAddress, s.localPort] = localOf(c);
        accepted.add(s);
        s.register(false);
        s.handlers = o.accept(s);
      }
    },
    failed() { /* an accept handler threw: that connection is lost, the listener goes on */ },
  });
  const close = () => {
    if (!open) return;
    open = false;
    loop().remove(fd, token);
    libc.close(fd);
  };
  return {
    port,
    close,
    stop: async () => {
      close();
      for (const s of [...accepted]) s.destroy();
    },
  };
}

export async function epollConnect(
  hostname: string, port: number, handlers: TcpHandlers, chunksOwned: boolean, halfOpen: boolean,
): Promise<TcpSocket> {
  const sa = sockaddr(hostname, port);
  const fd = libc.socket(sa.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM_NB, 0);
  if (fd < 0) throw new UpstreamError("failed", `socket failed (errno ${errno()})`);
  libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, ONE, 4);
  const s = new EpollTcp(fd, handlers, chunksOwned, halfOpen);
  s.remoteAddress = hostname;
  s.remotePort = port;
  if (libc.connect(fd, sa, sa.length) !== 0) {
    const e = errno();
    if (e !== EINPROGRESS) {
      libc.close(fd);
      throw new UpstreamError(e === ECONNREFUSED ? "refused" : "failed", `connect failed (errno ${e})`);
    }
    const done = s.connected();
    s.register(true);
    await done;
  } else {
    [s.localAddress, s.localPort] = localOf(fd);
    s.register(false);
  }
  return s;
}

/** Datagrams taken per readiness event (level-triggered: the rest come with the next batch). */
const DATAGRAMS_PER_EVENT = 64;
/** Destination sockaddrs kept, by "address|port" (a UDP listener answers the same clients). */
const SOCKADDR_CACHE = 4096;

class EpollUdp implements UdpSocket, Ready {
  private token = 0;
  private closed = false;
  private readonly from = new Uint8Array(28);
  private readonly fromLen = new Uint32Array(1);
  private readonly fromLenBytes = new Uint8Array(this.fromLen.buffer);
  private readonly destinations = new Map<string, Uint8Array>();
  readonly port: number;

  constructor(private readonly fd: number, private readonly o: UdpOptions) {
    this.port = localOf(fd)[1];
    this.token = loop().add(fd, EPOLLIN, this);
  }

  ready(): void {
    const buf = loop().buffer;
    for (let i = 0; i < DATAGRAMS_PER_EVENT && !this.closed; i++) {
      this.fromLen[0] = 28;
      const n = libc.recvfrom(this.fd, buf, READ_SIZE, 0, this.from, this.fromLenBytes);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN) return;
        if (e !== EINTR) this.o.error?.(new Error(`receive failed (errno ${e}${e === ECONNREFUSED ? ": port unreachable" : ""})`));
        if (e === ECONNREFUSED || e === EINTR) continue;
        return;
      }
      const [address, port] = peerOf(this.from);
      this.o.message(buf.slice(0, n), port, address);
    }
  }

  failed(): void { /* a message handler threw: that datagram is lost, the socket goes on */ }

  send(data: Uint8Array, port?: number, address?: string): void {
    if (this.closed) return;
    let n: number;
    if (port === undefined || address === undefined) n = libc.send(this.fd, data, data.length, MSG_NOSIGNAL);
    else {
      const key = `${address}|${port}`;
      let sa = this.destinations.get(key);
      if (!sa) {
        if (this.destinations.size >= SOCKADDR_CACHE) this.destinations.clear();
        this.destinations.set(key, sa = sockaddr(address, port));
      }
      n = libc.sendto(this.fd, data, data.length, MSG_NOSIGNAL, sa, sa.length);
    }
    // A full send buffer drops the datagram, as UDP may; a refused peer is reported.
    if (n < 0 && errno() === ECONNREFUSED) this.o.error?.(new Error("send failed: port unreachable"));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    loop().remove(this.fd, this.token);
    libc.close(this.fd);
  }
}

export function epollBindUdp(o: UdpOptions): UdpSocket {
  const sa = sockaddr(o.hostname, o.port);
  const fd = libc.socket(sa.length === 28 ? AF_INET6 : AF_INET, SOCK_DGRAM_NB, 0);
  if (fd < 0) throw listenError(o.hostname, o.port, new Error(`socket failed (errno ${errno()})`));
  const fail = (what: string) => {
    const e = errno();
    libc.close(fd);
    throw listenError(o.hostname, o.port, Object.assign(new Error(`${what} failed (errno ${e})`), { code: ERRNO_CODES[e] }));
  };
  if (libc.bind(fd, sa, sa.length) !== 0) fail("bind");
  if (o.connect) {
    const to = sockaddr(o.connect.hostname, o.connect.port);
    if (libc.connect(fd, to, to.length) !== 0) fail("connect");
  }
  return new EpollUdp(fd, o);
}
