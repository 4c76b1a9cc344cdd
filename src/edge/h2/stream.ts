// One HTTP/2 stream: its request goes through the same Exchange as an HTTP/1.1 request (this
// class is the ExchangeClient), and the HTTP/1.1 response the Exchange writes is turned back into
// HEADERS and DATA frames within the stream's and the connection's flow-control windows.
import type { TcpSocket } from "../../runtime/types.ts";
import type { ExchangeClient } from "../http1/exchange.ts";
import { Exchange } from "../http1/exchange.ts";
import type { KeyFacts } from "../http-pool.ts";
import type { ErrorKind, EdgeStats, RouteStats } from "../stats.ts";
import type { RequestHead } from "../../http1/request-head.ts";
import { parseResponseHead, type ResponseHead } from "../../http1/response-head.ts";
import { findHeadEnd, HeadError } from "../../http1/head.ts";
import { ChunkedReader } from "../../http1/chunked.ts";
import { latin1Bytes, Scratch } from "../../http1/bytes.ts";
import { errorBody } from "../errors.ts";
import { K_CONNECTION, K_KEEP_ALIVE, K_PROXY_CONNECTION, K_TRANSFER_ENCODING, K_UPGRADE } from "../../http1/head-scan.ts";
import { Held } from "../limits/limiter.ts";
import type { DeadlineSweep } from "../../core/timer.ts";
import type { AccessLog } from "../../log/access-log.ts";

/** What carries a stream's request on: an Exchange (HTTP/1.1 pools) or an H2Proxy (h2 pools). */
export interface StreamWork {
  clientBody(chunk: Uint8Array, last: boolean): void;
  clientGone(): void;
  clientDrain(): void;
  /** Request trailers (an Exchange takes them as the chunked body's end instead). */
  clientTrailers?(fields: [string, string][]): void;
}

/** What a stream needs of its connection. */
export interface StreamHost {
  readonly address: string;
  /** The client connection's own socket (for the PROXY header a pool may send). */
  readonly socket: TcpSocket;
  readonly proto: "http" | "https";
  readonly realIpLine: Uint8Array;
  readonly xffLine: Uint8Array;
  readonly deadlines: DeadlineSweep;
  readonly stats: EdgeStats;
  forwardedHostLine(host: string): Uint8Array;
  /** The head-scan index for response heads: one per connection, since each head is read and
   * turned into fields in one go. */
  readonly responseIndex: Int32Array;
  /** Sends a response head (fields lowercase, :status first). */
  sendHeaders(stream: H2Stream, fields: [string, string][], endStream: boolean): void;
  /** Sends what it can of the stream's queued body now (windows permitting). */
  flush(stream: H2Stream): void;
  /** The stream's answer ended (or was reset): forget it. */
  streamDone(stream: H2Stream, reset: number | null): void;
  /** Grants the client more room to send this stream's body. */
  grant(stream: H2Stream): void;
  readonly accessLog: AccessLog | null;
}

// Response fields HTTP/2 forbids (RFC 9113 §8.2.2).
const HOP_IDS = new Set([K_CONNECTION, K_KEEP_ALIVE, K_PROXY_CONNECTION, K_TRANSFER_ENCODING, K_UPGRADE]);
/** The same, by name, for the trailer fields of a chunked response (they become HTTP/2 trailers). */
const HOP_NAMES = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
/** Queued response bytes past which the Exchange is told to pause its upstream. */
const QUEUE_HIGH = 64 * 1024;
const NO_TRAILERS: [string, string][] = [];

export class H2Stream implements ExchangeClient {
  exchange: StreamWork | null = null;
  closeAfterResponse = false;
  // HTTP/2 connections retire with a GOAWAY (connection.ts), not per response.
  readonly retiring = false;
  /** The matched route's counters (set by the connection when it routes the request). */
  route: RouteStats | null = null;
  readonly protocolName = "HTTP/2.0";

  /** The client, as a `send_proxy` pool names it upstream. */
  get peer(): { address: string; port: number } {
    return { address: this.host.socket.remoteAddress, port: this.host.socket.remotePort };
  }
  readonly requestOut = new Scratch(512);
  readonly responseOut = new Scratch(512);
  readonly socket: TcpSocket;
  /** Send window (ours towards the client) and receive window left for the client's body. */
  sendWindow: number;
  recvWindow: number;
  /** Body bytes read but not yet granted back (WINDOW_UPDATE) to the client. */
  ungranted = 0;
  readingPaused = false;
  /** Request side: the client sent END_STREAM. */
  remoteEnded = false;
  /** Response side: END_STREAM went out (or is queued behind the body). */
  localEnded = false;
  /** Queued response body, in order; `ending`: END_STREAM goes with the last of it. */
  readonly queue: Uint8Array[] = [];
  queued = 0;
  ending = false;
  /** Waiting for queued bytes to leave before telling the exchange to go on. */
  blocked = false;
  done = false;
  /** Answered before the request body ended: RST_STREAM(NO_ERROR) follows the answer. */
  rstAfterEnd = false;
  /** Request body framing upstream. */
  bodyLeft = -1;
  chunkedUp = false;
  bodySeen = 0;
  method = "GET";
  private facts: KeyFacts | null = null;
  /** What the stream's request holds of conn limits (src/edge/limits/). */
  readonly held = new Held();
  private response = new ResponseReader(this);

  constructor(readonly id: number, readonly host: StreamHost, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    this.socket = new StreamSocket(this);
  }

  get address(): string { return this.host.address; }
  get proto(): "http" | "https" { return this.host.proto; }
  get realIpLine(): Uint8Array { return this.host.realIpLine; }
  get xffLine(): Uint8Array { return this.host.xffLine; }
  get deadlines(): DeadlineSweep { return this.host.deadlines; }
  get stats(): EdgeStats { return this.host.stats; }
  get accessLog(): AccessLog | null { return this.host.accessLog; }
  forwardedHostLine(host: string): Uint8Array { return this.host.forwardedHostLine(host); }

  keyFacts(req: RequestHead): KeyFacts {
    const f = this.facts ??= { clientAddress: this.host.address, target: "", host: "", headers: req };
    f.target = req.target;
    f.host = req.host;
    f.headers = req;
    return f;
  }

  pauseReading(): void { this.readingPaused = true; }

  resumeReading(): void {
    if (!this.readingPaused) return;
    this.readingPaused = false;
    this.host.grant(this);
  }

  exchangeDone(): void {
    this.exchange = null;
    this.finishBody();
  }

  exchangeError(status: number, kind: ErrorKind, detail: string, _bodyUnread: boolean, extra?: [string, string][]): void {
    this.exchange = null;
    this.respondError(status, kind, detail, extra);
  }

  startTunnel(_exchange: Exchange): void {
    // Never asked: an HTTP/2 request carries no Upgrade (request.ts refuses it).
    this.reset();
  }

  /** A response head from an HTTP/2 server (H2Proxy). */
  sendHead(fields: [string, string][], endStream: boolean): void {
    if (this.localEnded || this.done) return;
    if (Number(fields[0]?.[1]) >= 200) this.response.started = true;
    if (endStream) this.localEnded = true;
    this.host.sendHeaders(this, fields, endStream);
  }

  /** A complete answer of Fulcrum's own (no route, limits, upstream failures). */
  respondError(status: number, kind: ErrorKind, detail: string, extra: [string, string][] = []): void {
    if (this.localEnded || this.done) return;
    if (this.response.started) { this.reset(); return; }
    const body = latin1Bytes(errorBody(status, detail));
    this.response.started = true;
    this.countResponse(status);
    this.host.sendHeaders(this, [[":status", String(status)], ["content-type", "text/plain; charset=utf-8"],
      ["x-fulcrum-error", kind], ["content-length", String(body.length)], ...extra.map(([n, v]): [string, string] => [n.toLowerCase(), v])], false);
    this.queueBody(body, true);
  }

  /** Counts a final answer on the listener and the route (an Exchange counts the answers it
   * relays from HTTP/1.1 servers itself). */
  countResponse(status: number): void {
    this.host.stats.responses[(status / 100) | 0]++;
    if (this.route) this.route.responses[(status / 100) | 0]++;
  }

  // ----------------------------------------------------------------- response body, to frames

  /** Queues response body bytes; last: they end the body. `bytes` may be a view of a buffer its
   * writer reuses: what cannot leave at once is copied. */
  queueBody(bytes: Uint8Array, last = false): boolean {
    if (this.localEnded || this.done) return false;
    if (bytes.length > 0) { this.queue.push(bytes); this.queued += bytes.length; }
    if (last) { this.localEnded = true; this.ending = true; }
    this.host.flush(this);
    const tail = this.queue.length - 1;
    if (tail >= 0 && this.queue[tail].buffer === bytes.buffer) this.queue[tail] = this.queue[tail].slice();
    if (this.queued > QUEUE_HIGH) { this.blocked = true; return false; }
    return true;
  }

  finishBody(trailers: [string, string][] = NO_TRAILERS): void {
    if (this.localEnded || this.done) return;
    if (!this.response.started) { this.reset(); return; } // an exchange that ended with no answer
    this.localEnded = true;
    this.ending = true;
    this.trailers = trailers;
    this.host.flush(this);
  }

  trailers: [string, string][] = NO_TRAILERS;

  /** The queue drained below its mark: the exchange may read its upstream again. */
  drained(): void {
    if (this.blocked && this.queued <= QUEUE_HIGH / 2) {
      this.blocked = false;
      this.exchange?.clientDrain();
    }
  }

  /** Ends the stream with RST_STREAM(INTERNAL_ERROR): the answer broke midway. */
  reset(code = 2): void {
    if (this.done) return;
    this.exchange?.clientGone();
    this.exchange = null;
    this.host.streamDone(this, code);
  }

  /** The stream is over: answered in full (the exchange finishes on its own and its upstream
   * connection goes back to the pool), or reset or its connection gone (cancel: the exchange
   * stops too). */
  gone(cancel = true): void {
    this.done = true;
    this.held.release();
    if (cancel) { this.exchange?.clientGone(); this.exchange = null; }
    this.queue.length = 0;
    this.queued = 0;
  }

  /** The HTTP/1.1 bytes the exchange writes (see StreamSocket). */
  responseBytes(data: Uint8Array): boolean {
    return this.response.push(data);
  }
}

/** The socket the Exchange writes its client response to: it parses that HTTP/1.1 response. */
class StreamSocket implements TcpSocket {
  constructor(private readonly stream: H2Stream) {}
  get remoteAddress(): string { return this.stream.host.address; }
  readonly remotePort = 0;
  get localAddress(): string { return this.stream.host.socket.localAddress; }
  get localPort(): number { return this.stream.host.socket.localPort; }
  /** Request data comes out of frames that may share a read: never the exchange's to keep. */
  readonly chunksOwned = false;
  get pending(): number { return this.stream.queued; }
  write(data: Uint8Array, offset = 0, length = data.length - offset): boolean {
    return this.stream.responseBytes(offset === 0 && length === data.length ? data : data.subarray(offset, offset + length));
  }
  end(): void { this.stream.finishBody(); }
  shutdown(): void { this.stream.finishBody(); }
  destroy(): void { this.stream.reset(); }
  pause(): void {}
  resume(): void {}
}

/** Reads the HTTP/1.1 response the exchange writes: heads (interim ones too) become HEADERS,
 * the body (de-chunked) DATA. */
class ResponseReader {
  started = false;
  private head: Uint8Array | null = null;
  private res: ResponseHead | null = null;
  private chunks: ChunkedReader | null = null;
  private left = 0;

  constructor(private readonly stream: H2Stream) {}

  push(data: Uint8Array): boolean {
    if (this.res === null) return this.readHead(data);
    return this.body(data, 0);
  }

  private readHead(data: Uint8Array): boolean {
    let buf = data;
    if (this.head) { buf = new Uint8Array(this.head.length + data.length); buf.set(this.head); buf.set(data, this.head.length); }
    const end = findHeadEnd(buf, 0, buf.length);
    if (end < 0) { this.head = buf.slice(); return true; }
    this.head = null;
    let res: ResponseHead;
    try {
      res = parseResponseHead(buf, end, this.stream.method, this.stream.host.responseIndex);
    } catch (e) {
      console.error(`fulcrum: h2 stream ${this.stream.id}: unreadable response head: ${e instanceof HeadError ? e.reason : e}`);
      this.stream.reset();
      return false;
    }
    const fields: [string, string][] = [[":status", String(res.status)]];
    for (let k = 0; k < res.count; k++) {
      if (HOP_IDS.has(res.id(k))) continue;
      fields.push([res.lowerName(k), res.value(k)]);
    }
    if (res.status < 200) { // interim: pass it on, the final head follows
      this.stream.host.sendHeaders(this.stream, fields, false);
      return end < buf.length ? this.readHead(buf.slice(end)) : true;
    }
    this.res = res;
    this.started = true;
    const empty = res.body === "none" || (res.body === "length" && res.contentLength === 0);
    if (empty) {
      this.stream.localEnded = true; // END_STREAM rides on HEADERS
      this.stream.host.sendHeaders(this.stream, fields, true);
      return true;
    }
    this.stream.host.sendHeaders(this.stream, fields, false);
    if (res.body === "chunked") this.chunks = new ChunkedReader({ keepTrailers: true }, (b, s, e) => { this.stream.queueBody(b.subarray(s, e)); });
    this.left = res.body === "length" ? res.contentLength : -1;
    return end < buf.length ? this.body(buf, end) : true;
  }

  private body(data: Uint8Array, from: number): boolean {
    if (this.chunks) {
      const n = this.chunks.feed(data, from, data.length);
      if (n < 0) { this.stream.reset(); return false; }
      if (this.chunks.done) this.stream.finishBody(this.chunks.trailers().filter(([name]) => !HOP_NAMES.has(name)));
      return !this.stream.blocked;
    }
    const piece = data.subarray(from);
    if (this.left >= 0) {
      this.left -= piece.length;
      return this.stream.queueBody(piece, this.left <= 0);
    }
    return this.stream.queueBody(piece);
  }
}
