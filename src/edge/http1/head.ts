// Shared parts of strict HTTP/1.1 head parsing (RFC 9112): header lines, and the framing headers
// whose ambiguity request smuggling lives in. Anything not clearly valid is an error, never a guess.

/** A header as received: original name (forwarded as is), lowercase name (for lookups), value. */
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

// RFC 9110 field-name = token; the colon follows it directly (no whitespace before it).
// field-value: VCHAR, obs-text, SP, HTAB; no CTL (NUL, bare CR and LF included).
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$/;

/** Parses the header lines of a head (after the start line); throws HeadError(400) on any flaw. */
export function parseHeaderLines(lines: string[], from: number, maxCount: number): HeaderField[] {
  const fields: HeaderField[] = [];
  for (let i = from; i < lines.length; i++) {
    const line = lines[i];
    if (line === "") continue;
    const c = line.charCodeAt(0);
    if (c === 0x20 || c === 0x09) throw new HeadError(400, "obsolete line folding");
    const m = HEADER_LINE.exec(line);
    if (!m) throw new HeadError(400, describeBadLine(line));
    if (fields.length >= maxCount) throw new HeadError(431, `more than ${maxCount} header fields`);
    fields.push({ name: m[1], lower: m[1].toLowerCase(), value: m[2] });
  }
  return fields;
}

function describeBadLine(line: string): string {
  const colon = line.indexOf(":");
  if (colon < 0) return "header line without a colon";
  if (/[ \t]$/.test(line.slice(0, colon))) return "whitespace before the colon";
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(line.slice(0, colon))) return "invalid character in a header name";
  return "invalid character in a header value";
}

/** Splits a head (start line through the final CRLF CRLF, exclusive) into lines; bare CR or LF
 * anywhere is an error, since a peer might read it as a line end where we do not. */
export function splitHeadLines(head: string): string[] {
  const lines = head.split("\r\n");
  for (const line of lines) {
    if (line.includes("\r")) throw new HeadError(400, "bare CR in the head");
    if (line.includes("\n")) throw new HeadError(400, "bare LF in the head");
  }
  return lines;
}

export interface Framing {
  /** -1 when there is no Content-Length. */
  contentLength: number;
  chunked: boolean;
}

/** Content-Length and Transfer-Encoding, read so that only one meaning is possible. */
export function readFraming(fields: HeaderField[]): Framing {
  let contentLength = -1, chunked = false, teSeen = false;
  for (const f of fields) {
    if (f.lower === "content-length") {
      for (const part of f.value.split(",")) {
        const v = part.trim();
        if (!/^[0-9]{1,15}$/.test(v)) throw new HeadError(400, `malformed Content-Length "${f.value}"`);
        const n = Number(v);
        if (contentLength >= 0 && n !== contentLength) throw new HeadError(400, "differing Content-Length values");
        contentLength = n;
      }
    } else if (f.lower === "transfer-encoding") {
      if (teSeen || f.value.toLowerCase() !== "chunked") {
        throw new HeadError(400, `Transfer-Encoding other than a single final chunked ("${f.value}")`);
      }
      teSeen = chunked = true;
    }
  }
  if (chunked && contentLength >= 0) throw new HeadError(400, "both Content-Length and Transfer-Encoding");
  return { contentLength, chunked };
}

/** The comma-separated tokens of every field with this name, lowercased. */
export function tokens(fields: HeaderField[], lower: string): string[] {
  const out: string[] = [];
  for (const f of fields) {
    if (f.lower !== lower) continue;
    for (const t of f.value.split(",")) { const v = t.trim().toLowerCase(); if (v) out.push(v); }
  }
  return out;
}

export function fieldValue(fields: HeaderField[], lower: string): string | null {
  for (const f of fields) if (f.lower === lower) return f.value;
  return null;
}

/** Finds CRLF CRLF in buf[from, end); returns the index just past it, or -1. */
export function findHeadEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = Math.max(from, 3); i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

/** Bytes as a Latin-1 string (every byte one char), so header bytes round-trip exactly. */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 8192)) as unknown as number[]);
  }
  return s;
}

export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
