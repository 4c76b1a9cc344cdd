// An HTTP/2 request's header list as the HTTP/1.1 head the socket path reads (RFC 9113 §8.3.1,
// RFC 9110 §7.6.1): pseudo-fields become the request line and Host, cookies are joined, the
// fields HTTP/2 forbids make the request malformed. The head is then parsed by the same codec as
// an HTTP/1.1 request, so both are routed, limited and forwarded alike.
import { latin1Bytes } from "../../http1/bytes.ts";
import { TCHAR } from "../../http1/head-scan.ts";

export class MalformedRequest extends Error {}

/** Connection-specific fields (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

export interface Http1Request {
  head: Uint8Array;
  method: string;
  /** Content-Length as sent, or -1. */
  contentLength: number;
  /** The body goes upstream chunked: no Content-Length, and more than the head will come. */
  chunked: boolean;
}

function checkName(name: string): void {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) throw new MalformedRequest(`uppercase in field name "${name}"`);
    if (TCHAR[c] !== 1) throw new MalformedRequest(`invalid character in field name "${name}"`);
  }
  if (name.length === 0) throw new MalformedRequest("empty field name");
}

function checkValue(name: string, v: string): void {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) throw new MalformedRequest(`NUL, CR or LF in the value of ${name}`);
  }
  if (v.length > 0) {
    const a = v.charCodeAt(0), z = v.charCodeAt(v.length - 1);
    if (a === 0x20 || a === 0x09 || z === 0x20 || z === 0x09) throw new MalformedRequest(`whitespace around the value of ${name}`);
  }
}

/** The HTTP/1.1 head for a request's fields; endStream: the HEADERS frame ended the stream. */
export function http1Request(fields: readonly [string, string][], endStream: boolean): Http1Request {
  let method = "", scheme = "", path = "", authority: string | null = null;
  let regular = false, contentLength = -1;
  const cookies: string[] = [];
  let lines = "";
  let host: string | null = null;
  for (const [name, value] of fields) {
    if (name.charCodeAt(0) === 0x3a) {
      if (regular) throw new MalformedRequest(`pseudo-field ${name} after a regular field`);
      checkValue(name, value);
      switch (name) {
        case ":method": if (method) throw dup(name); method = value; break;
        case ":scheme": if (scheme) throw dup(name); scheme = value; break;
        case ":path": if (path) throw dup(name); path = value; break;
        case ":authority": if (authority !== null) throw dup(name); authority = value; break;
        default: throw new MalformedRequest(`pseudo-field ${name} in a request`);
      }
      continue;
    }
    regular = true;
    checkName(name);
    checkValue(name, value);
    if (CONNECTION_SPECIFIC.has(name)) throw new MalformedRequest(`connection-specific field ${name}`);
    if (name === "te") {
      if (value !== "trailers") throw new MalformedRequest(`te: ${value} (only "trailers" is allowed)`);
      continue; // hop-by-hop: not forwarded
    }
    if (name === "cookie") { cookies.push(value); continue; }
    if (name === "host") { if (host !== null) throw dup(name); host = value; continue; }
    if (name === "content-length") {
      if (!/^[0-9]{1,15}$/.test(value)) throw new MalformedRequest(`content-length: ${value}`);
      if (contentLength >= 0 && Number(value) !== contentLength) throw new MalformedRequest("differing content-length values");
      contentLength = Number(value);
      continue;
    }
    lines += `${name}: ${value}\r\n`;
  }
  if (!method) throw new MalformedRequest("no :method");
  if (method === "CONNECT") throw new MalformedRequest("CONNECT is not proxied");
  if (!scheme || !path) throw new MalformedRequest("no :scheme or :path");
  if (authority !== null && host !== null && authority !== host) throw new MalformedRequest("host differs from :authority");
  const hostValue = authority ?? host;
  let head = `${method} ${path} HTTP/1.1\r\n`;
  if (hostValue !== null) head += `host: ${hostValue}\r\n`;
  head += lines;
  if (cookies.length > 0) head += `cookie: ${cookies.join("; ")}\r\n`;
  const chunked = contentLength < 0 && !endStream;
  if (contentLength >= 0) head += `content-length: ${contentLength}\r\n`;
  else if (chunked) head += "transfer-encoding: chunked\r\n";
  head += "\r\n";
  return { head: latin1Bytes(head), method, contentLength, chunked };
}

const dup = (name: string) => new MalformedRequest(`${name} more than once`);
