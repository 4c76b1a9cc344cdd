// The TLS ClientHello, read only as far as TLS passthrough needs: the server name (SNI) a client
// asks for, without decrypting anything (RFC 8446 4.1.2, RFC 6066 3). Pure and incremental: the
// hello may arrive over several reads and, rarely, several records.

export type HelloParse =
  | { status: "incomplete" }
  | { status: "ok"; sni: string | null }
  | { status: "invalid"; reason: string };

/** The most ClientHello bytes read before giving up (records included); real hellos, post-quantum
 * key shares included, are under 2 KiB. */
export const MAX_HELLO_BYTES = 16 * 1024;

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const HOST_NAME = 0x00;

/** Reads the ClientHello at the start of `buf` (what a client sent first). */
export function parseClientHello(buf: Uint8Array): HelloParse {
  // The handshake message, gathered from the records it spans.
  const message: Uint8Array[] = [];
  let gathered = 0, need = -1;
  for (let at = 0; ;) {
    if (at >= MAX_HELLO_BYTES) return invalid(`no complete ClientHello in ${MAX_HELLO_BYTES} bytes`);
    if (buf.length < at + 5) return { status: "incomplete" };
    if (buf[at] !== HANDSHAKE) return invalid(at === 0 ? "not a TLS handshake record" : "ClientHello interrupted by another record type");
    if (buf[at + 1] !== 0x03) return invalid(`TLS record version ${buf[at + 1]}.${buf[at + 2]}`);
    const len = (buf[at + 3] << 8) | buf[at + 4];
    if (len === 0 || len > 16384) return invalid(`TLS record of ${len} bytes`);
    if (buf.length < at + 5 + len) {
      if (at + 5 + len > MAX_HELLO_BYTES) return invalid(`no complete ClientHello in ${MAX_HELLO_BYTES} bytes`);
      return { status: "incomplete" };
    }
    message.push(buf.subarray(at + 5, at + 5 + len));
    gathered += len;
    at += 5 + len;
    if (need < 0 && gathered >= 4) {
      const head = concat(message, 4);
      if (head[0] !== CLIENT_HELLO) return invalid(`handshake message ${head[0]} instead of ClientHello`);
      need = 4 + ((head[1] << 16) | (head[2] << 8) | head[3]);
      if (need > MAX_HELLO_BYTES) return invalid(`ClientHello of ${need} bytes`);
    }
    if (need >= 0 && gathered >= need) return readHello(concat(message, need).subarray(4));
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts[0].length >= length) return parts[0].subarray(0, length);
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    const n = Math.min(p.length, length - at);
    out.set(p.subarray(0, n), at);
    at += n;
    if (at === length) break;
  }
  return out;
}

function invalid(reason: string): HelloParse {
  return { status: "invalid", reason };
}

/** The ClientHello body: version, random, session id, ciphers, compression, extensions. */
function readHello(b: Uint8Array): HelloParse {
  let at = 2 + 32; // legacy_version, random
  const skip = (lengthBytes: 1 | 2): boolean => {
    if (at + lengthBytes > b.length) return false;
    const n = lengthBytes === 1 ? b[at] : (b[at] << 8) | b[at + 1];
    at += lengthBytes + n;
    return at <= b.length;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return invalid("ClientHello truncated before its extensions");
  if (at === b.length) return { status: "ok", sni: null }; // no extensions at all
  if (at + 2 > b.length) return invalid("ClientHello truncated in its extensions");
  const end = at + 2 + ((b[at] << 8) | b[at + 1]);
  if (end > b.length) return invalid("ClientHello extensions longer than the message");
  for (at += 2; at < end;) {
    if (at + 4 > end) return invalid("malformed ClientHello extension");
    const type = (b[at] << 8) | b[at + 1], len = (b[at + 2] << 8) | b[at + 3];
    at += 4;
    if (at + len > end) return invalid("ClientHello extension longer than the extensions");
    if (type === EXT_SERVER_NAME) return readServerName(b.subarray(at, at + len));
    at += len;
  }
  return { status: "ok", sni: null };
}

function readServerName(e: Uint8Array): HelloParse {
  if (e.length < 2 || 2 + ((e[0] << 8) | e[1]) !== e.length) return invalid("malformed server_name extension");
  for (let at = 2; at < e.length;) {
    if (at + 3 > e.length) return invalid("malformed server_name extension");
    const kind = e[at], len = (e[at + 1] << 8) | e[at + 2];
    at += 3;
    if (at + len > e.length) return invalid("malformed server_name extension");
    if (kind === HOST_NAME) {
      const name = String.fromCharCode(...e.subarray(at, at + len)).toLowerCase();
      // A host name is letters, digits, hyphens and dots (RFC 6066: no trailing dot, ASCII).
      if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) return invalid(`server name ${JSON.stringify(name)} is not a host name`);
      return { status: "ok", sni: name };
    }
    at += len;
  }
  return { status: "ok", sni: null };
}
