// One request on the socket path: pick a server, send the head and body over a pooled upstream
// connection, stream the response back. While nothing has reached the client, a failed attempt
// may be retried on another server (nginx proxy_next_upstream), bounded by tries and time.
import { UpstreamError } from "../../runtime/index.ts";
import type { HttpPool as Pool } from "../http-pool.ts";
import type { Server } from "../../balancer/pool.ts";
import type { ErrorKind } from "../stats.ts";
import { findHeadEnd, HeadError } from "../../http1/head.ts";
import type { RequestHead } from "../../http1/request-head.ts";
import { parseResponseHead, type ResponseHead } from "../../http1/response-head.ts";
import { ChunkedReader } from "../../http1/chunked.ts";
import { clientResponseHead, upstreamRequestHead } from "./heads-out.ts";
import type { UpstreamConn, UpstreamUser } from "./upstream-pool.ts";
import type { Timed } from "../../core/timer.ts";
import type { TcpSocket } from "../../runtime/types.ts";
import type { DeadlineSweep } from "../../core/timer.ts";
import type { EdgeStats, RouteStats } from "../stats.ts";
import type { KeyFacts } from "../http-pool.ts";
import type { Scratch } from "../../http1/bytes.ts";
import type { UpstreamHeadContext } from "./heads-out.ts";
import type { RouteConfig } from "../config.ts";
import { type FailureKind, mayRetry } from "../retry.ts";
import { encodeProxyHeader, type Endpoint } from "../../l4/proxy-protocol.ts";
import type { AccessLog } from "../../log/access-log.ts";
import { errorBody } from "../errors.ts";
import { writeAnswer } from "../local-answer.ts";
import type { LocalAnswer } from "../route-actions.ts";

/** What an exchange needs of the client connection it answers (ClientConn implements it; the
 * interface lives here so the dependency points one way). */
export interface ExchangeClient extends UpstreamHeadContext {
  readonly socket: TcpSocket;
  /** The client address and port (a PROXY header's when the listener accepts one). */
  readonly peer: Endpoint;
  readonly deadlines: DeadlineSweep;
  readonly stats: EdgeStats;
  /** The matched route's counters, when it has any (admin metrics). */
  readonly route: RouteStats | null;
  /** Scratch for the upstream request head and the client response head. */
  readonly requestOut: Scratch;
  readonly responseOut: Scratch;
  closeAfterResponse: boolean;
  /** A reload retired the connection: the response closes it. */
  readonly retiring: boolean;
  keyFacts(req: RequestHead): KeyFacts;
  pauseReading(): void;
  resumeReading(): void;
  exchangeDone(): void;
  /** `extra`: header fields for the answer (Retry-After). */
  exchangeError(status: number, kind: ErrorKind, detail: string, bodyUnread: boolean, extra?: [string, string][]): void;
  startTunnel(exchange: Exchange): void;
  /** The listener's access log (src/log), null when it has none. */
  readonly accessLog: AccessLog | null;
  /** The protocol a log line names, when not the request head's HTTP/1.x (HTTP/2 streams). */
  readonly protocolName?: string;
}

/** Request bytes kept for a retry; a larger body streams without a copy and is not retried. */
const RETAIN_LIMIT = 64 * 1024;
const MAX_RESPONSE_HEAD = 64 * 1024;
const NONE_TRIED: ReadonlySet<Server> = new Set<Server>();
const NO_FIELDS: [string, string][] = [];
const NO_BODY: Uint8Array[] = [];
/** Largest body a held response head waits for, and the most body bytes copied behind a head so
 * both leave in one write (see startResponse); larger pieces go out as they came, uncopied. */
const COALESCE_LIMIT = 16 * 1024;
/** Below this many bytes a plain loop copies faster than making a view for `set` (JSC). */
const LOOP_COPY = 256;

/** Copies src[from, from + n) to dst at `at`. */
function copyInto(dst: Uint8Array, at: number, src: Uint8Array, from: number, n: number): void {
  if (n < LOOP_COPY) for (let i = 0; i < n; i++) dst[at + i] = src[from + i];
  else dst.set(src.subarray(from, from + n), at);
}

export class Exchange implements UpstreamUser, Timed {
  deadline = 0;
  private server: Server | null = null;
  private conn: UpstreamConn | null = null;
  private attempts = 0;
  private readonly startedAt = Date.now();
  /** When the current attempt picked its server (performance.now()): least_time's samples. */
  private attemptAt = 0;
  /** Length of the request head, built in client.requestOut (kept there for retries). */
  private headLength: number;
  /** Request body chunks kept for a retry (created with the first one). */
  private body: Uint8Array[] = NO_BODY;
  private bodyBytes = 0;
  /** Response bytes passed on to the client (counted into the server's and listener's traffic). */
  private sentBytes = 0;
  private retained = true;
  private bodyComplete = false;
  private sentToClient = false;
  private finished = false;
  private connecting = false;
  // Response state.
  private resBuf: Uint8Array | null = null;
  private res: ResponseHead | null = null;
  private bodyLeft = 0;
  private chunks: ChunkedReader | null = null;
  private tunnel = false;
  /** Servers this request failed on (made on the first failure). */
  private tried: ReadonlySet<Server> = NONE_TRIED;
  // For the access log: the last server tried, its connect time (0: a kept-alive connection),
  // the time to its response head, and the response head's length (body bytes = sent - head).
  private lastServer: Server | null = null;
  private connectMs = -1;
  private headerMs = -1;
  private headBytes = 0;

  constructor(
    private readonly client: ExchangeClient,
    readonly req: RequestHead,
    readonly route: RouteConfig,
    readonly pool: Pool,
    private readonly requestId: string | null,
  ) {
    this.headLength = upstreamRequestHead(req, client, requestId, pool.stickyCookieToDrop(), route.requestHeaders, client.requestOut);
    client.deadlines.watch(this);
  }

  /** Starts the first attempt now for a bodiless request; otherwise once the body is read
   * (up to RETAIN_LIMIT, as nginx buffers request bodies), so a malformed body never reaches a
   * server and a small one can be sent again on a retry. */
  start(): void {
    if (this.bodyComplete) this.begin();
  }

  private begun = false;
  private gate: Promise<LocalAnswer | null> | null = null;

  /** The first attempt waits for `gate` (a password check, src/edge/access/admission.ts): null
   * lets the request through; an answer (401) is written instead. */
  hold(gate: Promise<LocalAnswer | null>): void {
    this.gate = gate;
  }

  private begin(): void {
    if (this.begun || this.finished) return;
    this.begun = true;
    if (!this.gate) { void this.attempt(); return; }
    void this.gate.then((refusal) => {
      if (this.finished) return;
      if (!refusal) { this.attempt(); return; }
      this.finished = true;
      this.client.deadlines.unwatch(this);
      writeAnswer(this.client, this.req, refusal);
    });
  }

  /** Body bytes from the client, in order; last marks the end of the request body. */
  clientBody(chunk: Uint8Array, last: boolean): void {
    if (this.finished) return;
    if (chunk.length > 0) {
      if (this.retained) {
        if (this.bodyBytes + chunk.length <= RETAIN_LIMIT || !this.conn) { // not connected yet: it has to wait somewhere
          if (this.body === NO_BODY) this.body = [];
          this.body.push(chunk);
        } else { this.retained = false; this.body = NO_BODY; }
      }
      this.bodyBytes += chunk.length;
      // The chunk is the exchange's own copy, kept unchanged for retries: the socket may keep it.
      if (this.conn && !this.connecting) { if (!this.conn.socket.write(chunk, 0, chunk.length, true)) this.client.pauseReading(); }
      // No connection yet: what is read waits in `body`, so read no more than a retry keeps.
      else if (this.bodyBytes > RETAIN_LIMIT) this.client.pauseReading();
    }
    if (last) {
      this.bodyComplete = true;
      if (this.conn && !this.connecting) this.armRead();
    }
    if (!this.begun && (last || this.bodyBytes > RETAIN_LIMIT)) this.begin();
  }

  upstreamDrain(): void {
    if (this.tunnel || !this.bodyComplete) this.client.resumeReading();
  }

  /** The client can take more: let the upstream speak again. */
  clientDrain(): void {
    if (this.upstreamPaused) { this.upstreamPaused = false; this.conn?.socket.resume(); }
  }

  /** The client cannot take more now: stop reading the upstream until it drains. */
  private pauseUpstream(): void {
    if (!this.upstreamPaused && this.conn) { this.upstreamPaused = true; this.conn.socket.pause(); }
  }

  private upstreamPaused = false;
  /** Length of a response head built in client.responseOut and not yet sent (0: none). */
  private heldHead = 0;

  /** The client went away: nothing to deliver any more. */
  clientGone(): void {
    if (this.finished) return;
    this.finished = true;
    this.log(this.sentToClient && this.res ? this.res.status : 499); // nginx's "client closed request"
    this.dropConn();
    this.releaseServer();
    this.client.deadlines.unwatch(this);
  }

  expire(): void {
    if (this.finished) return;
    if (this.upstreamPaused) { this.clientTooSlow(); return; }
    if (this.sentToClient) { this.abort("upstream read timed out mid-response"); return; }
    void this.fail("timeout", "upstream timed out");
  }

  // ------------------------------------------------------------------------------ attempts

  private attempt(): void {
    this.attempts++;
    const server = this.pool.pickAvoiding(this.client.keyFacts(this.req), this.tried);
    if (!server && this.attempts === 1) {
      const wait = this.pool.waitForSlot(this.route.priority);
      if (wait) {
        this.attempts--;
        wait.then((result) => {
          if (this.finished) return;
          if (result === "slot") this.attempt();
          else if (result === "shed") {
            this.client.stats.errors.shed++;
            // Come back after about as long as a wait in this queue may last.
            const retryAfter = String(Math.max(1, Math.ceil(this.pool.config.queue.timeoutMs / 1000)));
            this.respondError(503, "shed", `pool ${this.pool.name}'s queue is full of requests at least as important`, [["Retry-After", retryAfter]]);
          } else {
            this.client.stats.errors.queue_timeout++;
            this.respondError(503, "queue_timeout", `no server of pool ${this.pool.name} freed up in time`);
          }
        });
        return;
      }
    }
    if (!server) {
      const status = this.attempts === 1 ? 503 : this.lastFailureStatus;
      const kind = this.attempts === 1 ? "no_server" : this.lastFailureKind;
      this.respondError(status, kind, this.attempts === 1 ? `no server available in pool ${this.pool.name}` : this.lastFailureDetail);
      return;
    }
    this.server = this.lastServer = server;
    this.attemptAt = performance.now();
    this.connectMs = -1;
    // A connection that began with a PROXY header speaks for one client: never shared.
    const sendProxy = this.pool.config.l4?.sendProxy ?? null;
    const idle = sendProxy ? null : this.pool.upstreams.take(server.host, server.port);
    if (idle) {
      this.connectMs = 0;
      idle.user = this;
      this.send(idle);
      return;
    }
    this.connecting = true;
    const connectStart = Date.now();
    this.pool.upstreams.connect(server.host, server.port, this, this.pool.config.connectTimeoutMs).then((conn) => {
      this.connecting = false;
      server.traffic.connectTime.observe(this.connectMs = Date.now() - connectStart);
      if (this.finished) { conn.socket.destroy(); return; }
      if (sendProxy) {
        const local = { address: this.client.socket.localAddress, port: this.client.socket.localPort };
        conn.socket.write(encodeProxyHeader(sendProxy, this.client.peer, local));
      }
      this.send(conn);
    }, (e) => {
      this.connecting = false;
      if (this.finished) return;
      const refused = e instanceof UpstreamError && e.kind === "refused";
      const timedOut = (e as Error).message === "timeout";
      void this.fail(timedOut ? "timeout" : "error", timedOut ? "upstream connect timed out" : refused ? "upstream refused the connection" : "upstream connection failed", refused ? "upstream_refused" : undefined);
    });
  }

  /** Sends the request over a connection: head, then whatever body has been read. */
  private send(conn: UpstreamConn): void {
    this.conn = conn;
    this.resBuf = null;
    this.res = null;
    // Without a Host from the client (HTTP/1.0) the head names the server: built for each one.
    if (this.req.hostHeader === "") this.headLength = upstreamRequestHead(this.req, this.client, this.requestId, this.pool.stickyCookieToDrop(), this.route.requestHeaders, this.client.requestOut, this.server);
    let ready = conn.socket.write(this.client.requestOut.bytes, 0, this.headLength);
    for (const piece of this.body) ready = conn.socket.write(piece, 0, piece.length, true) && ready;
    if (this.bodyComplete) this.armRead();
    // Reading the body may have waited for this connection (see clientBody); the upstream's
    // drain resumes it otherwise.
    else if (ready) this.client.resumeReading();
    else this.client.pauseReading();
  }

  private armRead(): void {
    this.deadline = this.client.deadlines.now + this.pool.config.http.readTimeoutMs;
  }

  private lastStatus = 0;
  private lastFailureStatus = 502;
  private lastFailureKind: ErrorKind = "upstream_failed";
  private lastFailureDetail = "upstream failed";

  /** An attempt failed before anything reached the client: retry, or answer with the error. */
  private fail(kind: FailureKind, detail: string, errorKind?: ErrorKind, status?: number): boolean {
    const server = this.server!;
    const stale = this.conn?.reused === true && kind === "error" && this.res === null && this.resBuf === null;
    this.dropConn();
    this.deadline = 0;
    this.releaseServer();
    if (!stale) {
      // A server that timed out took at least this long: least_time must not think it fast.
      if (kind === "timeout") this.pool.balance.observeTime(server, performance.now() - this.attemptAt);
      this.pool.reportFailure(server);
      this.pool.observe(server, kind === "status" ? this.lastStatus : "no_response");
    }
    this.lastFailureStatus = status ?? (kind === "timeout" ? 504 : 502);
    this.lastFailureKind = errorKind ?? (kind === "timeout" ? "upstream_timeout" : "upstream_failed");
    this.lastFailureDetail = detail;
    console.error(`fulcrum: ${server.label} ${this.lastFailureStatus} ${detail} (${this.req.method} ${this.req.target})`);
    // A kept-alive connection the server had already closed is not the server's failure: try
    // again on a fresh one, without spending a try.
    if (stale && this.retained) { this.attempts--; void this.attempt(); return true; }
    this.tried = new Set([...this.tried, server]);
    if (this.mayRetry(kind)) {
      this.client.stats.retries++;
      void this.attempt();
      return true;
    }
    if (kind === "status") return false;
    this.client.stats.errors[this.lastFailureKind]++;
    this.respondError(this.lastFailureStatus, this.lastFailureKind, detail);
    return true;
  }

  private mayRetry(kind: FailureKind): boolean {
    return mayRetry(this.pool.retry, {
      attempts: this.attempts, startedAt: this.startedAt, method: this.req.method, replayable: this.retained, answered: this.sentToClient,
    }, kind);
  }

  private respondError(status: number, kind: ErrorKind, detail: string, extra?: [string, string][]): void {
    if (this.finished) return;
    this.finished = true;
    this.client.deadlines.unwatch(this);
    if (this.client.accessLog !== null) this.log(status, errorBody(status, detail).length);
    if (kind === "no_server") this.client.stats.errors.no_server++;
    this.client.exchangeError(status, kind, detail, !this.bodyComplete, extra);
  }

  // ------------------------------------------------------------------------------ response

  upstreamData(chunk: Uint8Array): void {
    if (this.finished) return;
    // Where the runtime does not reuse its read buffers, chunks pass to the client uncopied.
    const owned = this.conn?.socket.chunksOwned === true;
    if (this.tunnel) { this.toClient(chunk, 0, chunk.length, owned); return; }
    if (this.res === null) { this.readHead(chunk, owned); return; }
    this.readBody(chunk, 0, owned);
  }

  /** Writes to the client; while it cannot take more, the upstream waits (back-pressure). */
  private toClient(data: Uint8Array, offset: number, length: number, keep: boolean): void {
    this.sentBytes += length;
    if (!this.client.socket.write(data, offset, length, keep)) this.pauseUpstream();
  }

  private readHead(chunk: Uint8Array, owned: boolean): void {
    this.armRead();
    if (this.resBuf === null) {
      // Usually the whole head arrives at once: parse it in place, copy nothing.
      const end = findHeadEnd(chunk, 0, chunk.length);
      if (end > 0) {
        if (this.tryHead(chunk, end, owned)) return;
        chunk = chunk.subarray(end); // an interim head went out; another follows
        if (chunk.length === 0) return;
      }
      this.resBuf = chunk.slice();
    } else {
      const joined = new Uint8Array(this.resBuf.length + chunk.length);
      joined.set(this.resBuf);
      joined.set(chunk, this.resBuf.length);
      this.resBuf = joined;
    }
    for (;;) {
      const buf: Uint8Array = this.resBuf!;
      const end = findHeadEnd(buf, 0, buf.length);
      if (end < 0) {
        if (buf.length > MAX_RESPONSE_HEAD) void this.fail("error", "upstream response head too large");
        return;
      }
      if (this.tryHead(buf, end, true)) return;
      // An interim response was passed on: read the next head from what is left.
      const rest = buf.slice(end);
      this.resBuf = rest.length > 0 ? rest : null;
      if (rest.length === 0) return;
    }
  }

  /** Handles the head in buf[0, end); false when it was an interim (1xx) one and another head
   * follows. */
  private tryHead(buf: Uint8Array, end: number, owned: boolean): boolean {
    let res: ResponseHead;
    try {
      res = parseResponseHead(buf, end, this.req.method, this.conn!.index);
    } catch (e) {
      void this.fail("error", `invalid response from upstream: ${e instanceof HeadError ? e.reason : e}`);
      return true;
    }
    if (res.status === 101 && this.req.upgrade) { this.startTunnel(res, buf.subarray(end)); return true; }
    if (res.status < 200) {
      // Interim (100 Continue, 103): pass it on; the final head follows.
      this.sentToClient = true;
      this.client.socket.write(buf, 0, end);
      return false;
    }
    if (this.pool.retry.statuses.has(res.status) && this.mayRetry("status")) {
      this.lastStatus = res.status;
      this.fail("status", `upstream answered ${res.status}`);
      return true;
    }
    this.startResponse(res, buf, end, owned);
    return true;
  }

  private startResponse(res: ResponseHead, buf: Uint8Array, end: number, owned: boolean): void {
    this.res = res;
    this.resBuf = null;
    const server = this.server!;
    server.traffic.responses[(res.status / 100) | 0]++;
    server.traffic.responseTime.observe(this.headerMs = Date.now() - this.startedAt);
    if (this.pool.balance.timing === "header") this.pool.balance.observeTime(server, performance.now() - this.attemptAt);
    this.client.stats.responses[(res.status / 100) | 0]++;
    if (this.client.route) this.client.route.responses[(res.status / 100) | 0]++;
    this.pool.reportSuccess(server);
    this.pool.observe(server, res.status);
    const cookie = this.pool.stickyCookieFor(server, this.client.keyFacts(this.req));
    const extra: [string, string][] = cookie.length === 0 && !this.requestId ? NO_FIELDS : [...cookie];
    if (this.requestId) extra.push(["X-Request-ID", this.requestId]);
    const closeClient = res.body === "close" || !this.req.keepAlive || this.client.retiring;
    this.client.closeAfterResponse = closeClient;
    this.sentToClient = true;
    // The head is held in client.responseOut so that the first body bytes can leave with it.
    this.heldHead = this.headBytes = clientResponseHead(res, this.route.responseHeaders, extra, closeClient, this.client.responseOut);
    if (res.body === "length") this.bodyLeft = res.contentLength;
    else if (res.body === "chunked") this.chunks = new ChunkedReader();
    if (res.body === "none" || (res.body === "length" && res.contentLength === 0)) {
      this.flushHead();
      this.complete(end === buf.length);
      return;
    }
    if (end < buf.length) { this.readBody(buf, end, owned); return; }
    // The head came alone (a server that writes head and body separately): a small body waits
    // to leave with it, one write for the client instead of two. Anything else may stream
    // (chunked, or until close): its head goes now.
    if (!(res.body === "length" && this.bodyLeft <= COALESCE_LIMIT)) this.flushHead();
  }

  /** Sends a held response head on its own. */
  private flushHead(): void {
    const n = this.heldHead;
    this.heldHead = 0;
    if (n > 0) this.toClient(this.client.responseOut.bytes, 0, n, false);
  }

  /** Body bytes in chunk[from, ...); `owned`: the chunk may be handed to the client socket. */
  private readBody(chunk: Uint8Array, from: number, owned: boolean): void {
    this.armRead();
    const res = this.res!;
    let take = chunk.length - from;
    if (res.body === "length") take = Math.min(take, this.bodyLeft);
    else if (res.body === "chunked") {
      take = this.chunks!.feed(chunk, from, chunk.length);
      if (take < 0) { this.abort(`invalid chunked body from upstream: ${this.chunks!.error}`); return; }
    }
    if (take > 0 && this.heldHead > 0 && take <= COALESCE_LIMIT) {
      // Head and first body bytes in one write: a small copy saves a system call. (A larger
      // one costs more than the call: memcpy measured ~1 GB/s on this machine's EPYC guests.)
      const out = this.client.responseOut, at = this.heldHead;
      this.heldHead = 0;
      copyInto(out.ensure(at + take), at, chunk, from, take);
      this.toClient(out.bytes, 0, at + take, false);
    } else if (take > 0) {
      this.flushHead();
      this.toClient(chunk, from, take, owned);
    }
    if (res.body === "length") {
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) this.complete(from + take === chunk.length);
    } else if (res.body === "chunked" && this.chunks!.done) this.complete(from + take === chunk.length);
  }

  upstreamClosed(): void {
    if (this.finished || this.connecting) return;
    if (this.tunnel) { this.finishTunnel(); return; }
    if (this.res?.body === "close") { this.conn = null; this.complete(false); return; }
    if (!this.sentToClient) { void this.fail("error", "upstream closed the connection before answering"); return; }
    this.abort("upstream closed mid-response");
  }

  /** The response is complete: the upstream connection goes back to the pool if it is clean. */
  private complete(clean: boolean): void {
    if (this.finished) return;
    this.flushHead();
    this.finished = true;
    this.log(this.res!.status);
    this.deadline = 0;
    this.client.deadlines.unwatch(this);
    if (this.server && this.pool.balance.timing === "last_byte") this.pool.balance.observeTime(this.server, performance.now() - this.attemptAt);
    if (this.conn) {
      if (this.upstreamPaused) this.conn.socket.resume();
      const shared = !this.pool.config.l4?.sendProxy;
      this.pool.upstreams.release(this.conn, shared && clean && this.res!.keepAlive && this.bodyComplete);
      this.conn = null;
    }
    this.releaseServer();
    this.client.exchangeDone();
  }

  /** Something broke after the client got part of the answer: both connections close. */
  private abort(reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.log(this.res?.status ?? 502);
    this.client.deadlines.unwatch(this);
    const server = this.server;
    if (server) {
      console.error(`fulcrum: ${server.label} aborted: ${reason} (${this.req.method} ${this.req.target})`);
      this.pool.reportFailure(server);
    }
    this.dropConn();
    this.releaseServer();
    this.client.socket.destroy();
  }

  /** The client took nothing for a read timeout while the upstream waited on it (nginx's
   * send_timeout): the client's fault, not the server's. */
  private clientTooSlow(): void {
    this.finished = true;
    this.log(this.res?.status ?? 0);
    this.client.deadlines.unwatch(this);
    console.error(`fulcrum: client ${this.client.address} took nothing in time; closing (${this.req.method} ${this.req.target})`);
    this.dropConn();
    this.releaseServer();
    this.client.socket.destroy();
  }

  /** Hands the request's record to the access log, if the listener has one. Called where the
   * exchange finishes, before the server is released (its byte count is still here). `bodyBytes`:
   * when Fulcrum wrote the answer itself, its body's length. */
  private log(status: number, bodyBytes?: number): void {
    const log = this.client.accessLog;
    if (log === null) return;
    const req = this.req;
    log.http({
      clientAddress: this.client.address, method: req.method, target: req.target,
      protocol: this.client.protocolName ?? (req.minor === 1 ? "HTTP/1.1" : "HTTP/1.0"), headers: req,
      status, bodyBytes: bodyBytes ?? Math.max(0, this.sentBytes - this.headBytes), upstream: this.lastServer, upstreamStatus: this.res?.status ?? this.lastStatus,
      connectMs: this.connectMs, headerMs: this.headerMs, startedAt: this.startedAt, retries: Math.max(0, this.attempts - 1),
      route: this.route.name, pool: this.pool.name,
    });
  }

  /** Closes the upstream connection without hearing about it: its close is ours, not news. */
  private dropConn(): void {
    const c = this.conn;
    this.conn = null;
    if (c) { c.user = null; c.socket.destroy(); }
  }

  private releaseServer(): void {
    const s = this.server;
    if (!s) return;
    s.traffic.bytesIn += this.headLength + this.bodyBytes;
    s.traffic.bytesOut += this.sentBytes;
    this.client.stats.bytesOut += this.sentBytes;
    this.sentBytes = 0;
    this.pool.release(s);
    this.server = null;
  }

  // ------------------------------------------------------------------------------ upgrade

  private startTunnel(res: ResponseHead, rest: Uint8Array): void {
    this.res = res;
    this.tunnel = true;
    this.sentToClient = true;
    this.deadline = 0;
    this.client.deadlines.unwatch(this);
    this.pool.reportSuccess(this.server!);
    const out = this.client.responseOut;
    this.client.socket.write(out.bytes, 0, clientResponseHead(res, this.route.responseHeaders, NO_FIELDS, false, out));
    if (rest.length > 0) this.client.socket.write(rest);
    this.client.startTunnel(this);
  }

  /** Client bytes after an upgrade go straight upstream. */
  tunnelData(chunk: Uint8Array): void {
    if (this.conn && !this.conn.socket.write(chunk, 0, chunk.length, this.client.socket.chunksOwned)) this.client.pauseReading();
  }

  /** Either side of a tunnel closed: close the other; the server's session ends. */
  finishTunnel(): void {
    if (this.finished) return;
    this.finished = true;
    this.log(101);
    this.conn?.socket.end();
    this.conn = null;
    this.releaseServer();
    this.client.socket.end();
  }
}
