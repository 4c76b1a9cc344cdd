// A parsed head over its own bytes: the head-scan index says where each field is; strings are
// made only for what is read (forwarding copies byte ranges). Shared by requests and responses.
import { latin1, lowerLatin1 } from "./bytes.ts";
import {
  FIELD_WORDS, HEAD_ERRORS, HEAD_OK, HEAD_TOO_MANY, K_CONNECTION, K_CONTENT_LENGTH, K_TRANSFER_ENCODING,
  scanHeaderLines,
} from "./head-scan.ts";

/** What routing and key extraction read from request headers: a Headers object satisfies it,
 * and so does the socket path's view over parsed fields. */
export interface HeaderLookup {
  /** All values of the header joined with ", ", or null. */
  get(name: string): string | null;
}

/** A header as received: original name, lowercase name, value. */
export interface HeaderField {
  name: string;
  lower: string;
  value: string;
}

export class HeadError extends Error {
  constructor(readonly status: number, readonly reason: string) {
    super(reason);
  }
}

/** Finds CRLF CRLF lying wholly in buf[from, end); returns the index just past it, or -1. A
 * search that resumes passes from = (where the last one stopped) - 3. */
export function findHeadEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from + 3; i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** An index buffer for heads of up to maxFields fields. A connection keeps one and reuses it for
 * each head it reads: heads on one connection are handled one at a time. */
export function indexFor(maxFields: number): Int32Array {
  return new Int32Array(2 + (maxFields + 1) * FIELD_WORDS);
}

/** Runs the head-scan kernel over the header lines of the head in buf[.., end) into index. */
export function scanFields(buf: Uint8Array, from: number, end: number, index: Int32Array, tooMany: number): Int32Array {
  const limit = (index.length - 2) / FIELD_WORDS - 1;
  const code = scanHeaderLines(buf, from, end - 2, index, limit);
  if (code === HEAD_TOO_MANY) throw new HeadError(tooMany, `more than ${limit} header fields`);
  if (code !== HEAD_OK) throw new HeadError(400, HEAD_ERRORS[code]);
  return index;
}

const NO_TOKENS: string[] = [], KEEP_ALIVE = ["keep-alive"], CLOSE = ["close"];

export class ParsedHead implements HeaderLookup {
  private decoded: HeaderField[] | null = null;
  private tokens: string[] | null = null;

  /** buf[0, end) is the head, through its final CRLF CRLF; body bytes may follow in buf. */
  constructor(readonly buf: Uint8Array, readonly index: Int32Array, readonly end: number) {}

  get count(): number { return this.index[1]; }
  id(k: number): number { return this.index[2 + k * FIELD_WORDS + 4]; }
  nameStart(k: number): number { return this.index[2 + k * FIELD_WORDS]; }
  valueEnd(k: number): number { return this.index[2 + k * FIELD_WORDS + 3]; }

  value(k: number): string {
    const at = 2 + k * FIELD_WORDS;
    return latin1(this.buf, this.index[at + 2], this.index[at + 3]);
  }

  lowerName(k: number): string {
    const at = 2 + k * FIELD_WORDS;
    return lowerLatin1(this.buf, this.index[at], this.index[at + 1]);
  }

  /** Every field as strings (made on first use: routes on headers, keys from headers). */
  get fields(): HeaderField[] {
    if (this.decoded) return this.decoded;
    const out: HeaderField[] = [];
    for (let k = 0; k < this.count; k++) {
      const at = 2 + k * FIELD_WORDS;
      out.push({ name: latin1(this.buf, this.index[at], this.index[at + 1]), lower: this.lowerName(k), value: this.value(k) });
    }
    return this.decoded = out;
  }

  /** All values of a well-known field joined with ", ", or null. */
  joined(id: number): string | null {
    let v: string | null = null;
    for (let k = 0; k < this.count; k++) if (this.id(k) === id) v = v === null ? this.value(k) : `${v}, ${this.value(k)}`;
    return v;
  }

  /** How many fields have this well-known id. */
  countOf(id: number): number {
    let n = 0;
    for (let k = 0; k < this.count; k++) if (this.id(k) === id) n++;
    return n;
  }

  /** HeaderLookup: any field by name, all values joined. */
  get(name: string): string | null {
    const lower = name.toLowerCase();
    let v: string | null = null;
    for (const f of this.fields) if (f.lower === lower) v = v === null ? f.value : `${v}, ${f.value}`;
    return v;
  }

  /** The lowercase tokens of the Connection fields (read once). */
  connectionTokens(): string[] {
    if (this.tokens) return this.tokens;
    if (this.countOf(K_CONNECTION) === 1) {
      for (let k = 0; k < this.count; k++) {
        if (this.id(k) !== K_CONNECTION) continue;
        if (this.valueIs(k, "keep-alive")) return this.tokens = KEEP_ALIVE;
        if (this.valueIs(k, "close")) return this.tokens = CLOSE;
      }
    }
    const v = this.joined(K_CONNECTION);
    if (v === null) return this.tokens = NO_TOKENS;
    const lower = v.toLowerCase();
    if (lower === "keep-alive") return this.tokens = KEEP_ALIVE;
    if (lower === "close") return this.tokens = CLOSE;
    const out: string[] = [];
    if (v !== null) for (const t of v.split(",")) { const x = t.trim().toLowerCase(); if (x) out.push(x); }
    return this.tokens = out;
  }

  /** Connection tokens that name other fields to drop (not close, keep-alive or upgrade). */
  connectionNamed(): string[] {
    const t = this.connectionTokens();
    if (t === NO_TOKENS || t === KEEP_ALIVE || t === CLOSE) return NO_TOKENS;
    return t.filter((x) => x !== "close" && x !== "keep-alive" && x !== "upgrade");
  }

  /** Whether field k's value is `lower` (ASCII, any case), read from the bytes. */
  private valueIs(k: number, lower: string): boolean {
    const at = 2 + k * FIELD_WORDS, start = this.index[at + 2], end = this.index[at + 3];
    if (end - start !== lower.length) return false;
    for (let i = 0; i < lower.length; i++) if ((this.buf[start + i] | 0x20) !== lower.charCodeAt(i)) return false;
    return true;
  }

  /** A value of 1 to 15 plain digits as a number, else -1 (then the slow path judges it). */
  private digits(k: number): number {
    const at = 2 + k * FIELD_WORDS, start = this.index[at + 2], end = this.index[at + 3];
    if (end <= start || end - start > 15) return -1;
    let n = 0;
    for (let i = start; i < end; i++) {
      const d = this.buf[i] - 0x30;
      if (d < 0 || d > 9) return -1;
      n = n * 10 + d;
    }
    return n;
  }

  /** Content-Length (-1: none) and chunked, as framing() read them. */
  contentLength = -1;
  chunked = false;

  /** Reads Content-Length and Transfer-Encoding into contentLength and chunked, so that only
   * one meaning is possible. */
  framing(): void {
    let contentLength = -1, chunked = false, te = 0;
    for (let k = 0; k < this.count; k++) {
      const id = this.id(k);
      if (id === K_CONTENT_LENGTH) {
        const n = this.digits(k);
        if (n >= 0) {
          if (contentLength >= 0 && n !== contentLength) throw new HeadError(400, "differing Content-Length values");
          contentLength = n;
          continue;
        }
        const raw = this.value(k);
        for (const part of raw.split(",")) {
          const v = part.trim();
          if (!/^[0-9]{1,15}$/.test(v)) throw new HeadError(400, `malformed Content-Length "${raw}"`);
          const n = Number(v);
          if (contentLength >= 0 && n !== contentLength) throw new HeadError(400, "differing Content-Length values");
          contentLength = n;
        }
      } else if (id === K_TRANSFER_ENCODING) {
        const raw = this.value(k);
        if (te++ > 0 || raw.toLowerCase() !== "chunked") {
          throw new HeadError(400, `Transfer-Encoding other than a single final chunked ("${raw}")`);
        }
        chunked = true;
      }
    }
    if (chunked && contentLength >= 0) throw new HeadError(400, "both Content-Length and Transfer-Encoding");
    this.contentLength = contentLength;
    this.chunked = chunked;
  }
}
