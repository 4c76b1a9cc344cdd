// The head-scan kernel: one pass over a head's header lines that validates every byte as RFC 9112
// requires and writes an index of where each field's name and value are, with well-known fields
// classified by id. Nothing is decoded to strings here: the socket path forwards byte ranges and
// decodes only what it must read.
//
// Index layout (Int32Array): [0] error (HEAD_OK or a HEAD_* code), [1] field count,
// then per field k at 2 + k * FIELD_WORDS: nameStart, nameEnd, valueStart, valueEnd, known id.

export const FIELD_WORDS = 5;
export const HEAD_OK = 0;
export const HEAD_BARE_CR = 1;
export const HEAD_BARE_LF = 2;
export const HEAD_OBS_FOLD = 3;
export const HEAD_NO_COLON = 4;
export const HEAD_BAD_NAME = 5;
export const HEAD_SPACE_BEFORE_COLON = 6;
export const HEAD_BAD_VALUE = 7;
export const HEAD_TOO_MANY = 8;

export const HEAD_ERRORS: Record<number, string> = {
  [HEAD_BARE_CR]: "bare CR in the head",
  [HEAD_BARE_LF]: "bare LF in the head",
  [HEAD_OBS_FOLD]: "obsolete line folding",
  [HEAD_NO_COLON]: "header line without a colon",
  [HEAD_BAD_NAME]: "invalid character in a header name",
  [HEAD_SPACE_BEFORE_COLON]: "whitespace before the colon",
  [HEAD_BAD_VALUE]: "invalid character in a header value",
};

// Well-known fields: the ones forwarding reads or rewrites. Order is their id (1-based).
export const KNOWN = [
  "host", "content-length", "transfer-encoding", "connection", "upgrade", "keep-alive",
  "proxy-connection", "te", "trailer", "proxy-authenticate", "proxy-authorization",
  "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "via", "x-request-id",
  "cookie", "expect",
] as const;
export const K_HOST = 1, K_CONTENT_LENGTH = 2, K_TRANSFER_ENCODING = 3, K_CONNECTION = 4, K_UPGRADE = 5;
export const K_KEEP_ALIVE = 6, K_PROXY_CONNECTION = 7, K_TE = 8, K_TRAILER = 9, K_PROXY_AUTHENTICATE = 10;
export const K_PROXY_AUTHORIZATION = 11, K_X_FORWARDED_FOR = 12, K_X_FORWARDED_PROTO = 13;
export const K_X_FORWARDED_HOST = 14, K_X_REAL_IP = 15, K_VIA = 16, K_X_REQUEST_ID = 17, K_COOKIE = 18;

/** Byte classes: 1 = tchar (RFC 9110 token character). */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

/** A byte a field value may hold: VCHAR, obs-text, SP or HTAB (RFC 9110 §5.5). The chunked
 * reader judges trailer values with it too. */
export function fieldValueByte(c: number): boolean {
  return c >= 0x20 ? c !== 0x7f : c === 0x09;
}

// Known names by length, lowercase bytes, for matching without building a string.
const KNOWN_BYTES = KNOWN.map((n) => Uint8Array.from(n, (c) => c.charCodeAt(0)));
const BY_LENGTH: number[][] = [];
KNOWN_BYTES.forEach((b, i) => (BY_LENGTH[b.length] ??= []).push(i));

function knownId(buf: Uint8Array, start: number, end: number): number {
  const candidates = BY_LENGTH[end - start];
  if (!candidates) return 0;
  outer: for (const i of candidates) {
    const name = KNOWN_BYTES[i];
    for (let k = 0; k < name.length; k++) if ((buf[start + k] | 0x20) !== name[k]) continue outer;
    return i + 1;
  }
  return 0;
}

/** Scans header lines in buf[from, end) (end: the index of the final CRLF's CR of the blank
 * line, i.e. head end - 2); writes the index; returns the error code. */
export function scanHeaderLines(buf: Uint8Array, from: number, end: number, index: Int32Array, maxFields: number): number {
  let n = 0, i = from;
  while (i < end) {
    const lineStart = i;
    let c = buf[i];
    if (c === 0x20 || c === 0x09) return fail(index, HEAD_OBS_FOLD, n);
    // Name: token characters up to the colon.
    while (i < end && TCHAR[c = buf[i]] === 1) i++;
    const nameEnd = i;
    if (i >= end || c !== 0x3a) {
      if (c === 0x20 || c === 0x09) return fail(index, HEAD_SPACE_BEFORE_COLON, n);
      if (c === 0x0d || c === 0x0a || i >= end) return fail(index, c === 0x0a ? HEAD_BARE_LF : HEAD_NO_COLON, n);
      return fail(index, HEAD_BAD_NAME, n);
    }
    if (nameEnd === lineStart) return fail(index, HEAD_BAD_NAME, n);
    i++;
    while (i < end && ((c = buf[i]) === 0x20 || c === 0x09)) i++;
    const valueStart = i;
    let valueEnd = i;
    // Value: VCHAR, obs-text, SP, HTAB up to CR LF.
    for (; i < end; i++) {
      c = buf[i];
      if (c === 0x0d) break;
      if (!fieldValueByte(c)) return fail(index, c === 0x0a ? HEAD_BARE_LF : HEAD_BAD_VALUE, n);
      if (c !== 0x20 && c !== 0x09) valueEnd = i + 1;
    }
    if (i >= end || buf[i + 1] !== 0x0a) return fail(index, HEAD_BARE_CR, n);
    if (n >= maxFields) return fail(index, HEAD_TOO_MANY, n);
    const at = 2 + n * FIELD_WORDS;
    index[at] = lineStart;
    index[at + 1] = nameEnd;
    index[at + 2] = valueStart;
    index[at + 3] = valueEnd;
    index[at + 4] = knownId(buf, lineStart, nameEnd);
    n++;
    i += 2;
  }
  index[0] = HEAD_OK;
  index[1] = n;
  return HEAD_OK;
}

function fail(index: Int32Array, code: number, n: number): number {
  index[0] = code;
  index[1] = n;
  return code;
}
