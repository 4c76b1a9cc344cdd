// A tcp listener of the L4 proxy: accepts connections (half-open, so a client's FIN is passed on
// rather than closing) and gives each a TcpSession, up to max_connections.
import { runtime } from "../runtime/index.ts";
import type { TcpListener, TcpSocket } from "../runtime/types.ts";
import type { Pool } from "../balancer/pool.ts";
import type { DeadlineSweep } from "../core/timer.ts";
import type { L4ListenerConfig } from "./config.ts";
import type { L4Stats } from "./stats.ts";
import { OverloadGuard } from "../core/overload.ts";
import { type L4PoolConfig, TcpSession, type TcpSessionHost } from "./tcp-session.ts";
import { AccessLog } from "../log/access-log.ts";
import type { Held, LimitSet, Refusal } from "../edge/limits/limiter.ts";
import type { AccessList } from "../edge/access/acl.ts";
import type { SharedCount } from "../core/shared-count.ts";

const NO_HANDLERS = { data() {}, drain() {}, close() {} };

export class TcpProxyListener implements TcpSessionHost {
  private readonly sessions = new Set<TcpSession>();
  private server: TcpListener | null = null;
  /** Where the listening socket sends what it accepts; shared along reloads (the socket stays). */
  private acceptor: { current: TcpProxyListener } = { current: this };
  /** Closes new connections while the process is overloaded; null: no bounds. */
  readonly overload: OverloadGuard | null;
  /** Opened once the listener serves; the sink of its path is shared (src/log/sink.ts). */
  accessLog: AccessLog | null = null;
  /** With workers: the open connections of every worker on this port, which max_connections
   * caps (set before start); null: this process's alone. */
  sharedConnections: SharedCount | null = null;

  constructor(
    readonly config: L4ListenerConfig,
    private readonly pools: ReadonlyMap<string, Pool<L4PoolConfig>>,
    readonly stats: L4Stats,
    readonly deadlines: DeadlineSweep,
    /** The listener's conn_limit, when it has one. */
    readonly clientLimits: LimitSet | null = null,
    readonly access: AccessList | null = null,
  ) {
    this.overload = config.overload ? new OverloadGuard(config.overload) : null;
  }

  /** Listens, or takes over `previous`'s socket on the same address (a reload); returns the port.
   * The access log opens first: a file that cannot be opened stops the start. */
  async start(previous?: TcpProxyListener): Promise<number> {
    this.overload?.start();
    return AccessLog.openFor(this.config.accessLog, this.config.name, (log) => {
      this.accessLog = log;
      return this.listen(previous);
    });
  }

  private async listen(previous?: TcpProxyListener): Promise<number> {
    if (previous?.server) {
      this.server = previous.server;
      previous.server = null;
      this.acceptor = previous.acceptor;
      this.acceptor.current = this;
      return this.server.port;
    }
    const acceptor = this.acceptor;
    this.server = await runtime.listenTcp({
      hostname: this.config.bind.host,
      port: this.config.bind.port,
      halfOpen: true,
      reusePort: this.config.reusePort,
      accept: (socket: TcpSocket) => acceptor.current.accept(socket),
    });
    return this.server.port;
  }

  private accept(socket: TcpSocket) {
    if ((this.sharedConnections ? this.sharedConnections.value : this.sessions.size) >= this.config.maxConnections) {
      this.stats.errors.too_many_connections++;
      socket.destroy();
      return NO_HANDLERS;
    }
    if (this.overload?.admit()) {
      this.stats.errors.overloaded++;
      socket.destroy();
      return NO_HANDLERS;
    }
    // Behind a PROXY header the client is known only once it is read (TcpSession checks then).
    if (this.access && !this.config.acceptProxy && !this.access.permits(socket.remoteAddress)) {
      this.stats.errors.denied++;
      socket.destroy();
      return NO_HANDLERS;
    }
    this.stats.sessions++;
    const session = new TcpSession(this, socket);
    this.sessions.add(session);
    this.sharedConnections?.add(1);
    return session.handlers;
  }

  /** A reload or a stop: accept no more (unless a successor took the socket); sessions go on
   * until they end or `timeoutMs` passed, then they are cut. */
  async retire(timeoutMs: number): Promise<void> {
    this.server?.close();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.stop();
  }

  pool(name: string): Pool<L4PoolConfig> | undefined {
    return this.pools.get(name);
  }

  admit(client: string, held: Held): Refusal | null {
    return this.clientLimits ? this.clientLimits.admit(client, null, held) : null;
  }

  ended(session: TcpSession): void {
    if (this.sessions.delete(session)) this.sharedConnections?.add(-1);
  }

  get connections(): number {
    return this.sessions.size;
  }

  async stop(): Promise<void> {
    this.overload?.stop();
    await this.server?.stop();
    for (const s of [...this.sessions]) s.destroy();
    this.sharedConnections?.add(-this.sessions.size);
    this.sessions.clear();
    await this.accessLog?.close();
  }
}
