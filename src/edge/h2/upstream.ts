// HTTP/2 towards servers (pools with `protocol: h2`, as gRPC needs): one multiplexed connection
// per server, h2c with prior knowledge, speaking the same codec as the front end. Streams are
// opened by an H2Proxy each; this class keeps the connection's settings, flow control and
// header blocks, and hands each stream's frames to its proxy.
import { runtime } from "../../runtime/index.ts";
import type { TcpHandlers, TcpSocket } from "../../runtime/types.ts";
import {
  applySettings, checkFrame, DEFAULT_WINDOW, defaultSettings, encodeData, encodeHeaders, encodePing, encodeRstStream,
  encodeSettings, encodeWindowUpdate, F_ACK, F_END_HEADERS, F_END_STREAM, FLOW_CONTROL_ERROR, type Frame, framedContent,
  FrameReader, H2Error, MAX_WINDOW, MIN_FRAME_SIZE, PREFACE, PROTOCOL_ERROR, S_ENABLE_PUSH, S_INITIAL_WINDOW_SIZE,
  T_CONTINUATION, T_DATA, T_GOAWAY, T_HEADERS, T_PING, T_PUSH_PROMISE, T_RST_STREAM, T_SETTINGS, T_WINDOW_UPDATE, u32,
} from "../../http2/frame.ts";
import { Decoder, Encoder, HpackError } from "../../http2/hpack.ts";

/** What a stream's frames go to (H2Proxy). */
export interface UpstreamStreamUser {
  upstreamHeaders(fields: [string, string][], endStream: boolean): void;
  upstreamData(bytes: Uint8Array, endStream: boolean): void;
  /** The stream was reset, or the connection failed; `reason` says which. */
  upstreamFailed(reason: string, beforeAnswer: boolean): void;
  /** The stream's send queue emptied below its mark. */
  upstreamDrain(): void;
}

const STREAM_WINDOW = 1024 * 1024;
const CONN_WINDOW = 4 * 1024 * 1024;
const QUEUE_HIGH = 256 * 1024;
const MAX_HEADER_LIST = 256 * 1024;

interface Upstream {
  user: UpstreamStreamUser;
  sendWindow: number;
  recvUngranted: number;
  /** Queued request body and whether END_STREAM follows it. */
  queue: Uint8Array[];
  queued: number;
  end: "no" | "data" | [string, string][];
  answered: boolean;
  /** Granting window back is paused (the client is slow to take the answer). */
  held: boolean;
}

export class H2UpstreamConn implements TcpHandlers {
  socket!: TcpSocket;
  private readonly reader: FrameReader;
  private readonly peer = defaultSettings();
  private readonly encoder = new Encoder();
  private readonly decoder = new Decoder(4096);
  private readonly streams = new Map<number, Upstream>();
  private nextId = 1;
  private connSendWindow = DEFAULT_WINDOW;
  private connUngranted = 0;
  private blockStream = 0;
  private blockEnd = false;
  private blockParts: Uint8Array[] = [];
  /** No new streams: GOAWAY received, an error, or closed. */
  dead = false;

  constructor(readonly key: string, private readonly pool: H2UpstreamPool) {
    this.reader = new FrameReader(MIN_FRAME_SIZE, false, (f) => this.frame(f));
  }

  /** Streams open now, against the server's SETTINGS_MAX_CONCURRENT_STREAMS. */
  get full(): boolean { return this.streams.size >= this.peer.maxConcurrentStreams || this.nextId > 0x7ffffff0; }
  get idle(): boolean { return this.streams.size === 0; }

  start(): void {
    this.socket.write(PREFACE);
    this.socket.write(encodeSettings([[S_ENABLE_PUSH, 0], [S_INITIAL_WINDOW_SIZE, STREAM_WINDOW]]));
    this.socket.write(encodeWindowUpdate(0, CONN_WINDOW - DEFAULT_WINDOW));
  }

  /** Opens a stream with a request head; returns its id. */
  open(user: UpstreamStreamUser, fields: [string, string][], endStream: boolean): number {
    const id = this.nextId;
    this.nextId += 2;
    this.streams.set(id, { user, sendWindow: this.peer.initialWindowSize, recvUngranted: 0, queue: [], queued: 0, end: endStream ? "data" : "no", answered: false, held: false });
    this.socket.write(encodeHeaders(id, this.encoder.encode(fields), endStream, this.peer.maxFrameSize));
    return id;
  }

  /** Request body bytes (kept: the caller's buffer may be reused); false past the queue mark. */
  send(id: number, bytes: Uint8Array, endStream: boolean): boolean {
    const s = this.streams.get(id);
    if (!s) return true;
    if (bytes.length > 0) { s.queue.push(bytes.slice()); s.queued += bytes.length; }
    if (endStream) s.end = "data";
    this.flush(id, s);
    return s.queued < QUEUE_HIGH;
  }

  /** Request trailers: the last HEADERS, with END_STREAM. */
  sendTrailers(id: number, fields: [string, string][]): void {
    const s = this.streams.get(id);
    if (!s) return;
    s.end = fields;
    this.flush(id, s);
  }

  /** Stops or resumes granting the server window for a stream's response. */
  hold(id: number, held: boolean): void {
    const s = this.streams.get(id);
    if (!s) return;
    s.held = held;
    if (!held) this.grant(id, s);
  }

  /** The client went away: cancel the stream. */
  cancel(id: number): void {
    if (!this.streams.delete(id)) return;
    this.socket.write(encodeRstStream(id, 0x8));
    this.released();
  }

  private flush(id: number, s: Upstream): void {
    while (s.queue.length > 0) {
      const room = Math.min(s.sendWindow, this.connSendWindow, this.peer.maxFrameSize);
      if (room <= 0) return;
      const head = s.queue[0], n = Math.min(room, head.length);
      const last = n === head.length && s.queue.length === 1 && s.end === "data";
      this.socket.write(encodeData(id, head, 0, n, last, this.peer.maxFrameSize));
      s.sendWindow -= n;
      this.connSendWindow -= n;
      s.queued -= n;
      if (n === head.length) s.queue.shift();
      else s.queue[0] = head.subarray(n);
      if (last) { s.end = "no"; s.queue.length = 0; return; }
    }
    if (s.end === "data") { this.socket.write(encodeData(id, new Uint8Array(0), 0, 0, true, this.peer.maxFrameSize)); s.end = "no"; }
    else if (Array.isArray(s.end)) { this.socket.write(encodeHeaders(id, this.encoder.encode(s.end), true, this.peer.maxFrameSize)); s.end = "no"; }
    if (s.queued < QUEUE_HIGH / 2) s.user.upstreamDrain();
  }

  private grant(id: number, s: Upstream): void {
    if (s.held || s.recvUngranted < STREAM_WINDOW / 2) return;
    this.socket.write(encodeWindowUpdate(id, s.recvUngranted));
    s.recvUngranted = 0;
  }

  // ------------------------------------------------------------------------------ reading

  data(chunk: Uint8Array): void {
    try {
      this.reader.push(chunk);
    } catch (e) {
      if (!(e instanceof H2Error)) throw e;
      this.failAll(`upstream HTTP/2 error: ${e.message}`);
      this.socket.destroy();
    }
  }

  drain(): void {}

  close(): void {
    this.failAll("upstream closed the connection");
    this.pool.forget(this);
  }

  private failAll(reason: string): void {
    this.dead = true;
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.user.upstreamFailed(reason, !s.answered);
  }

  private frame(f: Frame): void {
    if (this.blockStream !== 0 && (f.type !== T_CONTINUATION || f.stream !== this.blockStream)) throw new H2Error(PROTOCOL_ERROR, "a frame inside a header block");
    if (f.type === T_PUSH_PROMISE) throw new H2Error(PROTOCOL_ERROR, "PUSH_PROMISE, which we disabled");
    checkFrame(f);
    switch (f.type) {
      case T_SETTINGS: {
        if (f.flags & F_ACK) return;
        const delta = applySettings(this.peer, f.payload);
        this.encoder.setPeerTableSize(this.peer.headerTableSize);
        for (const s of this.streams.values()) s.sendWindow += delta;
        this.socket.write(encodeSettings([], true));
        for (const [id, s] of this.streams) this.flush(id, s);
        return;
      }
      case T_PING: if (!(f.flags & F_ACK)) this.socket.write(encodePing(f.payload, true)); return;
      case T_GOAWAY: {
        // Streams above the last one it names were never processed: they fail (and may retry).
        this.dead = true;
        const last = u32(f.payload, 0) & MAX_WINDOW;
        for (const [id, s] of [...this.streams]) if (id > last) { this.streams.delete(id); s.user.upstreamFailed("upstream sent GOAWAY", !s.answered); }
        this.pool.forget(this);
        if (this.streams.size === 0) this.socket.end();
        return;
      }
      case T_WINDOW_UPDATE: {
        const inc = u32(f.payload, 0) & MAX_WINDOW;
        if (f.stream === 0) {
          this.connSendWindow += inc;
          if (this.connSendWindow > MAX_WINDOW) throw new H2Error(FLOW_CONTROL_ERROR, "upstream connection window overflow");
          for (const [id, s] of this.streams) this.flush(id, s);
        } else {
          const s = this.streams.get(f.stream);
          if (s) { s.sendWindow += inc; this.flush(f.stream, s); }
        }
        return;
      }
      case T_RST_STREAM: {
        const s = this.streams.get(f.stream);
        if (!s) return;
        this.streams.delete(f.stream);
        s.user.upstreamFailed(`upstream reset the stream (code ${u32(f.payload, 0)})`, !s.answered);
        this.released();
        return;
      }
      case T_HEADERS:
        this.blockParts = [framedContent(f).slice()];
        this.blockEnd = (f.flags & F_END_STREAM) !== 0;
        if (f.flags & F_END_HEADERS) this.headerBlock(f.stream);
        else this.blockStream = f.stream;
        return;
      case T_CONTINUATION:
        if (this.blockStream === 0) throw new H2Error(PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        this.blockParts.push(f.payload.slice());
        if (this.blockParts.length > 64) throw new H2Error(PROTOCOL_ERROR, "header block of too many frames");
        if (f.flags & F_END_HEADERS) { const id = this.blockStream; this.blockStream = 0; this.headerBlock(id); }
        return;
      case T_DATA: this.onData(f); return;
    }
  }

  private headerBlock(id: number): void {
    const total = this.blockParts.reduce((n, p) => n + p.length, 0);
    const block = new Uint8Array(total);
    let at = 0;
    for (const p of this.blockParts) { block.set(p, at); at += p.length; }
    this.blockParts = [];
    let decoded;
    try {
      decoded = this.decoder.decode(block, MAX_HEADER_LIST);
    } catch (e) {
      if (e instanceof HpackError) throw new H2Error(0x9, e.message);
      throw e;
    }
    const s = this.streams.get(id);
    if (!s) return;
    if (decoded.truncated) { this.cancel(id); s.user.upstreamFailed("upstream response head too large", !s.answered); return; }
    const status = decoded.fields.find(([n]) => n === ":status")?.[1];
    if (status && Number(status) >= 200) s.answered = true;
    if (this.blockEnd) this.streams.delete(id);
    s.user.upstreamHeaders(decoded.fields, this.blockEnd);
    if (this.blockEnd) this.released();
  }

  private onData(f: Frame): void {
    const len = f.payload.length;
    this.connUngranted += len;
    if (this.connUngranted >= CONN_WINDOW / 2) { this.socket.write(encodeWindowUpdate(0, this.connUngranted)); this.connUngranted = 0; }
    const s = this.streams.get(f.stream);
    if (!s) return;
    const end = (f.flags & F_END_STREAM) !== 0;
    s.recvUngranted += len;
    if (end) this.streams.delete(f.stream);
    s.user.upstreamData(framedContent(f).slice(), end);
    if (end) this.released();
    else this.grant(f.stream, s);
  }

  private released(): void {
    if (this.dead && this.streams.size === 0) this.socket.end();
  }
}

/** HTTP/2 connections per server, each shared by many streams; another is opened only when
 * every one is full (the server's SETTINGS_MAX_CONCURRENT_STREAMS) or going away. */
export class H2UpstreamPool {
  private readonly conns = new Map<string, H2UpstreamConn[]>();
  private readonly connecting = new Map<string, Promise<H2UpstreamConn>>();

  /** A connection to host:port with room for a stream; rejects with UpstreamError or "timeout". */
  get(host: string, port: number, timeoutMs: number): Promise<H2UpstreamConn> {
    const key = `${host}:${port}`;
    const c = this.conns.get(key)?.find((x) => !x.dead && !x.full);
    if (c) return Promise.resolve(c);
    const pending = this.connecting.get(key);
    if (pending) return pending;
    const p = new Promise<H2UpstreamConn>((resolve, reject) => {
      const conn = new H2UpstreamConn(key, this);
      let timedOut = false;
      const timer = setTimeout(() => { timedOut = true; reject(new Error("timeout")); }, timeoutMs);
      runtime.connectTcp({ hostname: host, port, handlers: conn, lendChunks: true }).then((socket) => {
        clearTimeout(timer);
        conn.socket = socket;
        if (timedOut) { socket.destroy(); return; }
        conn.start();
        let list = this.conns.get(key);
        if (!list) this.conns.set(key, list = []);
        list.push(conn);
        resolve(conn);
      }, (e) => { clearTimeout(timer); if (!timedOut) reject(e); });
    }).finally(() => this.connecting.delete(key));
    this.connecting.set(key, p);
    return p;
  }

  forget(conn: H2UpstreamConn): void {
    const list = this.conns.get(conn.key);
    const i = list ? list.indexOf(conn) : -1;
    if (i >= 0) list!.splice(i, 1);
  }

  closeAll(): void {
    for (const list of this.conns.values()) for (const c of list) c.socket.destroy();
    this.conns.clear();
  }
}
