// One client connection on the socket path: reads request heads strictly, frames request
// bodies, answers pipelined requests in order, and enforces the listener's limits and timeouts.
import type { OverloadGuard } from "../../core/overload.ts";
import type { TcpHandlers, TcpSocket } from "../../runtime/types.ts";
import type { KeyFacts } from "../http-pool.ts";
import type { ErrorKind } from "../stats.ts";
import { findHeadEnd, HeadError, indexFor } from "../../http1/head.ts";
import { parseRequestHead, type RequestHead } from "../../http1/request-head.ts";
import { ChunkedReader } from "../../http1/chunked.ts";
import { errorResponseBytes, ForwardedHostLine } from "./heads-out.ts";
import { latin1Bytes, NO_BYTES, Scratch } from "../../http1/bytes.ts";
import { Exchange } from "./exchange.ts";
import type { Timed } from "../../core/timer.ts";
import type { EdgeStats, RouteStats } from "../stats.ts";
import type { HttpPool } from "../http-pool.ts";
import type { RouteConfig } from "../config.ts";
import type { ListenerLimits } from "../options.ts";
import type { DeadlineSweep } from "../../core/timer.ts";
import type { RequestFacts } from "../routes.ts";
import type { AccessLog } from "../../log/access-log.ts";
import { errorBody } from "../errors.ts";
import { Held, type Refusal, refusalResponse } from "../limits/limiter.ts";
import type { HeaderLookup } from "../../http1/head.ts";
import { type Admission, LocalExchange } from "../local-answer.ts";

const enum State { Head, Body, Wait, Tunnel, Closed }

/** What a client connection needs of the listener that accepted it (SocketListener implements
 * it; the interface lives here so the dependency points one way). */
export interface ConnectionHost {
  readonly proto: "http" | "https";
  readonly limits: ListenerLimits;
  readonly deadlines: DeadlineSweep;
  readonly stats: EdgeStats;
  readonly pools: ReadonlyMap<string, HttpPool>;
  readonly routeStats: ReadonlyMap<RouteConfig, RouteStats>;
  match(f: RequestFacts): RouteConfig | null;
  admit(client: ClientConn, req: RequestHead, route: RouteConfig): Admission;
  requestId(req: RequestHead): string | null;
  /** Per-client limits (src/edge/limits/): null to go on, else the refusal. */
  admitLimits(route: RouteConfig, client: string, headers: HeaderLookup, held: Held): Refusal | null;
  connectionClosed(conn: ClientConn): void;
  readonly overload: OverloadGuard | null;
  readonly accessLog: AccessLog | null;
}

export class ClientConn implements TcpHandlers, Timed {
  deadline = 0;
  closeAfterResponse = false;
  /** The counters of the route the current request matched (one exchange at a time). */
  route: RouteStats | null = null;
  readonly address: string;
  private buf = new Uint8Array(2048);
  private start = 0;
  private end = 0;
  private scanned = 0;
  private state = State.Head;
  private exchange: Exchange | LocalExchange | null = null;
  private req: RequestHead | null = null;
  private bodyLeft = 0;
  private chunks: ChunkedReader | null = null;
  private readPaused = false;
  private facts: KeyFacts | null = null;
  /** What the current request holds of conn limits. */
  private readonly held = new Held();
  private timeoutKind: "idle" | "header" | "body" = "idle";
  /** The head-scan index, reused for each request on this connection. */
  private readonly index: Int32Array;
  /** Where this connection's outgoing heads are built (one request at a time). */
  readonly requestOut = new Scratch(512);
  readonly responseOut = new Scratch(1024);
  /** Lines that only depend on the client address, encoded once. */
  readonly realIpLine: Uint8Array;
  readonly xffLine: Uint8Array;

  /** The client: the socket's peer, or the one an accepted PROXY header names. */
  readonly peer: { address: string; port: number };

  constructor(readonly socket: TcpSocket, private readonly listener: ConnectionHost, peer?: { address: string; port: number }) {
    this.peer = peer ?? { address: socket.remoteAddress, port: socket.remotePort };
    this.address = this.peer.address;
    this.index = indexFor(listener.limits.maxHeaderCount);
    this.realIpLine = latin1Bytes(`X-Real-IP: ${this.address}\r\n`);
    this.xffLine = latin1Bytes(`X-Forwarded-For: ${this.address}\r\n`);
    this.deadlines.watch(this);
    this.armIdle();
  }

  get proto(): "http" | "https" { return this.listener.proto; }
  get stats(): EdgeStats { return this.listener.stats; }
  get deadlines() { return this.listener.deadlines; }
  get accessLog(): AccessLog | null { return this.listener.accessLog; }

  /** The key facts of the current request: one object per connection, refilled per request. */
  keyFacts(req: RequestHead): KeyFacts {
    const f = this.facts ??= { clientAddress: this.address, target: "", host: "", headers: req };
    f.target = req.target;
    f.host = req.host;
    f.headers = req;
    return f;
  }

  private readonly hostLine = new ForwardedHostLine();

  forwardedHostLine(host: string): Uint8Array {
    return this.hostLine.for(host);
  }

  // -------------------------------------------------------------------------- socket events

  data(chunk: Uint8Array): void {
    if (this.state === State.Tunnel) { this.exchange?.tunnelData(chunk); return; }
    if (this.state === State.Closed) return;
    this.stats.bytesIn += chunk.length;
    this.append(chunk);
    this.process();
  }

  drain(): void {
    this.exchange?.clientDrain();
  }

  close(): void {
    if (this.state === State.Tunnel) this.exchange?.finishTunnel();
    this.state = State.Closed;
    this.exchange?.clientGone();
    this.exchange = null;
    this.held.release();
    this.deadlines.unwatch(this);
    this.listener.connectionClosed(this);
  }

  expire(): void {
    if (this.state === State.Closed) return;
    if (this.timeoutKind === "idle") { this.socket.end(); return; }
    const detail = this.timeoutKind === "header" ? "the request head did not arrive in time" : "the request body stalled";
    if (this.exchange && this.timeoutKind === "body") this.exchange.clientGone();
    this.reject(408, "request_timeout", detail);
  }

  /** A reload retired this connection's generation: its next response says Connection: close. */
  retiring = false;

  /** A reload retires this connection's generation: it closes after its response in flight or
   * its next one (Connection: close), or once it has been idle for `idleMs`, so the client
   * reconnects to the new generation. True once it is closed. */
  retire(now: number, idleMs: number): boolean {
    if (this.state === State.Closed) return true;
    this.retiring = true;
    if (this.state === State.Tunnel) return false;
    // Not at once when idle: the client may be sending its next request on it right now.
    const idle = this.state === State.Head && this.exchange === null && this.end === this.start && this.timeoutKind === "idle";
    if (!idle || now - (this.deadline - this.listener.limits.idleTimeoutMs) < idleMs) return false;
    this.state = State.Closed;
    this.socket.end();
    return true;
  }

  pauseReading(): void {
    if (!this.readPaused) { this.readPaused = true; this.socket.pause(); }
  }

  resumeReading(): void {
    if (this.readPaused) { this.readPaused = false; this.socket.resume(); }
  }

  // -------------------------------------------------------------------------- requests

  private process(): void {
    const limits = this.listener.limits;
    for (;;) {
      if (this.state === State.Head) {
        if (this.start === this.end) { this.armIdle(); return; }
        if (this.timeoutKind === "idle") { this.timeoutKind = "header"; this.deadline = Date.now() + limits.headerTimeoutMs; }
        const end = findHeadEnd(this.buf, this.scanned, this.end);
        if (end < 0) {
          if (this.end - this.start > limits.maxHeaderBytes) this.reject(431, "header_too_large", `request head larger than ${limits.maxHeaderBytes} bytes`);
          else this.scanned = Math.max(this.start, this.end - 3);
          return;
        }
        if (end - this.start > limits.maxHeaderBytes) {
          this.reject(431, "header_too_large", `request head larger than ${limits.maxHeaderBytes} bytes`);
          return;
        }
        let req: RequestHead;
        try {
          // A view, not a copy: append() leaves these bytes in place while the request lives.
          req = parseRequestHead(this.buf.subarray(this.start, end), this.index);
        } catch (e) {
          if (e instanceof HeadError) this.reject(e.status, e.status === 431 ? "header_too_large" : "bad_request", e.reason);
          else throw e;
          return;
        }
        this.start = this.scanned = end;
        if (!this.beginRequest(req)) return;
        continue;
      }
      if (this.state === State.Body) {
        if (this.start === this.end) return;
        this.deadline = Date.now() + limits.bodyTimeoutMs;
        if (!this.forwardBody()) return;
        continue;
      }
      if (this.state === State.Wait && this.end - this.start > limits.maxHeaderBytes) this.pauseReading();
      return;
    }
  }

  private beginRequest(req: RequestHead): boolean {
    const limits = this.listener.limits;
    this.req = req;
    this.closeAfterResponse = false;
    this.timeoutKind = "body";
    this.deadline = 0;
    this.stats.requests++;
    if (limits.maxBodyBytes > 0 && req.contentLength > limits.maxBodyBytes) {
      this.reject(413, "body_too_large", `request body larger than ${limits.maxBodyBytes} bytes`);
      return false;
    }
    const overloaded = this.listener.overload?.admit();
    if (overloaded) {
      this.reject(503, "overloaded", overloaded, [["Retry-After", this.listener.overload!.retryAfter]]);
      return false;
    }
    const route = this.listener.match(req);
    const hasBody = req.chunked || req.contentLength > 0;
    if (!route) {
      this.stats.errors.no_route++;
      this.stats.responses[4]++;
      if (this.accessLog !== null) this.logOwnAnswer(req, 404, "no route matches this request");
      // With a body we would have to read it to find the next request: close instead.
      this.respond(errorResponseBytes(404, "no_route", "no route matches this request", hasBody || !req.keepAlive), hasBody || !req.keepAlive);
      return !hasBody && req.keepAlive;
    }
    const stats = this.route = this.listener.routeStats.get(route) ?? null;
    if (stats) stats.requests++;
    const refused = this.listener.admitLimits(route, this.address, req, this.held);
    if (refused) {
      this.stats.errors[refused.kind]++;
      this.stats.responses[4]++;
      if (stats) stats.responses[4]++;
      if (this.accessLog !== null) this.logOwnAnswer(req, 429, refused.detail);
      const close = hasBody || !req.keepAlive;
      this.respond(refusalResponse(refused, close), close);
      return !close;
    }
    const requestId = this.listener.requestId(req);
    const admitted = this.listener.admit(this, req, route);
    const exchange = admitted instanceof LocalExchange ? admitted : new Exchange(this, req, route, this.listener.pools.get(route.pool)!, requestId);
    if (admitted instanceof Promise) (exchange as Exchange).hold(admitted);
    this.exchange = exchange;
    this.chunks = req.chunked ? new ChunkedReader({ maxTrailerBytes: limits.maxHeaderBytes, maxTrailerFields: limits.maxHeaderCount }) : null;
    this.bodyLeft = req.chunked ? 0 : Math.max(0, req.contentLength);
    this.state = hasBody ? State.Body : State.Wait;
    if (!hasBody) exchange.clientBody(NO_BYTES, true);
    exchange.start();
    // start() may already have answered (no server) and closed the connection.
    return (this.state as State) !== State.Closed;
  }

  /** Hands buffered body bytes to the exchange; false when it cannot go on now. */
  private forwardBody(): boolean {
    const exchange = this.exchange!;
    const limits = this.listener.limits;
    let n: number, last: boolean;
    if (this.chunks) {
      n = this.chunks.feed(this.buf, this.start, this.end);
      if (n < 0) {
        exchange.clientGone();
        this.reject(400, "bad_request", `malformed chunked body: ${this.chunks.error}`);
        return false;
      }
      if (limits.maxBodyBytes > 0 && this.chunks.dataBytes > limits.maxBodyBytes) {
        exchange.clientGone();
        this.reject(413, "body_too_large", `request body larger than ${limits.maxBodyBytes} bytes`);
        return false;
      }
      last = this.chunks.done;
    } else {
      n = Math.min(this.end - this.start, this.bodyLeft);
      this.bodyLeft -= n;
      last = this.bodyLeft === 0;
    }
    const piece = this.buf.slice(this.start, this.start + n);
    this.start += n;
    if (last) { this.state = State.Wait; this.deadline = 0; }
    exchange.clientBody(piece, last);
    return (this.state as State) !== State.Closed;
  }

  /** The exchange wrote a complete response. */
  exchangeDone(): void {
    this.exchange = null;
    this.held.release();
    if (this.state === State.Closed) return;
    if (this.closeAfterResponse || this.state !== State.Wait) { this.state = State.Closed; this.socket.end(); return; }
    this.state = State.Head;
    // The next head starts here: its search must not begin in the body just read (a chunked
    // body ends in CRLF CRLF too).
    this.scanned = this.start;
    this.timeoutKind = "idle";
    this.resumeReading();
    this.process();
  }

  /** The exchange ended in an error before any response byte went out. */
  exchangeError(status: number, kind: ErrorKind, detail: string, bodyUnread: boolean, extra?: [string, string][]): void {
    this.exchange = null;
    this.held.release();
    this.stats.responses[(status / 100) | 0]++;
    if (this.route) this.route.responses[(status / 100) | 0]++;
    const close = bodyUnread || !this.req!.keepAlive || this.state === State.Body;
    this.respond(errorResponseBytes(status, kind, detail, close, extra), close);
    if (!close) this.exchangeDone();
  }

  startTunnel(exchange: Exchange): void {
    this.state = State.Tunnel;
    this.deadline = 0;
    this.deadlines.unwatch(this);
    const rest = this.buf.slice(this.start, this.end);
    this.start = this.end = 0;
    if (rest.length > 0) exchange.tunnelData(rest);
  }

  // -------------------------------------------------------------------------- helpers

  /** Rejects the request on this connection with an error and closes it (never forwarded). */
  private reject(status: number, kind: ErrorKind, detail: string, extra?: [string, string][]): void {
    this.stats.errors[kind]++;
    this.stats.responses[(status / 100) | 0]++;
    // A shed request is not logged one by one: under overload that would add to it.
    if (kind !== "overloaded") console.error(`fulcrum: ${status} from ${this.address}: ${detail}`);
    // The request's head is known once its body is being read ("body"), not while a head is.
    if (this.accessLog !== null) this.logOwnAnswer(this.timeoutKind === "body" ? this.req : null, status, detail);
    this.respond(errorResponseBytes(status, kind, detail, true, extra), true);
  }

  private respond(bytes: Uint8Array, close: boolean): void {
    this.socket.write(bytes);
    if (close) {
      this.state = State.Closed;
      this.socket.end();
    }
  }

  /** The access log line of an answer Fulcrum gave itself, no exchange made (its request time
   * counts from the answer: when the head began is not kept). */
  private logOwnAnswer(req: RequestHead | null, status: number, detail: string): void {
    this.accessLog!.http({
      clientAddress: this.address, method: req?.method ?? null, target: req?.target ?? "",
      protocol: req?.minor === 0 ? "HTTP/1.0" : "HTTP/1.1", headers: req, status, bodyBytes: errorBody(status, detail).length,
      upstream: null, upstreamStatus: 0, connectMs: -1, headerMs: -1, startedAt: Date.now(), retries: 0,
      route: null, pool: null,
    });
  }

  private armIdle(): void {
    this.timeoutKind = "idle";
    this.deadline = Date.now() + this.listener.limits.idleTimeoutMs;
  }

  private append(chunk: Uint8Array): void {
    const need = this.end - this.start + chunk.length;
    if (this.end + chunk.length > this.buf.length) {
      // The current request's head is a view of this buffer (process()): while its exchange
      // runs, the bytes move to a new buffer instead of over it.
      if (need <= this.buf.length / 2 && this.exchange === null) this.buf.copyWithin(0, this.start, this.end);
      else {
        const grown = new Uint8Array(Math.max(need <= this.buf.length / 2 ? this.buf.length : this.buf.length * 2, need * 2));
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.scanned -= this.start;
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }
}
