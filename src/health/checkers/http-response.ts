// Reads one HTTP/1.1 response off a byte stream, for the HTTP check: status, then the body framed
// by Content-Length, chunked encoding or the end of the connection. A connection that closes
// before the framing says the response is complete is a failure ("closed mid-response"), which is
// exactly the kind of broken server a health check exists to find.

export class HttpResponseError extends Error {}

const MAX_HEAD_BYTES = 64 * 1024;
const CRLFCRLF = [13, 10, 13, 10];

type Phase = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "until-close" | "done";

export class HttpResponseReader {
  status = 0;
  /** Body bytes seen (kept or not). */
  bodyBytes = 0;
  private phase: Phase = "head";
  private head: Uint8Array = new Uint8Array(0);
  private remaining = 0;
  private line = "";
  private readonly kept: Uint8Array[] = [];
  private expectedLength = -1;

  /** keepBody: keep up to maxBody bytes of the body (for a regex or digest); noBody: a HEAD request. */
  constructor(private readonly keepBody: boolean, private readonly maxBody: number, private readonly noBody: boolean) {}

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
    let at = 0;
    while (at < chunk.length && this.phase !== "done") {
      switch (this.phase) {
        case "head": at = this.readHead(chunk, at); break;
        case "length": case "chunk-data": case "until-close": at = this.readBody(chunk, at); break;
        default: at = this.readLine(chunk, at); break;
      }
    }
    return this.phase === "done";
  }

  /** The connection ended: complete when the body runs to the close, otherwise it was cut short. */
  end(): void {
    if (this.phase === "done") return;
    if (this.phase === "until-close") { this.phase = "done"; return; }
    if (this.phase === "head") {
      throw new HttpResponseError(this.head.length === 0 ? "connection closed before any response" : "connection closed mid-header");
    }
    const of = this.expectedLength >= 0 ? ` of ${this.expectedLength}` : "";
    throw new HttpResponseError(`connection closed mid-response (${this.bodyBytes}${of} body bytes)`);
  }

  private readHead(chunk: Uint8Array, at: number): number {
    const joined = new Uint8Array(this.head.length + chunk.length - at);
    joined.set(this.head);
    joined.set(chunk.subarray(at), this.head.length);
    const end = indexOf(joined, CRLFCRLF, Math.max(0, this.head.length - 3));
    if (end < 0) {
      if (joined.length > MAX_HEAD_BYTES) throw new HttpResponseError("response header larger than 64 KiB");
      this.head = joined;
      return chunk.length;
    }
    const consumed = end + 4 - this.head.length; // bytes of this chunk that belong to the head
    this.head = new Uint8Array(0);
    this.startBody(new TextDecoder("latin1").decode(joined.subarray(0, end)));
    return at + consumed;
  }

  private startBody(headText: string): void {
    const lines = headText.split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
    if (!m) throw new HttpResponseError(`not an HTTP response: ${JSON.stringify(lines[0].slice(0, 40))}`);
    const status = Number(m[1]);
    if (status >= 100 && status < 200 && status !== 101) return; // interim (100 Continue): the real head follows
    this.status = status;
    let length = -1, chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i].indexOf(":");
      if (colon <= 0) continue;
      const name = lines[i].slice(0, colon).trim().toLowerCase();
      const value = lines[i].slice(colon + 1).trim();
      if (name === "content-length") {
        if (!/^\d+$/.test(value)) throw new HttpResponseError(`invalid Content-Length ${JSON.stringify(value)}`);
        length = Number(value);
      } else if (name === "transfer-encoding" && value.toLowerCase().split(",").map((s) => s.trim()).includes("chunked")) {
        chunked = true;
      }
    }
    if (this.noBody || status === 204 || status === 304) this.phase = "done";
    else if (chunked) this.phase = "chunk-size";
    else if (length >= 0) {
      this.expectedLength = length;
      this.remaining = length;
      this.phase = length === 0 ? "done" : "length";
    } else this.phase = "until-close";
  }

  private readBody(chunk: Uint8Array, at: number): number {
    const take = this.phase === "until-close" ? chunk.length - at : Math.min(this.remaining, chunk.length - at);
    this.keep(chunk.subarray(at, at + take));
    if (this.phase !== "until-close") {
      this.remaining -= take;
      if (this.remaining === 0) this.phase = this.phase === "length" ? "done" : "chunk-end";
    }
    return at + take;
  }

  private keep(bytes: Uint8Array): void {
    this.bodyBytes += bytes.length;
    if (!this.keepBody) return;
    if (this.bodyBytes > this.maxBody) throw new HttpResponseError(`response body larger than ${this.maxBody} bytes`);
    this.kept.push(bytes.slice());
  }

  // Chunk-size lines, the CRLF after chunk data, and trailer lines.
  private readLine(chunk: Uint8Array, at: number): number {
    const lf = chunk.indexOf(10, at);
    const end = lf < 0 ? chunk.length : lf + 1;
    this.line += new TextDecoder("latin1").decode(chunk.subarray(at, end));
    if (this.line.length > 4096) throw new HttpResponseError("chunked encoding line too long");
    if (lf < 0) return end;
    const line = this.line.replace(/\r?\n$/, "");
    this.line = "";
    if (this.phase === "chunk-end") {
      if (line !== "") throw new HttpResponseError("invalid chunked encoding");
      this.phase = "chunk-size";
    } else if (this.phase === "chunk-size") {
      const size = parseInt(line.split(";")[0].trim(), 16);
      if (!Number.isFinite(size) || size < 0) throw new HttpResponseError("invalid chunk size");
      if (size === 0) this.phase = "trailers";
      else { this.remaining = size; this.phase = "chunk-data"; }
    } else if (line === "") {
      this.phase = "done"; // the empty line after the trailers
    }
    return end;
  }
}

function indexOf(haystack: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
