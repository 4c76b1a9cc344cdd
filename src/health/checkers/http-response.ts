// Reads one HTTP/1.1 response off a byte stream, for the HTTP check: status, then the body framed
// by Content-Length, chunked encoding or the end of the connection. The head and the chunked body
// are read by the proxy's own HTTP/1 codec (src/http1/), so a server passes its check only with
// responses the proxy itself would accept. A connection that closes before the framing says the
// response is complete is a failure ("closed mid-response"), which is exactly the kind of broken
// server a health check exists to find.
import { findHeadEnd, HeadError, indexFor } from "../../http1/head.ts";
import { parseResponseHead } from "../../http1/response-head.ts";
import { ChunkedReader } from "../../http1/chunked.ts";

export class HttpResponseError extends Error {}

// Bounds on a response head, as the socket path reads upstream heads.
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_HEAD_FIELDS = 256;

type Phase = "head" | "length" | "chunked" | "until-close" | "done";

export class HttpResponseReader {
  status = 0;
  /** Body bytes seen (kept or not). */
  bodyBytes = 0;
  /** Bytes received at all: a reused connection that closes before any is a stale one. */
  received = 0;
  /** Whether the connection may carry the next check: the server keeps it open, and the body is
   * framed by length or chunks (not by the close). */
  keepAlive = false;
  private phase: Phase = "head";
  /** The start of a head that arrived split, until its end arrives. */
  private head: Uint8Array | null = null;
  private remaining = 0;
  private chunks: ChunkedReader | null = null;
  private readonly kept: Uint8Array[] = [];
  private expectedLength = -1;
  private readonly index = indexFor(MAX_HEAD_FIELDS);

  /** keepBody: keep up to maxBody bytes of the body (for a regex or digest); method: the
   * request's (a HEAD response has no body). */
  constructor(private readonly keepBody: boolean, private readonly maxBody: number, private readonly method: string) {}

  get done(): boolean {
    return this.phase === "done";
  }

  /** Where reading is, for timeout reasons. */
  get waitingFor(): string {
    return this.phase === "head" ? "the response" : "the rest of the body";
  }

  body(): Uint8Array {
    if (this.kept.length === 1) return this.kept[0];
    const out = new Uint8Array(this.kept.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.kept) { out.set(c, at); at += c.length; }
    return out;
  }

  /** Takes the next bytes; returns true once the response is complete. */
  feed(chunk: Uint8Array): boolean {
    this.received += chunk.length;
    let at = 0;
    while (at < chunk.length && this.phase !== "done") {
      at = this.phase === "head" ? this.readHead(chunk, at) : this.readBody(chunk, at);
    }
    if (at < chunk.length) this.keepAlive = false; // bytes after the response: do not reuse
    return this.phase === "done";
  }

  /** The connection ended: complete when the body runs to the close, otherwise it was cut short. */
  end(): void {
    if (this.phase === "done") return;
    if (this.phase === "until-close") { this.phase = "done"; return; }
    if (this.phase === "head") {
      throw new HttpResponseError(this.head === null ? "connection closed before any response" : "connection closed mid-header");
    }
    const of = this.expectedLength >= 0 ? ` of ${this.expectedLength}` : "";
    throw new HttpResponseError(`connection closed mid-response (${this.bodyBytes}${of} body bytes)`);
  }

  private readHead(chunk: Uint8Array, at: number): number {
    // The usual case, a whole head in one chunk, is parsed in place; a split head is joined first.
    const held = this.head?.length ?? 0;
    let buf = chunk.subarray(at);
    if (this.head !== null) {
      const joined = new Uint8Array(held + buf.length);
      joined.set(this.head);
      joined.set(buf, held);
      buf = joined;
    }
    const end = findHeadEnd(buf, Math.max(0, held - 3), buf.length);
    if (end < 0 || end > MAX_HEAD_BYTES) {
      if (buf.length > MAX_HEAD_BYTES) throw new HttpResponseError("response header larger than 64 KiB");
      this.head = this.head === null ? buf.slice() : buf;
      return chunk.length;
    }
    this.head = null;
    this.startBody(buf, end);
    return at + end - held;
  }

  private startBody(buf: Uint8Array, end: number): void {
    let res;
    try {
      res = parseResponseHead(buf, end, this.method, this.index);
    } catch (e) {
      if (e instanceof HeadError) throw new HttpResponseError(`invalid response: ${e.reason}`);
      throw e;
    }
    if (res.status < 200 && res.status !== 101) return; // interim (100 Continue): the real head follows
    this.status = res.status;
    if (res.body === "chunked") {
      this.chunks = new ChunkedReader({}, (b, s, e) => this.keep(b, s, e));
      this.phase = "chunked";
    } else if (res.body === "length") {
      this.expectedLength = this.remaining = res.contentLength;
      this.phase = res.contentLength === 0 ? "done" : "length";
    } else this.phase = res.body === "close" ? "until-close" : "done";
    // After a 101 the connection speaks another protocol: never reused.
    this.keepAlive = res.keepAlive && res.status !== 101 && this.phase !== "until-close";
  }

  private readBody(chunk: Uint8Array, at: number): number {
    if (this.phase === "chunked") {
      const chunks = this.chunks!;
      const n = chunks.feed(chunk, at, chunk.length);
      if (n < 0) throw new HttpResponseError(`invalid chunked body: ${chunks.error}`);
      if (chunks.done) this.phase = "done";
      return at + n;
    }
    const take = this.phase === "until-close" ? chunk.length - at : Math.min(this.remaining, chunk.length - at);
    this.keep(chunk, at, at + take);
    if (this.phase === "length") {
      this.remaining -= take;
      if (this.remaining === 0) this.phase = "done";
    }
    return at + take;
  }

  private keep(buf: Uint8Array, start: number, end: number): void {
    this.bodyBytes += end - start;
    if (!this.keepBody) return;
    if (this.bodyBytes > this.maxBody) throw new HttpResponseError(`response body larger than ${this.maxBody} bytes`);
    this.kept.push(buf.slice(start, end));
  }
}
