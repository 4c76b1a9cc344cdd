// A udp listener of the L4 proxy (nginx stream's udp): a session per client address and port,
// with its own socket to the server it was picked for (counted active there), replies sent back
// from the listener's socket, ended by the idle timeout or, with `responses`, once the server has
// answered every datagram that many times (DNS: 1).
import type { AccessList } from "../edge/access/acl.ts";
import dgram from "node:dgram";
import type { Pool, Server } from "../balancer/pool.ts";
import type { DeadlineSweep, Timed } from "../core/timer.ts";
import { formatHostPort } from "../config/address.ts";
import type { L4ListenerConfig } from "./config.ts";
import type { L4Stats } from "./stats.ts";
import type { L4PoolConfig } from "./tcp-session.ts";
import { AccessLog } from "../log/access-log.ts";

const familyOf = (host: string): "udp4" | "udp6" => host.includes(":") ? "udp6" : "udp4";

class UdpSession implements Timed {
  deadline = 0;
  private requests = 0;
  private replies = 0;
  private lastActive: number;
  private closed = false;
  private readonly upstream: dgram.Socket;
  private readonly started: number;
  private bytesSent = 0;
  private bytesReceived = 0;

  constructor(
    private readonly listener: UdpProxyListener,
    readonly key: string,
    private readonly client: { address: string; port: number },
    private readonly pool: Pool<L4PoolConfig>,
    private readonly server: Server,
  ) {
    this.started = this.lastActive = Date.now();
    this.upstream = dgram.createSocket(familyOf(server.host));
    this.upstream.on("message", (msg: Uint8Array) => this.onReply(msg));
    this.upstream.on("error", () => this.close());
    listener.deadlines.watch(this);
    this.arm();
  }

  send(msg: Uint8Array): void {
    this.requests++;
    this.bytesReceived += msg.length;
    this.lastActive = this.listener.deadlines.now;
    this.upstream.send(msg, this.server.port, this.server.host);
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
    try { this.upstream.close(); } catch { /* closed */ }
    this.listener.ended(this);
  }
}

export class UdpProxyListener {
  private readonly sessions = new Map<string, UdpSession>();
  private socket: dgram.Socket | null = null;
  /** A successor took the socket over: stopping must not close it. */
  private handedOver = false;
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

  private listen(previous?: UdpProxyListener): Promise<number> {
    if (previous?.socket && !previous.handedOver) {
      const socket = previous.socket;
      previous.handedOver = true;
      this.socket = socket;
      socket.removeAllListeners("message");
      socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => this.onDatagram(msg, rinfo));
      return Promise.resolve(socket.address().port);
    }
    const socket = dgram.createSocket(familyOf(this.config.bind.host));
    this.socket = socket;
    socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => this.onDatagram(msg, rinfo));
    return new Promise((resolve, reject) => {
      socket.once("error", (e: Error & { code?: string }) => reject(new Error(`${formatHostPort(this.config.bind)}: ${e.code ?? e.message}`)));
      socket.bind(this.config.bind.port, this.config.bind.host, () => resolve(socket.address().port));
    });
  }

  private onDatagram(msg: Uint8Array, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let session = this.sessions.get(key);
    if (!session) {
      // Refused clients never get a session: each datagram of theirs is dropped and counted.
      if (this.access && !this.access.permits(rinfo.address)) { this.stats.errors.denied++; return; }
      if (this.sessions.size >= this.config.maxConnections) { this.stats.errors.too_many_connections++; return; }
      const pool = this.pools.get(this.config.pool!);
      const client = { address: rinfo.address, port: rinfo.port };
      const server = pool?.pick({ key: null, client: client.address }) ?? null;
      if (!pool || !server) {
        this.stats.errors.no_server++;
        console.error(`fulcrum: ${this.config.name}: no_server from ${formatHostPort({ host: client.address, port: client.port })}`);
        return;
      }
      this.stats.sessions++;
      session = new UdpSession(this, key, client, pool, server);
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
    if (socket && !this.handedOver) await new Promise<void>((r) => socket.close(() => r()));
    await this.accessLog?.close();
  }
}
