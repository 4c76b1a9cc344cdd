// The head-scan kernel (twin of src/edge/http1/head-scan.ts): validates the header lines of an
// HTTP/1.1 head in HEADBUF and writes the field index to HEADIDX. Same codes, same index.
import { HEADBUF_OFF, HEADIDX_OFF } from "./layout";

const FIELD_WORDS = 5;
const HEAD_OK = 0;
const HEAD_BARE_CR = 1;
const HEAD_BARE_LF = 2;
const HEAD_OBS_FOLD = 3;
const HEAD_NO_COLON = 4;
const HEAD_BAD_NAME = 5;
const HEAD_SPACE_BEFORE_COLON = 6;
const HEAD_BAD_VALUE = 7;
const HEAD_TOO_MANY = 8;

// RFC 9110 tchar.
@inline function tchar(c: i32): bool {
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) return true;
  return c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a ||
    c == 0x2b || c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
}

@inline function byte(i: i32): i32 {
  return <i32>load<u8>(HEADBUF_OFF + i);
}

// Whether the name at [start, start + name.length) equals `name` (lowercase) ignoring case.
function nameIs(start: i32, len: i32, name: string): bool {
  if (len != name.length) return false;
  for (let k = 0; k < len; k++) if ((byte(start + k) | 0x20) != name.charCodeAt(k)) return false;
  return true;
}

// Ids as in head-scan.ts KNOWN (1-based).
function knownId(start: i32, end: i32): i32 {
  const len = end - start;
  switch (len) {
    case 2: return nameIs(start, len, "te") ? 8 : 0;
    case 3: return nameIs(start, len, "via") ? 16 : 0;
    case 4: return nameIs(start, len, "host") ? 1 : 0;
    case 6: return nameIs(start, len, "cookie") ? 18 : nameIs(start, len, "expect") ? 19 : 0;
    case 7: return nameIs(start, len, "upgrade") ? 5 : nameIs(start, len, "trailer") ? 9 : 0;
    case 9: return nameIs(start, len, "x-real-ip") ? 15 : 0;
    case 10: return nameIs(start, len, "connection") ? 4 : nameIs(start, len, "keep-alive") ? 6 : 0;
    case 12: return nameIs(start, len, "x-request-id") ? 17 : 0;
    case 14: return nameIs(start, len, "content-length") ? 2 : 0;
    case 15: return nameIs(start, len, "x-forwarded-for") ? 12 : 0;
    case 16: return nameIs(start, len, "proxy-connection") ? 7 : nameIs(start, len, "x-forwarded-host") ? 14 : 0;
    case 17: return nameIs(start, len, "transfer-encoding") ? 3 : nameIs(start, len, "x-forwarded-proto") ? 13 : 0;
    case 18: return nameIs(start, len, "proxy-authenticate") ? 10 : 0;
    case 19: return nameIs(start, len, "proxy-authorization") ? 11 : 0;
  }
  return 0;
}

@inline function fail(code: i32, n: i32): i32 {
  store<i32>(HEADIDX_OFF, code);
  store<i32>(HEADIDX_OFF + 4, n);
  return code;
}

/** Scans header lines in HEADBUF[from, end) (end: the blank line's CR); writes the index. */
export function scanHead(from: i32, end: i32, maxFields: i32): i32 {
  let n = 0, i = from;
  while (i < end) {
    const lineStart = i;
    let c = byte(i);
    if (c == 0x20 || c == 0x09) return fail(HEAD_OBS_FOLD, n);
    while (i < end && tchar(c = byte(i))) i++;
    const nameEnd = i;
    if (i >= end || c != 0x3a) {
      if (c == 0x20 || c == 0x09) return fail(HEAD_SPACE_BEFORE_COLON, n);
      if (c == 0x0d || c == 0x0a || i >= end) return fail(c == 0x0a ? HEAD_BARE_LF : HEAD_NO_COLON, n);
      return fail(HEAD_BAD_NAME, n);
    }
    if (nameEnd == lineStart) return fail(HEAD_BAD_NAME, n);
    i++;
    while (i < end && ((c = byte(i)) == 0x20 || c == 0x09)) i++;
    const valueStart = i;
    let valueEnd = i;
    for (; i < end; i++) {
      c = byte(i);
      if (c == 0x0d) break;
      if ((c < 0x20 && c != 0x09) || c == 0x7f) return fail(c == 0x0a ? HEAD_BARE_LF : HEAD_BAD_VALUE, n);
      if (c != 0x20 && c != 0x09) valueEnd = i + 1;
    }
    if (i >= end || byte(i + 1) != 0x0a) return fail(HEAD_BARE_CR, n);
    if (n >= maxFields) return fail(HEAD_TOO_MANY, n);
    const at = HEADIDX_OFF + ((2 + n * FIELD_WORDS) << 2);
    store<i32>(at, lineStart);
    store<i32>(at + 4, nameEnd);
    store<i32>(at + 8, valueStart);
    store<i32>(at + 12, valueEnd);
    store<i32>(at + 16, knownId(lineStart, nameEnd));
    n++;
    i += 2;
  }
  return fail(HEAD_OK, n);
}
