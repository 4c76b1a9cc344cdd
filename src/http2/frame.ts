// The HTTP/2 frame layer (RFC 9113 §4, §6): the connection preface, frame headers, each frame
// type's length, flag and stream-id rules, SETTINGS, and writers for the frames a server sends.
// Pure: a FrameReader cuts frames from bytes and judges their form; what they mean for streams
// is the connection's (src/edge/h2/).

export const PREFACE = Uint8Array.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (c) => c.charCodeAt(0));

export const FRAME_HEADER = 9;

export const T_DATA = 0, T_HEADERS = 1, T_PRIORITY = 2, T_RST_STREAM = 3, T_SETTINGS = 4;
export const T_PUSH_PROMISE = 5, T_PING = 6, T_GOAWAY = 7, T_WINDOW_UPDATE = 8, T_CONTINUATION = 9;

export const F_END_STREAM = 0x1, F_ACK = 0x1, F_END_HEADERS = 0x4, F_PADDED = 0x8, F_PRIORITY = 0x20;

/** Error codes (RFC 9113 §7). */
export const NO_ERROR = 0x0, PROTOCOL_ERROR = 0x1, INTERNAL_ERROR = 0x2, FLOW_CONTROL_ERROR = 0x3;
export const SETTINGS_TIMEOUT = 0x4, STREAM_CLOSED = 0x5, FRAME_SIZE_ERROR = 0x6, REFUSED_STREAM = 0x7;
export const CANCEL = 0x8, COMPRESSION_ERROR = 0x9, CONNECT_ERROR = 0xa, ENHANCE_YOUR_CALM = 0xb;
export const INADEQUATE_SECURITY = 0xc, HTTP_1_1_REQUIRED = 0xd;

export const ERROR_NAMES: Record<number, string> = {
  0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 4: "SETTINGS_TIMEOUT",
  5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR",
  10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED",
};

/** SETTINGS identifiers (RFC 9113 §6.5.2). */
export const S_HEADER_TABLE_SIZE = 0x1, S_ENABLE_PUSH = 0x2, S_MAX_CONCURRENT_STREAMS = 0x3;
export const S_INITIAL_WINDOW_SIZE = 0x4, S_MAX_FRAME_SIZE = 0x5, S_MAX_HEADER_LIST_SIZE = 0x6;

export const DEFAULT_WINDOW = 65535;
export const MAX_WINDOW = 0x7fffffff;
export const MIN_FRAME_SIZE = 16384;
export const MAX_FRAME_SIZE_LIMIT = 0xffffff;

/** A connection error (GOAWAY with this code), or with `stream` a stream error (RST_STREAM). */
export class H2Error extends Error {
  constructor(readonly code: number, readonly reason: string, readonly stream = 0) {
    super(`${ERROR_NAMES[code] ?? code}: ${reason}`);
  }
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  /** The payload: a view, valid only during the onFrame call. */
  payload: Uint8Array;
}

/** The peer's settings, as they stand (RFC 9113 §6.5.2 defaults). */
export interface Settings {
  headerTableSize: number;
  enablePush: boolean;
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
}

export function defaultSettings(): Settings {
  return {
    headerTableSize: 4096, enablePush: true, maxConcurrentStreams: Infinity, initialWindowSize: DEFAULT_WINDOW,
    maxFrameSize: MIN_FRAME_SIZE, maxHeaderListSize: Infinity,
  };
}

/** Applies a SETTINGS payload to `s`; throws H2Error for a value out of range (§6.5.2). Unknown
 * identifiers are ignored. Returns the INITIAL_WINDOW_SIZE change (new - old), for stream windows. */
export function applySettings(s: Settings, payload: Uint8Array): number {
  if (payload.length % 6 !== 0) throw new H2Error(FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6");
  const before = s.initialWindowSize;
  for (let at = 0; at < payload.length; at += 6) {
    const id = (payload[at] << 8) | payload[at + 1];
    const v = u32(payload, at + 2);
    switch (id) {
      case S_HEADER_TABLE_SIZE: s.headerTableSize = v; break;
      case S_ENABLE_PUSH:
        if (v > 1) throw new H2Error(PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${v}`);
        s.enablePush = v === 1;
        break;
      case S_MAX_CONCURRENT_STREAMS: s.maxConcurrentStreams = v; break;
      case S_INITIAL_WINDOW_SIZE:
        if (v > MAX_WINDOW) throw new H2Error(FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${v} above 2^31 - 1`);
        s.initialWindowSize = v;
        break;
      case S_MAX_FRAME_SIZE:
        if (v < MIN_FRAME_SIZE || v > MAX_FRAME_SIZE_LIMIT) throw new H2Error(PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${v}`);
        s.maxFrameSize = v;
        break;
      case S_MAX_HEADER_LIST_SIZE: s.maxHeaderListSize = v; break;
    }
  }
  return s.initialWindowSize - before;
}

export const u32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** Judges a frame's form by its type (RFC 9113 §6): stream id, length and padding. Throws
 * H2Error (connection errors, or stream errors where the RFC allows). Unknown types pass. */
export function checkFrame(f: Frame): void {
  const { type, stream, payload, flags } = f;
  const len = payload.length;
  switch (type) {
    case T_DATA: case T_HEADERS: case T_CONTINUATION:
      if (stream === 0) throw new H2Error(PROTOCOL_ERROR, `${TYPE_NAMES[type]} on stream 0`);
      if (type !== T_CONTINUATION && flags & F_PADDED) {
        const prio = type === T_HEADERS && flags & F_PRIORITY ? 5 : 0;
        if (len < 1 + prio || payload[0] > len - 1 - prio) throw new H2Error(PROTOCOL_ERROR, `${TYPE_NAMES[type]} padding longer than the payload`);
      } else if (type === T_HEADERS && flags & F_PRIORITY && len < 5) throw new H2Error(FRAME_SIZE_ERROR, "HEADERS too short for its priority");
      return;
    case T_PRIORITY:
      if (stream === 0) throw new H2Error(PROTOCOL_ERROR, "PRIORITY on stream 0");
      if (len !== 5) throw new H2Error(FRAME_SIZE_ERROR, "PRIORITY length is not 5", stream);
      return;
    case T_RST_STREAM:
      if (stream === 0) throw new H2Error(PROTOCOL_ERROR, "RST_STREAM on stream 0");
      if (len !== 4) throw new H2Error(FRAME_SIZE_ERROR, "RST_STREAM length is not 4");
      return;
    case T_SETTINGS:
      if (stream !== 0) throw new H2Error(PROTOCOL_ERROR, "SETTINGS on a stream");
      if (flags & F_ACK && len !== 0) throw new H2Error(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      if (len % 6 !== 0) throw new H2Error(FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6");
      return;
    case T_PUSH_PROMISE:
      throw new H2Error(PROTOCOL_ERROR, "PUSH_PROMISE from a client");
    case T_PING:
      if (stream !== 0) throw new H2Error(PROTOCOL_ERROR, "PING on a stream");
      if (len !== 8) throw new H2Error(FRAME_SIZE_ERROR, "PING length is not 8");
      return;
    case T_GOAWAY:
      if (stream !== 0) throw new H2Error(PROTOCOL_ERROR, "GOAWAY on a stream");
      if (len < 8) throw new H2Error(FRAME_SIZE_ERROR, "GOAWAY shorter than 8");
      return;
    case T_WINDOW_UPDATE:
      if (len !== 4) throw new H2Error(FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4");
      if ((u32(payload, 0) & MAX_WINDOW) === 0) throw new H2Error(PROTOCOL_ERROR, "WINDOW_UPDATE of 0", stream);
      return;
  }
}

export const TYPE_NAMES: Record<number, string> = {
  0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE", 6: "PING",
  7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION",
};

/** A frame's content with padding and priority fields taken off (DATA, HEADERS). */
export function framedContent(f: Frame): Uint8Array {
  let start = 0, end = f.payload.length;
  if (f.type === T_CONTINUATION) return f.payload;
  if (f.flags & F_PADDED) { end -= f.payload[0]; start = 1; }
  if (f.type === T_HEADERS && f.flags & F_PRIORITY) start += 5;
  return f.payload.subarray(start, end);
}

/** Cuts frames out of a byte stream. The first `PREFACE.length` bytes must be the preface when
 * `expectPreface`. Frames longer than maxFrameSize are a FRAME_SIZE_ERROR (§4.2). */
export class FrameReader {
  private buf = new Uint8Array(0);
  private start = 0;
  private end = 0;
  private prefaceLeft: number;

  constructor(public maxFrameSize: number, expectPreface: boolean, private readonly onFrame: (f: Frame) => void) {
    this.prefaceLeft = expectPreface ? PREFACE.length : 0;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number { return this.end - this.start; }

  /** Reads chunk; calls onFrame for each whole frame. Throws H2Error. The reader can be stopped
   * mid-chunk by `stop()` from onFrame. */
  push(chunk: Uint8Array): void {
    let src = chunk, at = 0, end = chunk.length;
    if (this.end > this.start) { this.append(chunk); src = this.buf; at = this.start; end = this.end; }
    this.stopped = false;
    if (this.prefaceLeft > 0) {
      const from = PREFACE.length - this.prefaceLeft;
      const n = Math.min(this.prefaceLeft, end - at);
      for (let i = 0; i < n; i++) if (src[at + i] !== PREFACE[from + i]) throw new H2Error(PROTOCOL_ERROR, "not the HTTP/2 connection preface");
      this.prefaceLeft -= n;
      at += n;
    }
    while (!this.stopped && end - at >= FRAME_HEADER) {
      const len = (src[at] << 16) | (src[at + 1] << 8) | src[at + 2];
      if (len > this.maxFrameSize) throw new H2Error(FRAME_SIZE_ERROR, `frame of ${len} bytes, above SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
      if (end - at < FRAME_HEADER + len) break;
      const f: Frame = {
        type: src[at + 3], flags: src[at + 4], stream: u32(src, at + 5) & MAX_WINDOW,
        payload: src.subarray(at + FRAME_HEADER, at + FRAME_HEADER + len),
      };
      at += FRAME_HEADER + len;
      this.onFrame(f);
    }
    if (this.stopped) { this.start = this.end = 0; return; }
    if (src === chunk) {
      this.start = this.end = 0;
      if (at < end) this.append(chunk.subarray(at));
    } else {
      this.start = at;
      if (this.start === this.end) this.start = this.end = 0;
    }
  }

  private stopped = false;
  stop(): void { this.stopped = true; }

  private append(bytes: Uint8Array): void {
    const need = this.end - this.start + bytes.length;
    if (this.end + bytes.length > this.buf.length) {
      const next = need > this.buf.length ? new Uint8Array(Math.max(need, this.buf.length * 2, 1024)) : this.buf;
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }
}

// ------------------------------------------------------------------------------ writers

export function frameHeader(out: Uint8Array, at: number, len: number, type: number, flags: number, stream: number): void {
  out[at] = len >>> 16; out[at + 1] = (len >>> 8) & 0xff; out[at + 2] = len & 0xff;
  out[at + 3] = type; out[at + 4] = flags;
  out[at + 5] = (stream >>> 24) & 0x7f; out[at + 6] = (stream >>> 16) & 0xff; out[at + 7] = (stream >>> 8) & 0xff; out[at + 8] = stream & 0xff;
}

function putU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24; out[at + 1] = (v >>> 16) & 0xff; out[at + 2] = (v >>> 8) & 0xff; out[at + 3] = v & 0xff;
}

/** One frame with the given payload. */
export function encodeFrame(type: number, flags: number, stream: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + payload.length);
  frameHeader(out, 0, payload.length, type, flags, stream);
  out.set(payload, FRAME_HEADER);
  return out;
}

export function encodeSettings(entries: [number, number][], ack = false): Uint8Array {
  const p = new Uint8Array(entries.length * 6);
  entries.forEach(([id, v], i) => { p[i * 6] = id >> 8; p[i * 6 + 1] = id & 0xff; putU32(p, i * 6 + 2, v); });
  return encodeFrame(T_SETTINGS, ack ? F_ACK : 0, 0, p);
}

export function encodePing(data: Uint8Array, ack: boolean): Uint8Array {
  return encodeFrame(T_PING, ack ? F_ACK : 0, 0, data);
}

export function encodeGoaway(lastStream: number, code: number, debug = ""): Uint8Array {
  const p = new Uint8Array(8 + debug.length);
  putU32(p, 0, lastStream & MAX_WINDOW);
  putU32(p, 4, code);
  for (let i = 0; i < debug.length; i++) p[8 + i] = debug.charCodeAt(i) & 0xff;
  return encodeFrame(T_GOAWAY, 0, 0, p);
}

export function encodeRstStream(stream: number, code: number): Uint8Array {
  const p = new Uint8Array(4);
  putU32(p, 0, code);
  return encodeFrame(T_RST_STREAM, 0, stream, p);
}

export function encodeWindowUpdate(stream: number, increment: number): Uint8Array {
  const p = new Uint8Array(4);
  putU32(p, 0, increment & MAX_WINDOW);
  return encodeFrame(T_WINDOW_UPDATE, 0, stream, p);
}

/** A header block as HEADERS then CONTINUATION frames of at most maxFrameSize each. */
export function encodeHeaders(stream: number, block: Uint8Array, endStream: boolean, maxFrameSize: number): Uint8Array {
  const frames = Math.max(1, Math.ceil(block.length / maxFrameSize));
  const out = new Uint8Array(block.length + frames * FRAME_HEADER);
  let at = 0;
  for (let k = 0; k < frames; k++) {
    const from = k * maxFrameSize, len = Math.min(maxFrameSize, block.length - from);
    const type = k === 0 ? T_HEADERS : T_CONTINUATION;
    const flags = (k === frames - 1 ? F_END_HEADERS : 0) | (k === 0 && endStream ? F_END_STREAM : 0);
    frameHeader(out, at, len, type, flags, stream);
    out.set(block.subarray(from, from + len), at + FRAME_HEADER);
    at += FRAME_HEADER + len;
  }
  return out;
}

/** DATA frames carrying data[start, end) (at most maxFrameSize each), the last with END_STREAM
 * when endStream. */
export function encodeData(stream: number, data: Uint8Array, start: number, end: number, endStream: boolean, maxFrameSize: number): Uint8Array {
  const len = end - start;
  const frames = Math.max(1, Math.ceil(len / maxFrameSize));
  const out = new Uint8Array(len + frames * FRAME_HEADER);
  let at = 0;
  for (let k = 0; k < frames; k++) {
    const from = start + k * maxFrameSize, n = Math.min(maxFrameSize, end - from);
    frameHeader(out, at, n, T_DATA, k === frames - 1 && endStream ? F_END_STREAM : 0, stream);
    out.set(data.subarray(from, from + n), at + FRAME_HEADER);
    at += FRAME_HEADER + n;
  }
  return out;
}
