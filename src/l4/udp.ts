// A udp listener of the L4 proxy (nginx stream's udp): a session per client address and port,
// with its own socket to the server it was picked for (counted active there), replies sent back
// from the listener's socket, ended by the idle timeout or, with `responses`, once the server has
// answered every datagram that many times (DNS: 1). Sockets are the runtime's (Bun's own UDP
// sockets; node:dgram on Deno).
import { runtime } from "../runtime/index.ts";
import type { UdpSocket } from "../runtime/types.ts";
import type { Pool, Server } from "../balancer/pool.ts";
import type { DeadlineSweep, Timed } from "../core/timer.ts";
import { formatHostPort } from "../config/address.ts";
import type { L4ListenerConfig } from "./config.ts";
import type { L4Stats } from "./stats.ts";
import type { L4PoolConfig } from "./tcp-session.ts";
import type { AccessList } from "../edge/access/acl.ts";
import { AccessLog } from "../log/access-log.ts";

/** The wildcard address of a server address's family: the session socket's local side. */
const anyAddressFor = (host: string): string => host.includes(":") ? "::" : "0.0.0.0";

class UdpSession implements Timed {
  deadline = 0;
  private requests = 0;
  private replies = 0;
  private lastActive: number;
  private closed = false;
  /** A socket connected to the server (only its replies arrive), once bound. */
  private upstream: UdpSocket | null = null;
  /** Datagrams that came while the socket was being bound. */
  private waiting: Uint8Array[] = [];
  private readonly started = Date.now();
  private bytesSent = 0;
  private bytesReceived = 0;

  constructor(
    private readonly listener: UdpProxyListener,
    readonly key: string,
    private readonly client: { address: string; port: number },
    private readonly pool: Pool<L4PoolConfig>,
    private readonly server: Server,
  ) {
    this.lastActive = listener.deadlines.now;
    listener.deadlines.watch(this);
    this.arm();
    runtime.bindUdp({
      hostname: anyAddressFor(server.host),
      port: 0,
      connect: { hostname: server.host, port: server.port },
      message: (msg) => this.onReply(msg),
      error: () => this.close(),
    }).then((socket) => this.bound(socket), (e) => this.bindFailed(e));
  }

  send(msg: Uint8Array): void {
    this.requests++;
    this.bytesReceived += msg.length;
    this.lastActive = this.listener.deadlines.now;
    if (this.upstream) this.upstream.send(msg);
    else this.waiting.push(msg);
  }

  private bound(socket: UdpSocket): void {
    if (this.closed) { socket.close(); return; }
    this.upstream = socket;
    for (const msg of this.waiting) socket.send(msg);
    this.waiting = [];
  }

  private bindFailed(e: Error): void {
    if (this.closed) return;
    this.listener.stats.errors.upstream_failed++;
    console.error(`fulcrum: ${this.listener.config.name}: upstream_failed from ${formatHostPort({ host: this.client.address, port: this.client.port })}: ${this.server.label}: ${e.message}`);
    this.close();
  }

  private onReply(msg: Uint8Array): void {
    if (this.closed) return;
    this.replies++;
    this.bytesSent += msg.length;
    this.lastActive = this.listener.deadlines.now;
    this.listener.reply(msg, this.client);
    const expected = this.listener.config.responses;
    if (expected > 0 && this.replies >= expected * this.requests) this.close();
  }

  private arm(): void {
    this.deadline = this.lastActive + this.listener.config.idleTimeoutMs;
  }

  expire(): void {
    if (this.closed) return;
    if (Date.now() < this.lastActive + this.listener.config.idleTimeoutMs) { this.arm(); return; }
    // A session that got every reply it expected ends early; one that did not was a timeout.
    if (this.listener.config.responses > 0) this.listener.stats.errors.idle_timeout++;
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.listener.accessLog?.l4({
      clientAddress: this.client.address, protocol: "UDP", status: 200, bytesSent: this.bytesSent, bytesReceived: this.bytesReceived,
      upstream: this.server, connectMs: -1, startedAt: this.started, retries: 0, route: null, pool: this.pool.name,
    });
    this.listener.deadlines.unwatch(this);
    this.pool.release(this.server);
    this.upstream?.close();
    this.waiting = [];
    this.listener.ended(this);
  }
}

export class UdpProxyListener {
  private readonly sessions = new Map<string, UdpSession>();
  private socket: UdpSocket | null = null;
  /** A successor took the socket over: stopping must not close it. */
  private handedOver = false;
  /** Where the socket's datagrams go; shared along reloads (the socket stays). */
  private receiver: { current: UdpProxyListener } = { current: this };
  /** Opened once the listener serves; the sink of its path is shared (src/log/sink.ts). */
  accessLog: AccessLog | null = null;

  constructor(
    readonly config: L4ListenerConfig,
    private readonly pools: ReadonlyMap<string, Pool<L4PoolConfig>>,
    readonly stats: L4Stats,
    readonly deadlines: DeadlineSweep,
    private readonly access: AccessList | null = null,
  ) {}

  /** Binds, or takes over `previous`'s socket on the same address (a reload: datagrams from
   * now on come here; the old sessions reply through it until they end); returns the port. */
  start(previous?: UdpProxyListener): Promise<number> {
    return AccessLog.openFor(this.config.accessLog, this.config.name, (log) => {
      this.accessLog = log;
      return this.listen(previous);
    });
  }

  private async listen(previous?: UdpProxyListener): Promise<number> {
    if (previous?.socket && !previous.handedOver) {
      previous.handedOver = true;
      this.socket = previous.socket;
      this.receiver = previous.receiver;
      this.receiver.current = this;
      return this.socket.port;
    }
    const receiver = this.receiver;
    this.socket = await runtime.bindUdp({
      hostname: this.config.bind.host,
      port: this.config.bind.port,
      message: (msg, port, address) => receiver.current.onDatagram(msg, port, address),
    });
    return this.socket.port;
  }

  private onDatagram(msg: Uint8Array, port: number, address: string): void {
    const key = `${address}|${port}`;
    let session = this.sessions.get(key);
    if (!session) {
      // Refused clients never get a session: each datagram of theirs is dropped and counted.
      if (this.access && !this.access.permits(address)) { this.stats.errors.denied++; return; }
      if (this.sessions.size >= this.config.maxConnections) { this.stats.errors.too_many_connections++; return; }
      const pool = this.pools.get(this.config.pool!);
      const server = pool?.pick({ key: null, client: address }) ?? null;
      if (!pool || !server) {
        this.stats.errors.no_server++;
        console.error(`fulcrum: ${this.config.name}: no_server from ${formatHostPort({ host: address, port })}`);
        return;
      }
      this.stats.sessions++;
      session = new UdpSession(this, key, { address, port }, pool, server);
      this.sessions.set(key, session);
    }
    session.send(msg);
  }

  /** A server's reply, sent to the client from the socket it wrote to. */
  reply(msg: Uint8Array, client: { address: string; port: number }): void {
    this.socket?.send(msg, client.port, client.address);
  }

  ended(session: UdpSession): void {
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key);
  }

  get connections(): number {
    return this.sessions.size;
  }

  /** A reload or a stop: the sessions end; the socket closes unless a successor took it. */
  retire(_timeoutMs: number): Promise<void> {
    return this.stop();
  }

  async stop(): Promise<void> {
    for (const s of [...this.sessions.values()]) s.close();
    const socket = this.socket;
    this.socket = null;
    if (socket && !this.handedOver) socket.close();
    await this.accessLog?.close();
  }
}
