// A small HTTP/2 client for crafted frames: it writes whatever bytes a test builds (good frames,
// floods, broken ones) over h2c or TLS (ALPN h2), and records every frame the server sends, so a
// test can wait for a GOAWAY and read its code. Frames and HPACK come from src/http2/.
import net from "node:net";
import tls from "node:tls";
import {
  encodeFrame, encodeHeaders, encodeSettings, F_END_STREAM, type Frame, FrameReader, PREFACE, T_DATA, T_GOAWAY, T_HEADERS,
  u32,
} from "../../src/http2/frame.ts";
import { Decoder, Encoder } from "../../src/http2/hpack.ts";

export interface Received extends Frame {
  /** Decoded fields, for HEADERS. */
  fields?: [string, string][];
}

export class RawH2 {
  readonly frames: Received[] = [];
  readonly encoder = new Encoder();
  private readonly decoder = new Decoder();
  private readonly waiters = new Set<() => void>();
  closed = false;
  private readonly reader = new FrameReader(1 << 24, false, (f) => {
    const r: Received = { ...f, payload: f.payload.slice() };
    if (f.type === T_HEADERS) r.fields = this.decoder.decode(r.payload, 1 << 20).fields;
    this.frames.push(r);
    for (const w of this.waiters) w();
  });

  private constructor(private readonly sock: net.Socket) {
    sock.on("data", (d: Uint8Array) => this.reader.push(d));
    const done = () => { this.closed = true; for (const w of this.waiters) w(); };
    sock.on("close", done);
    sock.on("error", done);
  }

  /** Connects, sends the preface and an empty SETTINGS (unless `preface` is false). */
  static connect(port: number, o: { tls?: boolean; preface?: boolean } = {}): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const ready = () => {
        const c = new RawH2(sock);
        if (o.preface !== false) c.send(PREFACE, encodeSettings([]));
        resolve(c);
      };
      const sock: net.Socket = o.tls
        ? tls.connect({ host: "127.0.0.1", port, ALPNProtocols: ["h2"], rejectUnauthorized: false }, ready)
        : net.connect({ host: "127.0.0.1", port }, ready);
      sock.once("error", reject);
    });
  }

  get alpn(): string | false { return (this.sock as tls.TLSSocket).alpnProtocol ?? false; }

  send(...parts: Uint8Array[]): void {
    for (const p of parts) if (!this.closed) this.sock.write(p);
  }

  /** HEADERS for a GET (or the given fields) on a stream. */
  request(stream: number, path: string, o: { method?: string; endStream?: boolean; extra?: [string, string][] } = {}): Uint8Array {
    const fields: [string, string][] = [[":method", o.method ?? "GET"], [":scheme", "http"], [":path", path], [":authority", "h2.test"], ...(o.extra ?? [])];
    return encodeHeaders(stream, this.encoder.encode(fields), o.endStream ?? true, 16384);
  }

  data(stream: number, bytes: Uint8Array, endStream: boolean): Uint8Array {
    return encodeFrame(T_DATA, endStream ? F_END_STREAM : 0, stream, bytes);
  }

  /** Resolves with the first frame (seen or to come) matching `pred`, or null once the connection
   * closes or timeoutMs passes without one. */
  waitFor(pred: (f: Received) => boolean, timeoutMs = 10_000): Promise<Received | null> {
    return new Promise((resolve) => {
      const check = () => {
        const f = this.frames.find(pred);
        if (f || this.closed) { clearTimeout(timer); this.waiters.delete(check); resolve(f ?? null); }
      };
      const timer = setTimeout(() => { this.waiters.delete(check); resolve(this.frames.find(pred) ?? null); }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** The GOAWAY's last stream id, code and debug text, once one arrives. */
  async goaway(timeoutMs = 10_000): Promise<{ lastStream: number; code: number; debug: string } | null> {
    const f = await this.waitFor((x) => x.type === T_GOAWAY, timeoutMs);
    if (!f) return null;
    return { lastStream: u32(f.payload, 0) & 0x7fffffff, code: u32(f.payload, 4), debug: String.fromCharCode(...f.payload.subarray(8)) };
  }

  /** Waits until the server closes the connection (bounded). */
  async closedWithin(timeoutMs = 10_000): Promise<boolean> {
    await this.waitFor(() => false, timeoutMs);
    return this.closed;
  }

  close(): void { this.sock.destroy(); }
}
