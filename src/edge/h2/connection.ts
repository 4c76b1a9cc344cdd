// One HTTP/2 client connection (RFC 9113): reads frames, keeps the streams' states, decodes
// header blocks, runs flow control both ways, and defends itself against the known floods, each
// bounded, counted and ended with GOAWAY. Every request goes through an H2Stream into the same
// Exchange, routes and pools as HTTP/1.1. Priorities are read for their form and ignored.
import type { OverloadGuard } from "../../core/overload.ts";
import type { TcpHandlers, TcpSocket } from "../../runtime/types.ts";
import type { Timed, DeadlineSweep } from "../../core/timer.ts";
import type { EdgeStats, RouteStats } from "../stats.ts";
import type { HttpPool } from "../http-pool.ts";
import type { RouteConfig } from "../config.ts";
import type { ListenerLimits } from "../options.ts";
import type { RequestFacts } from "../routes.ts";
import { parseRequestHead, type RequestHead } from "../../http1/request-head.ts";
import { HeadError, indexFor } from "../../http1/head.ts";
import { latin1Bytes } from "../../http1/bytes.ts";
import { Exchange } from "../http1/exchange.ts";
import { ForwardedHostLine } from "../http1/heads-out.ts";
import {
  applySettings, checkFrame, COMPRESSION_ERROR, DEFAULT_WINDOW, defaultSettings, encodeData, encodeGoaway,
  encodeHeaders, encodePing, encodeRstStream, encodeSettings, encodeWindowUpdate, ENHANCE_YOUR_CALM, ERROR_NAMES,
  F_ACK, F_END_HEADERS, F_END_STREAM, FLOW_CONTROL_ERROR, type Frame, framedContent, FrameReader, H2Error, MAX_WINDOW,
  MIN_FRAME_SIZE, NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, S_INITIAL_WINDOW_SIZE, S_MAX_CONCURRENT_STREAMS,
  S_MAX_HEADER_LIST_SIZE, STREAM_CLOSED, T_CONTINUATION, T_DATA, T_GOAWAY, T_HEADERS, T_PING, T_PRIORITY, T_RST_STREAM,
  T_SETTINGS, T_WINDOW_UPDATE, u32,
} from "../../http2/frame.ts";
import { Decoder, Encoder, HpackError } from "../../http2/hpack.ts";
import { http1Request, MalformedRequest } from "./request.ts";
import { H2Stream, type StreamHost } from "./stream.ts";
import { H2Proxy } from "./proxy.ts";
import type { H2UpstreamPool } from "./upstream.ts";
import { Held, type Refusal, retryAfter } from "../limits/limiter.ts";
import type { HeaderLookup } from "../../http1/head.ts";
import { Budget } from "./budget.ts";
import type { H2Defence } from "./stats.ts";
import type { AccessLog } from "../../log/access-log.ts";
import { errorBody } from "../errors.ts";
import { type Admission, LocalExchange } from "../local-answer.ts";
import type { ExchangeClient } from "../http1/exchange.ts";

/** What an HTTP/2 connection needs of the listener that accepted it (SocketListener). */
export interface H2Host {
  readonly proto: "http" | "https";
  readonly limits: ListenerLimits;
  readonly deadlines: DeadlineSweep;
  readonly stats: EdgeStats;
  readonly pools: ReadonlyMap<string, HttpPool>;
  match(f: RequestFacts): RouteConfig | null;
  readonly routeStats: ReadonlyMap<RouteConfig, RouteStats>;
  admit(client: ExchangeClient, req: RequestHead, route: RouteConfig): Admission;
  requestId(req: RequestHead): string | null;
  /** Per-client limits (src/edge/limits/): null to go on, else the refusal. */
  admitLimits(route: RouteConfig, client: string, headers: HeaderLookup, held: Held): Refusal | null;
  h2Closed(conn: H2Connection): void;
  /** HTTP/2 connections to the servers of `protocol: h2` pools. */
  readonly h2Upstreams: H2UpstreamPool;
  readonly overload: OverloadGuard | null;
  readonly accessLog: AccessLog | null;
}

/** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS), as nginx's default. */
export const MAX_STREAMS = 128;
/** What we let a client send per stream before a WINDOW_UPDATE, and on the whole connection. */
const STREAM_WINDOW = 256 * 1024;
const CONN_WINDOW = 1024 * 1024;
/** CONTINUATION frames one header block may take (RFC 9113 §10.5.1: a block can be made of
 * endless empty ones). */
const MAX_CONTINUATIONS = 64;
/** A header list this many times over the limit is an HPACK bomb, not a big request. */
const BOMB_FACTOR = 4;
/** How long shutdown waits for the streams in flight after GOAWAY. */
export const GOAWAY_GRACE_MS = 5000;

const NO_BODY = new Uint8Array(0);
const CRLF = latin1Bytes("\r\n");
const LAST_CHUNK = latin1Bytes("0\r\n\r\n");

export class H2Connection implements TcpHandlers, Timed, StreamHost {
  deadline = 0;
  readonly address: string;
  readonly realIpLine: Uint8Array;
  readonly xffLine: Uint8Array;
  private readonly reader: FrameReader;
  private readonly peer = defaultSettings();
  private readonly decoder: Decoder;
  private readonly encoder = new Encoder();
  private readonly streams = new Map<number, H2Stream>();
  private lastStream = 0;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow = DEFAULT_WINDOW;
  private connUngranted = 0;
  /** Streams with response bytes waiting for a window or the socket. */
  private readonly waiting = new Set<H2Stream>();
  private tcpBlocked = false;
  private closed = false;
  /** GOAWAY sent: no new streams; the connection ends when the last one does. */
  private goingAway = false;
  private readonly index: Int32Array;
  readonly responseIndex = indexFor(256);
  // A header block in progress (HEADERS without END_HEADERS, then CONTINUATION).
  private blockStream = 0;
  private blockEndStream = false;
  private blockParts: Uint8Array[] = [];
  private blockBytes = 0;
  private blockFrames = 0;
  private readonly budgets: Record<"reset" | "settings" | "ping" | "empty" | "refused" | "window", Budget>;
  private allClosed: (() => void) | null = null;

  get accessLog(): AccessLog | null { return this.host.accessLog; }

  constructor(readonly socket: TcpSocket, private readonly host: H2Host) {
    this.address = socket.remoteAddress;
    this.realIpLine = latin1Bytes(`X-Real-IP: ${this.address}\r\n`);
    this.xffLine = latin1Bytes(`X-Forwarded-For: ${this.address}\r\n`);
    this.index = indexFor(host.limits.maxHeaderCount);
    this.decoder = new Decoder(4096);
    this.reader = new FrameReader(MIN_FRAME_SIZE, true, (f) => this.frame(f));
    const now = host.deadlines.now;
    this.budgets = {
      reset: new Budget(MAX_STREAMS * 2, MAX_STREAMS / 2, now),
      settings: new Budget(32, 4, now),
      ping: new Budget(32, 4, now),
      empty: new Budget(64, 16, now),
      refused: new Budget(32, 8, now),
      window: new Budget(256, 64, now),
    };
    host.stats.h2.connections++;
    // Our SETTINGS, then the connection window raised to CONN_WINDOW.
    this.socket.write(encodeSettings([[S_MAX_CONCURRENT_STREAMS, MAX_STREAMS], [S_INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [S_MAX_HEADER_LIST_SIZE, host.limits.maxHeaderBytes]]));
    this.socket.write(encodeWindowUpdate(0, CONN_WINDOW - DEFAULT_WINDOW));
    this.connRecvWindow = CONN_WINDOW;
    host.deadlines.watch(this);
    this.armIdle();
  }

  get proto(): "http" | "https" { return this.host.proto; }
  get stats(): EdgeStats { return this.host.stats; }
  get deadlines(): DeadlineSweep { return this.host.deadlines; }

  private readonly hostLine = new ForwardedHostLine();

  forwardedHostLine(host: string): Uint8Array {
    return this.hostLine.for(host);
  }

  // -------------------------------------------------------------------------- socket events

  data(chunk: Uint8Array): void {
    if (this.closed || this.closedForInput) return;
    try {
      this.framesRead = 0;
      this.reader.push(chunk);
      // Only request traffic holds the connection open: PINGs and SETTINGS alone do not defer
      // the idle close (a client cannot keep an idle connection forever).
      if (this.framesRead > 0 && (this.streams.size > 0 || this.blockStream !== 0)) this.armIdle();
    } catch (e) {
      if (!(e instanceof H2Error)) throw e;
      this.fail(e);
    }
  }

  drain(): void {
    this.tcpBlocked = false;
    for (const s of [...this.waiting]) { this.flush(s); if (this.tcpBlocked) break; }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.gone();
    this.streams.clear();
    this.waiting.clear();
    this.host.deadlines.unwatch(this);
    this.host.h2Closed(this);
    this.allClosed?.();
  }

  /** Idle (no streams): GOAWAY and close. Otherwise the client stalled for body_timeout with
   * requests whose bodies (or a header block) it has not finished: those get 408, as an
   * HTTP/1.1 request whose body stalls. */
  expire(): void {
    if (this.closed) return;
    if (this.streams.size === 0 || this.blockStream !== 0) {
      this.goAway(NO_ERROR, this.streams.size === 0 ? "idle" : "header block timed out");
      this.endSocket();
      return;
    }
    for (const s of [...this.streams.values()]) {
      if (s.remoteEnded) continue;
      this.host.stats.errors.request_timeout++;
      s.exchange?.clientGone();
      s.exchange = null;
      this.answerEarly(s, 408, "request_timeout", "the request body stalled");
    }
    this.armIdle();
  }

  /** Shutdown: GOAWAY(NO_ERROR) now, the connection ends when its streams do (at most graceMs). */
  shutdown(graceMs = GOAWAY_GRACE_MS): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.goAway(NO_ERROR, "shutting down");
    if (this.streams.size === 0) this.endSocket();
    return new Promise<void>((resolve) => {
      if (this.closed) { resolve(); return; }
      const timer = setTimeout(() => { this.socket.destroy(); resolve(); }, graceMs);
      this.allClosed = () => { clearTimeout(timer); resolve(); };
    });
  }

  /** The next deadline: idle_timeout without streams, else body_timeout from the last frame
   * while a request is still arriving (a header block or a body), else none (the exchanges keep
   * their own upstream deadlines). */
  private armIdle(): void {
    const limits = this.host.limits, now = this.host.deadlines.now;
    if (this.streams.size === 0) { this.deadline = now + (this.blockStream !== 0 ? limits.headerTimeoutMs : limits.idleTimeoutMs); return; }
    let arriving = this.blockStream !== 0;
    if (!arriving) for (const st of this.streams.values()) if (!st.remoteEnded) { arriving = true; break; }
    this.deadline = arriving ? now + limits.bodyTimeoutMs : 0;
  }

  // -------------------------------------------------------------------------- frames

  private frame(f: Frame): void {
    if (this.closed) { this.reader.stop(); return; }
    this.framesRead++;
    if (this.blockStream !== 0 && (f.type !== T_CONTINUATION || f.stream !== this.blockStream)) {
      throw new H2Error(PROTOCOL_ERROR, `${f.type === T_CONTINUATION ? "CONTINUATION on another stream" : "a frame"} inside a header block`);
    }
    try {
      checkFrame(f);
    } catch (e) {
      if (e instanceof H2Error && e.stream !== 0) { this.resetStream(e.stream, e.code, e.reason); return; }
      throw e;
    }
    switch (f.type) {
      case T_DATA: this.onData(f); return;
      case T_HEADERS: this.onHeaders(f); return;
      case T_CONTINUATION: this.onContinuation(f); return;
      case T_PRIORITY: return; // deprecated (RFC 9113 §5.3.2): its form is checked, its advice ignored
      case T_RST_STREAM: this.onReset(f); return;
      case T_SETTINGS: this.onSettings(f); return;
      case T_PING:
        if (f.flags & F_ACK) return;
        this.spend("ping", "ping_flood");
        this.write(encodePing(f.payload, true));
        return;
      case T_GOAWAY:
        // The client is leaving: finish what it asked for, open nothing new.
        this.goingAway = true;
        if (this.streams.size === 0) this.endSocket();
        return;
      case T_WINDOW_UPDATE: this.onWindowUpdate(f); return;
    }
    // Unknown frame types are ignored (RFC 9113 §4.1); they are cheap, but still a flood.
    if (f.payload.length === 0) this.spend("empty", "empty_frame_flood");
  }

  /** Takes a token from a flood budget; an empty one ends the connection. */
  private spend(budget: keyof H2Connection["budgets"], defence: H2Defence): void {
    if (this.budgets[budget].take(this.host.deadlines.now)) return;
    this.host.stats.h2.defences[defence]++;
    throw new H2Error(ENHANCE_YOUR_CALM, defence.replace(/_/g, " "));
  }

  private onSettings(f: Frame): void {
    if (f.flags & F_ACK) return;
    this.spend("settings", "settings_flood");
    const delta = applySettings(this.peer, f.payload);
    this.encoder.setPeerTableSize(this.peer.headerTableSize);
    if (delta !== 0) {
      // A new INITIAL_WINDOW_SIZE moves every stream's window by the difference (§6.9.2).
      for (const s of this.streams.values()) {
        s.sendWindow += delta;
        if (s.sendWindow > MAX_WINDOW) throw new H2Error(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window");
      }
    }
    this.write(encodeSettings([], true));
    if (delta > 0) for (const s of [...this.waiting]) this.flush(s);
  }

  private onWindowUpdate(f: Frame): void {
    const inc = u32(f.payload, 0) & MAX_WINDOW;
    if (inc < 1024) this.spend("window", "window_update_flood");
    if (f.stream === 0) {
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) {
        this.host.stats.h2.defences.flow_control++;
        throw new H2Error(FLOW_CONTROL_ERROR, "connection window above 2^31 - 1");
      }
      for (const s of [...this.waiting]) { this.flush(s); if (this.connSendWindow <= 0 || this.tcpBlocked) break; }
      return;
    }
    if (f.stream > this.lastStream) throw new H2Error(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
    const s = this.streams.get(f.stream);
    if (!s) return; // closed: ignored (§6.9)
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) {
      this.host.stats.h2.defences.flow_control++;
      this.resetStream(s.id, FLOW_CONTROL_ERROR, "stream window above 2^31 - 1");
      return;
    }
    this.flush(s);
  }

  private onReset(f: Frame): void {
    if (f.stream > this.lastStream) throw new H2Error(PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    const s = this.streams.get(f.stream);
    if (!s) return;
    this.host.stats.h2.resetsByClient++;
    this.forget(s);
    s.gone();
    // Rapid reset (CVE-2023-44487): each reset stream cost us a request; the budget bounds them.
    this.spend("reset", "rapid_reset");
  }

  private onHeaders(f: Frame): void {
    const content = framedContent(f);
    if (content.length === 0 && !(f.flags & F_END_HEADERS)) this.spend("empty", "empty_frame_flood");
    this.blockParts = [content.slice()];
    this.blockBytes = content.length;
    this.blockFrames = 1;
    this.blockEndStream = (f.flags & F_END_STREAM) !== 0;
    if (f.flags & F_END_HEADERS) this.headerBlock(f.stream);
    else { this.blockStream = f.stream; this.checkBlockSize(); }
  }

  private onContinuation(f: Frame): void {
    if (this.blockStream === 0) throw new H2Error(PROTOCOL_ERROR, "CONTINUATION without HEADERS");
    if (++this.blockFrames > MAX_CONTINUATIONS) {
      this.host.stats.h2.defences.continuation_flood++;
      throw new H2Error(ENHANCE_YOUR_CALM, `a header block of more than ${MAX_CONTINUATIONS} CONTINUATION frames`);
    }
    this.blockParts.push(f.payload.slice());
    this.blockBytes += f.payload.length;
    this.checkBlockSize();
    if (f.flags & F_END_HEADERS) {
      const id = this.blockStream;
      this.blockStream = 0;
      this.headerBlock(id);
    }
  }

  /** A header block's encoded size is bounded before it is decoded (CONTINUATION flood, 2024). */
  private checkBlockSize(): void {
    if (this.blockBytes <= 2 * this.host.limits.maxHeaderBytes) return;
    this.host.stats.h2.defences.header_block_too_large++;
    throw new H2Error(ENHANCE_YOUR_CALM, `header block larger than ${2 * this.host.limits.maxHeaderBytes} bytes`);
  }

  private headerBlock(id: number): void {
    const block = this.blockParts.length === 1 ? this.blockParts[0] : concat(this.blockParts, this.blockBytes);
    this.blockParts = [];
    const endStream = this.blockEndStream;
    const limit = this.host.limits.maxHeaderBytes;
    let decoded;
    try {
      decoded = this.decoder.decode(block, limit);
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      this.host.stats.h2.defences.compression++;
      throw new H2Error(COMPRESSION_ERROR, e.message);
    }
    if (decoded.listSize > BOMB_FACTOR * limit) {
      this.host.stats.h2.defences.hpack_bomb++;
      throw new H2Error(ENHANCE_YOUR_CALM, `header list of ${decoded.listSize} bytes from a ${block.length}-byte block`);
    }
    const existing = this.streams.get(id);
    if (existing) { this.trailers(existing, decoded.fields, endStream); return; }
    if (id % 2 === 0) throw new H2Error(PROTOCOL_ERROR, `stream ${id} is even (server-initiated)`);
    if (id <= this.lastStream) throw new H2Error(STREAM_CLOSED, `HEADERS on closed stream ${id}`);
    this.lastStream = id;
    if (this.goingAway) { this.write(encodeRstStream(id, REFUSED_STREAM)); return; }
    if (this.streams.size >= MAX_STREAMS) {
      this.host.stats.h2.defences.refused_streams++;
      this.write(encodeRstStream(id, REFUSED_STREAM));
      this.spend("refused", "stream_flood");
      return;
    }
    const stream = new H2Stream(id, this, this.peer.initialWindowSize, STREAM_WINDOW);
    stream.remoteEnded = endStream;
    this.streams.set(id, stream);
    this.host.stats.h2.streams++;
    this.armIdle();
    if (decoded.truncated) {
      this.host.stats.h2.defences.header_list_too_large++;
      this.host.stats.errors.header_too_large++;
      this.answerEarly(stream, 431, "header_too_large", `request header list larger than ${limit} bytes`);
      return;
    }
    this.begin(stream, decoded.fields, endStream);
  }

  /** Starts the exchange for a stream's request, as ClientConn.beginRequest does for HTTP/1.1. */
  private begin(stream: H2Stream, fields: [string, string][], endStream: boolean): void {
    const limits = this.host.limits;
    let req: RequestHead;
    let chunked: boolean;
    try {
      const h1 = http1Request(fields, endStream);
      chunked = h1.chunked;
      stream.method = h1.method;
      req = parseRequestHead(h1.head, this.index);
    } catch (e) {
      if (e instanceof MalformedRequest) {
        this.host.stats.h2.defences.protocol++;
        this.resetStream(stream.id, PROTOCOL_ERROR, `malformed request: ${e.message}`);
        return;
      }
      if (e instanceof HeadError) {
        this.host.stats.errors[e.status === 431 ? "header_too_large" : "bad_request"]++;
        this.answerEarly(stream, e.status, e.status === 431 ? "header_too_large" : "bad_request", e.reason);
        return;
      }
      throw e;
    }
    this.host.stats.requests++;
    if (limits.maxBodyBytes > 0 && req.contentLength > limits.maxBodyBytes) {
      this.host.stats.errors.body_too_large++;
      this.answerEarly(stream, 413, "body_too_large", `request body larger than ${limits.maxBodyBytes} bytes`, req);
      return;
    }
    const overloaded = this.host.overload?.admit();
    if (overloaded) {
      this.host.stats.errors.overloaded++;
      stream.rstAfterEnd = !stream.remoteEnded;
      stream.respondError(503, "overloaded", overloaded, [["retry-after", this.host.overload!.retryAfter]]);
      return;
    }
    const route = this.host.match(req);
    if (!route) {
      this.host.stats.errors.no_route++;
      this.answerEarly(stream, 404, "no_route", "no route matches this request", req);
      return;
    }
    const routeStats = stream.route = this.host.routeStats.get(route) ?? null;
    if (routeStats) routeStats.requests++;
    const refused = this.host.admitLimits(route, this.address, req, stream.held);
    if (refused) {
      this.host.stats.errors[refused.kind]++;
      this.logAnswer(req, 429, refused.detail);
      stream.rstAfterEnd = !stream.remoteEnded;
      stream.respondError(429, refused.kind, refused.detail, retryAfter(refused));
      return;
    }
    stream.bodyLeft = req.contentLength;
    const admitted = this.host.admit(stream, req, route);
    if (admitted instanceof LocalExchange) { this.startLocal(stream, admitted); return; }
    const pool = this.host.pools.get(route.pool)!;
    if (pool.config.http.protocol === "h2") {
      const proxy = new H2Proxy(stream, req, fields, route, pool, this.host.h2Upstreams, this.host.requestId(req));
      stream.exchange = proxy;
      if (!admitted) { proxy.start(endStream); return; }
      // A password check first: the body waits in the proxy meanwhile.
      void admitted.then((refusal) => {
        if (stream.done || stream.exchange !== proxy) return;
        if (!refusal) { proxy.start(stream.remoteEnded); return; }
        proxy.clientGone();
        this.startLocal(stream, new LocalExchange(stream, req, refusal));
      });
      return;
    }
    stream.chunkedUp = chunked;
    const exchange = new Exchange(stream, req, route, pool, this.host.requestId(req));
    if (admitted) exchange.hold(admitted);
    stream.exchange = exchange;
    if (endStream) exchange.clientBody(NO_BODY, true);
    exchange.start();
  }

  /** A redirect, respond or refusal: its HTTP/1.1 answer goes out as this stream's frames. */
  private startLocal(stream: H2Stream, local: LocalExchange): void {
    stream.exchange = local;
    if (stream.remoteEnded) local.clientBody(NO_BODY, true);
    local.start();
  }

  /** Fulcrum answers the stream itself; a body still coming is refused with RST_STREAM(NO_ERROR)
   * once the answer is out (RFC 9113 §8.1). */
  private answerEarly(stream: H2Stream, status: number, kind: Parameters<H2Stream["respondError"]>[1], detail: string, req: RequestHead | null = null): void {
    console.error(`fulcrum: ${status} from ${this.address} (h2 stream ${stream.id}): ${detail}`);
    this.logAnswer(req, status, detail);
    stream.rstAfterEnd = !stream.remoteEnded;
    stream.respondError(status, kind, detail);
  }

  /** The access log line of an answer Fulcrum gives itself. */
  private logAnswer(req: RequestHead | null, status: number, detail: string): void {
    this.host.accessLog?.http({
      clientAddress: this.address, method: req?.method ?? null, target: req?.target ?? "", protocol: "HTTP/2.0", headers: req,
      status, bodyBytes: errorBody(status, detail).length, upstream: null, upstreamStatus: 0, connectMs: -1, headerMs: -1,
      startedAt: Date.now(), retries: 0, route: null, pool: null,
    });
  }

  private trailers(s: H2Stream, fields: [string, string][], endStream: boolean): void {
    if (s.remoteEnded) { this.resetStream(s.id, STREAM_CLOSED, "HEADERS after the end of the stream"); return; }
    if (!endStream) { this.resetStream(s.id, PROTOCOL_ERROR, "trailers without END_STREAM"); return; }
    s.remoteEnded = true;
    if (!s.exchange) return;
    if (s.exchange.clientTrailers) { s.exchange.clientTrailers(fields); return; }
    if (s.bodyLeft >= 0 && s.bodySeen !== s.bodyLeft) {
      this.resetStream(s.id, PROTOCOL_ERROR, "body shorter than its content-length");
      return;
    }
    if (!s.chunkedUp) { s.exchange.clientBody(NO_BODY, true); return; }
    let text = "0\r\n";
    for (const [n, v] of fields) if (n.charCodeAt(0) !== 0x3a && !/[\0\r\n]/.test(v)) text += `${n}: ${v}\r\n`;
    s.exchange.clientBody(latin1Bytes(text + "\r\n"), true);
  }

  private onData(f: Frame): void {
    const len = f.payload.length;
    if (len > this.connRecvWindow) {
      this.host.stats.h2.defences.flow_control++;
      throw new H2Error(FLOW_CONTROL_ERROR, "DATA beyond the connection window");
    }
    this.connRecvWindow -= len;
    this.connUngranted += len;
    if (this.connUngranted >= CONN_WINDOW / 2) {
      this.write(encodeWindowUpdate(0, this.connUngranted));
      this.connRecvWindow += this.connUngranted;
      this.connUngranted = 0;
    }
    const endStream = (f.flags & F_END_STREAM) !== 0;
    if (len === 0 && !endStream) this.spend("empty", "empty_frame_flood");
    if (f.stream > this.lastStream) throw new H2Error(PROTOCOL_ERROR, "DATA on an idle stream");
    const s = this.streams.get(f.stream);
    if (!s) return; // a stream already closed or reset: its window was counted above
    if (s.remoteEnded) { this.resetStream(s.id, STREAM_CLOSED, "DATA after the end of the stream"); return; }
    if (len > s.recvWindow) {
      this.host.stats.h2.defences.flow_control++;
      this.resetStream(s.id, FLOW_CONTROL_ERROR, "DATA beyond the stream window");
      return;
    }
    s.recvWindow -= len;
    s.ungranted += len;
    if (endStream) s.remoteEnded = true;
    const content = framedContent(f);
    s.bodySeen += content.length;
    const limits = this.host.limits;
    if ((s.bodyLeft >= 0 && (s.bodySeen > s.bodyLeft || (endStream && s.bodySeen !== s.bodyLeft)))) {
      this.resetStream(s.id, PROTOCOL_ERROR, "body length differs from its content-length");
      return;
    }
    if (!s.exchange) return; // answered already (an error): the body is read and dropped
    if (limits.maxBodyBytes > 0 && s.bodySeen > limits.maxBodyBytes) {
      this.host.stats.errors.body_too_large++;
      s.exchange.clientGone();
      s.exchange = null;
      this.answerEarly(s, 413, "body_too_large", `request body larger than ${limits.maxBodyBytes} bytes`);
      return;
    }
    if (s.chunkedUp) {
      if (content.length > 0) s.exchange.clientBody(chunk(content), false);
      if (endStream) s.exchange?.clientBody(LAST_CHUNK, true);
    } else s.exchange.clientBody(content.slice(), endStream);
    if (!endStream) this.grant(s);
  }

  /** Gives a stream's consumed body bytes back to the client once half its window is used. */
  grant(s: H2Stream): void {
    if (s.readingPaused || s.remoteEnded || s.done || s.ungranted < STREAM_WINDOW / 2) return;
    this.write(encodeWindowUpdate(s.id, s.ungranted));
    s.recvWindow += s.ungranted;
    s.ungranted = 0;
  }

  // -------------------------------------------------------------------------- sending

  sendHeaders(s: H2Stream, fields: [string, string][], endStream: boolean): void {
    if (s.done) return;
    const block = this.encoder.encode(fields);
    this.write(encodeHeaders(s.id, block, endStream, this.peer.maxFrameSize));
    if (endStream) this.streamDone(s, null);
  }

  flush(s: H2Stream): void {
    if (s.done) return;
    while (s.queue.length > 0) {
      const room = Math.min(s.sendWindow, this.connSendWindow, this.peer.maxFrameSize);
      if (room <= 0 || this.tcpBlocked) { this.waiting.add(s); return; }
      const head = s.queue[0];
      const n = Math.min(room, head.length);
      const last = n === head.length && s.queue.length === 1 && s.ending && s.trailers.length === 0;
      this.write(encodeData(s.id, head, 0, n, last, this.peer.maxFrameSize));
      s.sendWindow -= n;
      this.connSendWindow -= n;
      s.queued -= n;
      if (n === head.length) s.queue.shift();
      else s.queue[0] = head.subarray(n);
      if (last) { this.waiting.delete(s); this.streamDone(s, null); return; }
    }
    this.waiting.delete(s);
    if (s.ending) {
      if (s.trailers.length > 0) this.write(encodeHeaders(s.id, this.encoder.encode(s.trailers), true, this.peer.maxFrameSize));
      else this.write(encodeData(s.id, NO_BODY, 0, 0, true, this.peer.maxFrameSize));
      this.streamDone(s, null);
      return;
    }
    s.drained();
  }

  streamDone(s: H2Stream, reset: number | null): void {
    if (s.done) return;
    if (reset !== null) this.write(encodeRstStream(s.id, reset));
    else if (s.rstAfterEnd) this.write(encodeRstStream(s.id, NO_ERROR));
    this.forget(s);
    s.gone(reset !== null);
  }

  private forget(s: H2Stream): void {
    this.streams.delete(s.id);
    this.waiting.delete(s);
    this.armIdle();
    if (this.goingAway && this.streams.size === 0 && !this.closed) this.endSocket();
  }

  /** A stream error (RFC 9113 §5.4.2): RST_STREAM, the connection goes on. */
  private resetStream(id: number, code: number, reason: string): void {
    console.error(`fulcrum: h2 ${this.address} stream ${id}: ${ERROR_NAMES[code]}: ${reason}`);
    const s = this.streams.get(id);
    if (s) { this.streamDone(s, code); return; }
    this.write(encodeRstStream(id, code));
  }

  /** A connection error (RFC 9113 §5.4.1): GOAWAY with the code, then the connection closes. */
  private fail(e: H2Error): void {
    if (e.stream !== 0) { this.resetStream(e.stream, e.code, e.reason); return; }
    console.error(`fulcrum: h2 ${this.address}: GOAWAY ${e.message}`);
    if (e.code === PROTOCOL_ERROR) this.host.stats.h2.defences.protocol++;
    this.goAway(e.code, e.reason);
    this.reader.stop();
    for (const s of this.streams.values()) s.gone();
    this.streams.clear();
    this.endSocket();
    this.closedForInput = true;
  }

  private closedForInput = false;
  private framesRead = 0;

  private goAway(code: number, reason: string): void {
    if (this.goingAway && code === NO_ERROR) return;
    this.goingAway = true;
    const name = ERROR_NAMES[code] ?? String(code);
    this.host.stats.h2.goaway[name] = (this.host.stats.h2.goaway[name] ?? 0) + 1;
    this.write(encodeGoaway(this.lastStream, code, reason));
  }

  /** Frames written in this turn of the event loop, sent as one socket write at its end: a
   * response's HEADERS and DATA, and the answers of many streams, share TLS records. */
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushQueued = false;

  private write(bytes: Uint8Array): void {
    if (this.closed) return;
    this.out.push(bytes);
    this.outBytes += bytes.length;
    // Past the socket's high-water mark the streams wait (flow control towards the upstream).
    if (this.outBytes + this.socket.pending >= 256 * 1024) this.tcpBlocked = true;
    if (!this.flushQueued) { this.flushQueued = true; queueMicrotask(this.flushOut); }
  }

  private readonly flushOut = (): void => {
    this.flushQueued = false;
    const parts = this.out;
    if (parts.length === 0 || this.closed) { this.out = []; this.outBytes = 0; return; }
    const bytes = parts.length === 1 ? parts[0] : concat(parts, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (!this.socket.write(bytes)) this.tcpBlocked = true;
    else if (this.tcpBlocked && this.socket.pending < 128 * 1024) this.drain();
  };

  /** Closes after what is written so far. */
  private endSocket(): void {
    this.flushOut();
    this.socket.end();
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** One chunk of a chunked body: size line, data, CRLF. */
function chunk(data: Uint8Array): Uint8Array {
  const line = latin1Bytes(`${data.length.toString(16)}\r\n`);
  const out = new Uint8Array(line.length + data.length + 2);
  out.set(line);
  out.set(data, line.length);
  out.set(CRLF, line.length + data.length);
  return out;
}
