// Reads one HTTP/1.1 response off a byte stream, for the HTTP check: status, then the body framed
// by Content-Length, chunked encoding or the end of the connection. A connection that closes
// before the framing says the response is complete is a failure ("closed mid-response"), which is
// exactly the kind of broken server a health check exists to find.

export class HttpResponseError extends Error {}

const MAX_HEAD_BYTES = 64 * 1024;
const LATIN1 = new TextDecoder("latin1");

type Phase = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "until-close" | "done";

export class HttpResponseReader {
  status = 0;
  /** Body bytes seen (kept or not). */
  bodyBytes = 0;
  /** Bytes received at all: a reused connection that closes before any is a stale one. */
  received = 0;
  /** Whether the connection may carry the next check: HTTP/1.1, no "Connection: close", and a
   * body framed by length or chunks (not by the close). */
  keepAlive = false;
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
    this.received += chunk.length;
    let at = 0;
    while (at < chunk.length && this.phase !== "done") {
      switch (this.phase) {
        case "head": at = this.readHead(chunk, at); break;
        case "length": case "chunk-data": case "until-close": at = this.readBody(chunk, at); break;
        default: at = this.readLine(chunk, at); break;
      }
    }
    if (at < chunk.length) this.keepAlive = false; // bytes after the response: do not reuse
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
    // The usual case, a whole head in one chunk, is read in place; a split head is joined first.
    if (this.head.length === 0) {
      const end = indexOfBlankLine(chunk, at);
      if (end >= 0) {
        this.startBody(LATIN1.decode(chunk.subarray(at, end)));
        return end + 4;
      }
    }
    const joined = new Uint8Array(this.head.length + chunk.length - at);
    joined.set(this.head);
    joined.set(chunk.subarray(at), this.head.length);
    const end = indexOfBlankLine(joined, Math.max(0, this.head.length - 3));
    if (end < 0) {
      if (joined.length > MAX_HEAD_BYTES) throw new HttpResponseError("response header larger than 64 KiB");
      this.head = joined;
      return chunk.length;
    }
    const consumed = end + 4 - this.head.length; // bytes of this chunk that belong to the head
    this.head = new Uint8Array(0);
    this.startBody(LATIN1.decode(joined.subarray(0, end)));
    return at + consumed;
  }

  private startBody(headText: string): void {
    const m = STATUS_LINE.exec(headText);
    if (!m) throw new HttpResponseError(`not an HTTP response: ${JSON.stringify(headText.split("\r\n")[0].slice(0, 40))}`);
    const status = Number(m[2]);
    if (status >= 100 && status < 200 && status !== 101) return; // interim (100 Continue): the real head follows
    this.status = status;
    // Only three fields matter here, so the head is searched for them rather than split and
    // parsed whole (this runs a thousand times a second in a large setup).
    const head = headText.toLowerCase();
    let length = -1;
    const lengthText = fieldValue(head, "\r\ncontent-length:");
    if (lengthText !== null) {
      if (!/^\d+$/.test(lengthText)) throw new HttpResponseError(`invalid Content-Length ${JSON.stringify(lengthText)}`);
      length = Number(lengthText);
    }
    const chunked = hasToken(fieldValue(head, "\r\ntransfer-encoding:"), "chunked");
    const close = m[1] === "0" || hasToken(fieldValue(head, "\r\nconnection:"), "close");
    if (this.noBody || status === 204 || status === 304) this.phase = "done";
    else if (chunked) this.phase = "chunk-size";
    else if (length >= 0) {
      this.expectedLength = length;
      this.remaining = length;
      this.phase = length === 0 ? "done" : "length";
    } else this.phase = "until-close";
    this.keepAlive = !close && this.phase !== "until-close";
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
    this.line += LATIN1.decode(chunk.subarray(at, end));
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

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |\r|$)/;

/** The trimmed value of the first field `name` (lowercase, with its CRLF and colon), or null. */
function fieldValue(head: string, name: string): string | null {
  const at = head.indexOf(name);
  if (at < 0) return null;
  const end = head.indexOf("\r\n", at + name.length);
  return head.slice(at + name.length, end < 0 ? head.length : end).trim();
}

function hasToken(value: string | null, token: string): boolean {
  return value !== null && value.split(",").some((t) => t.trim() === token);
}

/** Where CR LF CR LF starts in `bytes` at or after `from`, or -1 (jumps between CRs natively). */
function indexOfBlankLine(bytes: Uint8Array, from: number): number {
  for (let i = bytes.indexOf(13, from); i >= 0 && i + 3 < bytes.length; i = bytes.indexOf(13, i + 1)) {
    if (bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i;
  }
  return -1;
}
