// One proxied TCP connection: preread (a PROXY header in, a ClientHello for SNI routing), a
// server picked through the balancer (counted active there until the session ends), connect with
// a timeout and a retry on another server while nothing was sent, then a splice both ways with
// back-pressure (a side whose peer has more than the socket's high-water mark unsent is paused),
// half-close passed on, and idle and session timeouts.
import { runtime } from "../runtime/index.ts";
import { type TcpHandlers, type TcpSocket, UpstreamError } from "../runtime/types.ts";
import type { Pool, Server } from "../balancer/pool.ts";
import type { BalancerPoolConfig } from "../balancer/config.ts";
import type { DeadlineSweep, Timed } from "../core/timer.ts";
import { formatHostPort } from "../config/address.ts";
import type { L4ListenerConfig, PoolL4Options } from "./config.ts";
import type { L4ErrorKind, L4Stats } from "./stats.ts";
import { encodeProxyHeader, type Endpoint, parseProxyHeader } from "./proxy-protocol.ts";
import { parseClientHello } from "./client-hello.ts";
import { defaultSniRoute, routeForSni } from "./sni-routes.ts";
import type { AccessList } from "../edge/access/acl.ts";
import type { AccessLog } from "../log/access-log.ts";
import { Held, type Refusal } from "../edge/limits/limiter.ts";

/** A pool config with the L4 keys (the balancer's pools hand it back). */
export interface L4PoolConfig extends BalancerPoolConfig {
  l4: PoolL4Options;
}

/** What a session needs of its listener. */
export interface TcpSessionHost {
  readonly config: L4ListenerConfig;
  readonly stats: L4Stats;
  readonly deadlines: DeadlineSweep;
  pool(name: string): Pool<L4PoolConfig> | undefined;
  ended(session: TcpSession): void;
  readonly accessLog: AccessLog | null;
  /** The listener's conn_limit for a client (src/edge/limits/): null to go on, else the refusal. */
  admit(client: string, held: Held): Refusal | null;
  /** allow/deny; checked here only for the client a PROXY header names (the listener checks the
   * socket's peer at accept). */
  readonly access: AccessList | null;
}

/** Client bytes held while a server is being connected; past this the client is paused. */
const HOLD_LIMIT = 256 * 1024;

const PROXY_ERRORS = { missing: "proxy_header_missing", too_long: "proxy_header_too_long", malformed: "proxy_header_malformed" } as const;
/** The status an access log line gives a session that failed, as nginx stream's $status: 400 the
 * client's fault, 502 the server's, 503 none to take it; a timeout after connecting ended a
 * session that worked (200). */
const FAILED_STATUS: Record<L4ErrorKind, number> = {
  no_route: 503, no_server: 503, queue_timeout: 503, too_many_connections: 503, shed: 503, overloaded: 503, conn_limited: 503, denied: 403,
  upstream_refused: 502, upstream_failed: 502, upstream_timeout: 502,
  proxy_header_missing: 400, proxy_header_too_long: 400, proxy_header_malformed: 400, bad_client_hello: 400,
  preread_timeout: 400, idle_timeout: 200, session_timeout: 200,
};

/** The upstream socket's handlers for one connect attempt: events of an attempt given up (timed
 * out, or the session ended) are dropped. One object with its methods, not a closure each. */
class UpstreamHandlers implements TcpHandlers {
  constructor(private readonly session: TcpSession, private readonly attempt: number) {}
  data(chunk: Uint8Array): void { if (this.session.current(this.attempt)) this.session.onUpstreamData(chunk); }
  drain(): void { if (this.session.current(this.attempt)) this.session.onUpstreamDrain(); }
  close(): void { if (this.session.current(this.attempt)) this.session.onUpstreamClose(); }
  peerEnded(): void { if (this.session.current(this.attempt)) this.session.onUpstreamEnd(); }
}

export class TcpSession implements Timed {
  deadline = 0;
  private phase: "preread" | "connecting" | "open" | "closed" = "preread";
  /** Client bytes not yet sent to a server (preread, or while connecting). */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private client: Endpoint;
  private localEndpoint: Endpoint | null = null;
  /** The ClientHello's server name, or a PROXY v2 authority: sent on in a v2 header. */
  private authority: string | null = null;
  private proxyHeaderRead: boolean;
  private pool: Pool<L4PoolConfig> | null = null;
  private server: Server | null = null;
  private upstream: TcpSocket | null = null;
  private attempt = 0;
  /** Servers a connect failed on, this session. */
  private avoid: Set<Server> | null = null;
  /** When the connect in progress times out (0: none). */
  private connectUntil = 0;
  private connectTimeoutMs = 0;
  private clientEnded = false;
  private upstreamEnded = false;
  private clientPaused = false;
  private upstreamPaused = false;
  private lastActive: number;
  private readonly started: number;
  private readonly prereadUntil: number;
  // For the access log.
  private bytesSent = 0;
  private bytesReceived = 0;
  private connectMs = -1;
  private connectStart = 0;
  private retries = 0;
  private status = 200;
  private lastServer: Server | null = null;
  private routeName: string | null = null;
  /** What the session holds of its listener's conn_limit. */
  private readonly limitHold = new Held();

  readonly handlers: TcpHandlers = {
    data: (chunk) => this.onClientData(chunk),
    drain: () => this.onClientDrain(),
    close: () => this.onClientClose(),
    peerEnded: () => this.onClientEnd(),
  };

  constructor(private readonly host: TcpSessionHost, private readonly socket: TcpSocket) {
    const c = host.config;
    this.client = { address: socket.remoteAddress, port: socket.remotePort };
    this.proxyHeaderRead = !c.acceptProxy;
    // The sweep's clock is for the data path (a field read); a session's start reads the real one.
    this.started = this.lastActive = Date.now();
    this.prereadUntil = this.started + c.prereadTimeoutMs;
    host.deadlines.watch(this);
    this.arm();
    if (this.proxyHeaderRead && c.routes.length === 0) this.choose(c.pool!);
  }

  /** The address and port the client connected to: read when first needed (a PROXY header),
   * since each is a system call on Bun. */
  private get local(): Endpoint {
    const c = this.host.config;
    return this.localEndpoint ??= { address: this.socket.localAddress || c.bind.host, port: this.socket.localPort || c.bind.port };
  }

  /** Ends the session now (the listener stops). */
  destroy(): void {
    this.finish();
    this.socket.destroy();
    this.upstream?.destroy();
  }

  expire(): void {
    if (this.phase === "closed") return;
    const now = Date.now();
    const c = this.host.config;
    let kind: L4ErrorKind | null = null;
    if (this.phase === "connecting" && this.connectUntil !== 0 && now >= this.connectUntil) {
      this.attempt++; // events of the late connection are not this session's
      this.retry("upstream_timeout", `connect timed out after ${this.connectTimeoutMs} ms`);
      return;
    }
    if (this.phase === "preread" && now >= this.prereadUntil) kind = "preread_timeout";
    else if (c.sessionTimeoutMs > 0 && now >= this.started + c.sessionTimeoutMs) kind = "session_timeout";
    else if (now >= this.lastActive + c.idleTimeoutMs) kind = "idle_timeout";
    if (kind === null) { this.arm(); return; }
    this.fail(kind, kind === "preread_timeout" ? `no complete ${this.proxyHeaderRead ? "ClientHello" : "PROXY header"} in ${c.prereadTimeoutMs} ms` : "");
  }

  private arm(): void {
    const c = this.host.config;
    let due = this.lastActive + c.idleTimeoutMs;
    if (c.sessionTimeoutMs > 0) due = Math.min(due, this.started + c.sessionTimeoutMs);
    if (this.phase === "preread") due = Math.min(due, this.prereadUntil);
    if (this.connectUntil !== 0) due = Math.min(due, this.connectUntil);
    this.deadline = due;
  }

  // ------------------------------------------------------------------------------------ client

  private onClientData(chunk: Uint8Array): void {
    this.lastActive = this.host.deadlines.now;
    this.bytesReceived += chunk.length;
    if (this.phase === "open") {
      if (!this.upstream!.write(chunk)) this.pauseClient();
      return;
    }
    if (this.phase === "closed") return;
    this.hold(this.socket.chunksOwned ? chunk : chunk.slice()); // lent chunks are copied to keep
    if (this.phase === "preread") this.preread();
    else if (this.heldBytes > HOLD_LIMIT) this.pauseClient();
  }

  private onClientDrain(): void {
    if (this.upstreamPaused) { this.upstreamPaused = false; this.upstream?.resume(); }
  }

  private onClientEnd(): void {
    this.clientEnded = true;
    if (this.phase === "preread") { this.fail(null, "client ended before its first bytes were read"); return; }
    if (this.phase !== "open") return; // passed on once connected
    this.upstream!.shutdown();
    if (this.upstreamEnded) this.finish();
  }

  private onClientClose(): void {
    if (this.phase === "closed") return;
    this.upstream?.end(); // what the client sent still reaches the server
    this.finish();
  }

  private pauseClient(): void {
    if (this.clientPaused) return;
    this.clientPaused = true;
    this.socket.pause();
  }

  private hold(chunk: Uint8Array): void {
    this.held.push(chunk);
    this.heldBytes += chunk.length;
  }

  // ----------------------------------------------------------------------------------- preread

  /** Reads the PROXY header, then the ClientHello, from what the client sent so far. */
  private preread(): void {
    if (this.held.length > 1) this.held = [concat(this.held, this.heldBytes)];
    let buf = this.held[0];
    const c = this.host.config;
    if (!this.proxyHeaderRead) {
      const r = parseProxyHeader(buf);
      if (r.status === "incomplete") return;
      if (r.status === "invalid") { this.fail(PROXY_ERRORS[r.kind], r.reason); return; }
      this.proxyHeaderRead = true;
      if (r.header.command === "proxy" && r.header.source) this.client = r.header.source;
      if (this.host.access && !this.host.access.permits(this.client.address)) { this.fail("denied", "refused by allow/deny"); return; }
      this.authority = r.header.authority;
      buf = buf.subarray(r.length);
      this.held = buf.length ? [buf] : [];
      this.heldBytes = buf.length;
    }
    if (c.routes.length === 0) { this.choose(c.pool!); return; }
    if (buf.length === 0) return;
    const hello = parseClientHello(buf);
    if (hello.status === "incomplete") return;
    if (hello.status === "invalid") {
      this.host.stats.errors.bad_client_hello++;
      const fallback = c.badClientHello === "default" ? defaultSniRoute(c.routes) : null;
      this.log("bad_client_hello", `${hello.reason}${fallback ? `; default route to pool ${fallback.pool}` : ""}`);
      if (!fallback) { this.fail(null, ""); return; }
      this.choose(fallback.pool);
      return;
    }
    const route = routeForSni(c.routes, hello.sni);
    if (!route) { this.fail("no_route", `no route for server name ${hello.sni ?? "(none)"}`); return; }
    if (hello.sni) this.authority = hello.sni;
    this.routeName = hello.sni;
    this.choose(route.pool);
  }

  // ------------------------------------------------------------------------------------ server

  private choose(poolName: string): void {
    // The client is known here (a PROXY header's source when the listener accepts one).
    const refused = this.host.admit(this.client.address, this.limitHold);
    if (refused) { this.fail("conn_limited", refused.detail); return; }
    const pool = this.host.pool(poolName);
    if (!pool) { this.fail("no_server", `pool ${poolName} is gone`); return; }
    this.pool = pool;
    this.phase = "connecting";
    this.arm(); // the idle and session deadlines go on while the session waits in a queue
    if (this.heldBytes > HOLD_LIMIT) this.pauseClient();
    this.connectNext();
  }

  /** Picks a server and connects, on another server after a failed connect (nothing was sent).
   * The connect timeout is the session's deadline in the listener's sweep, not a timer of its own. */
  private connectNext(): void {
    const pool = this.pool!;
    const server = pool.pick({ key: null, client: this.client.address }, this.avoid ?? undefined);
    if (!server) {
      const wait = this.avoid === null ? pool.waitForSlot() : null;
      if (wait) {
        void wait.then((result) => {
          if (this.phase === "closed") return;
          if (result === "slot") this.connectNext();
          else if (result === "shed") this.fail("shed", `pool ${pool.name}: its queue is full`);
          else this.fail("queue_timeout", `pool ${pool.name}: every server at max_conns for ${pool.config.queue.timeoutMs} ms`);
        });
        return;
      }
      this.fail("no_server", `pool ${pool.name}: no server can take the connection${this.avoid ? ` (${this.avoid.size} failed)` : ""}`);
      return;
    }
    this.server = this.lastServer = server;
    this.connectStart = performance.now();
    const attempt = ++this.attempt;
    this.connectTimeoutMs = pool.config.connectTimeoutMs;
    this.connectUntil = Date.now() + this.connectTimeoutMs;
    this.arm();
    // Chunks may be lent (one read buffer per connection on Deno, not one per read): the client
    // socket's write() copies what it cannot send at once.
    runtime.connectTcp({ hostname: server.host, port: server.port, handlers: new UpstreamHandlers(this, attempt), halfOpen: true, lendChunks: true })
      .then((s) => this.connected(attempt, s), (e) => this.connectFailed(attempt, e));
  }

  /** Whether events of connect attempt `attempt` are still this session's. */
  current(attempt: number): boolean {
    return attempt === this.attempt && this.phase !== "closed";
  }

  private connected(attempt: number, upstream: TcpSocket): void {
    if (!this.current(attempt)) { upstream.destroy(); return; } // timed out, or finish() released the server
    this.connectUntil = 0;
    this.connectMs = performance.now() - this.connectStart;
    this.pool!.observeTime(this.server!, this.connectMs); // least_time, by connect time
    this.opened(upstream, this.pool!, this.server!);
  }

  private connectFailed(attempt: number, e: unknown): void {
    if (!this.current(attempt)) return;
    const kind = e instanceof UpstreamError && e.kind === "refused" ? "upstream_refused" : "upstream_failed";
    this.retry(kind, (e as Error).message);
  }

  /** The connect to the current server failed or timed out: counted, then another server. */
  private retry(kind: "upstream_refused" | "upstream_failed" | "upstream_timeout", message: string): void {
    const pool = this.pool!, server = this.server!;
    this.server = null;
    this.connectUntil = 0;
    pool.release(server);
    this.host.stats.errors[kind]++;
    this.log(kind, `${server.label}: ${message}`);
    pool.reportFailure(server);
    pool.observe(server, "no_response");
    (this.avoid ??= new Set()).add(server);
    this.host.stats.retries++;
    this.retries++;
    this.connectNext();
  }

  private opened(upstream: TcpSocket, pool: Pool<L4PoolConfig>, server: Server): void {
    this.upstream = upstream;
    this.phase = "open";
    pool.reportSuccess(server);
    const version = pool.config.l4.sendProxy;
    if (version) upstream.write(encodeProxyHeader(version, this.client, this.local, this.authority));
    let ok = true;
    for (const chunk of this.held) ok = upstream.write(chunk) && ok;
    this.held = [];
    this.heldBytes = 0;
    if (ok && this.clientPaused) { this.clientPaused = false; this.socket.resume(); }
    if (this.clientEnded) upstream.shutdown();
    if (this.upstreamPaused) upstream.pause();
  }

  // The upstream socket's events, through the attempt's UpstreamHandlers (hence not private).

  onUpstreamData(chunk: Uint8Array): void {
    this.lastActive = this.host.deadlines.now;
    this.bytesSent += chunk.length;
    if (!this.socket.write(chunk) && !this.upstreamPaused) {
      this.upstreamPaused = true;
      this.upstream?.pause(); // before open(): paused there
    }
  }

  onUpstreamDrain(): void {
    if (this.clientPaused && this.phase === "open") { this.clientPaused = false; this.socket.resume(); }
  }

  onUpstreamEnd(): void {
    this.upstreamEnded = true;
    this.socket.shutdown();
    if (this.clientEnded) this.finish();
  }

  onUpstreamClose(): void {
    this.socket.end(); // what the server sent still reaches the client
    this.finish();
  }

  // ------------------------------------------------------------------------------------- end

  /** Closes both sides now, counting `kind`. */
  private fail(kind: L4ErrorKind | null, detail: string): void {
    if (this.phase === "closed") return;
    // After failed connects, "no server" means the servers failed (nginx: 502).
    this.status = kind === null ? 400 : kind === "no_server" && this.retries > 0 ? 502 : FAILED_STATUS[kind];
    if (kind) { this.host.stats.errors[kind]++; this.log(kind, detail); }
    this.finish();
    this.socket.destroy();
    this.upstream?.destroy();
  }

  private finish(): void {
    if (this.phase === "closed") return;
    const bothEnded = this.clientEnded && this.upstreamEnded;
    this.phase = "closed";
    this.host.accessLog?.l4({
      clientAddress: this.client.address, protocol: "TCP", status: this.status, bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived, upstream: this.lastServer, connectMs: this.connectMs, startedAt: this.started,
      retries: this.retries, route: this.routeName, pool: this.pool?.name ?? null,
    });
    this.limitHold.release();
    this.host.deadlines.unwatch(this);
    if (this.server && this.pool) this.pool.release(this.server);
    this.server = null;
    if (bothEnded) { this.socket.end(); this.upstream?.end(); }
    this.host.ended(this);
  }

  private log(kind: string, detail: string): void {
    const from = formatHostPort({ host: this.client.address, port: this.client.port });
    console.error(`fulcrum: ${this.host.config.name}: ${kind} from ${from}${detail ? `: ${detail}` : ""}`);
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
