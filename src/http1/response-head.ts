// The upstream's response head, read as strictly as requests: an upstream that frames a
// response two ways could desynchronise the connection we reuse.
import { HeadError, ParsedHead, scanFields } from "./head.ts";
import { fieldValueByte } from "./head-scan.ts";

export class ResponseHead extends ParsedHead {
  status = 0;
  minor: 0 | 1 = 1;
  /** Where the status line's CR is. */
  statusLineEnd = 0;
  /** "length": contentLength bytes; "chunked"; "close": until the upstream closes; "none". */
  body: "none" | "length" | "chunked" | "close" = "none";
  keepAlive = true;
}

/** Parses the head in buf[0, end) (end: just past the final CRLF CRLF). */
export function parseResponseHead(buf: Uint8Array, end: number, requestMethod: string, index: Int32Array): ResponseHead {
  // HTTP/1.x SP 3DIGIT [SP reason] CRLF
  const bad = () => new HeadError(502, "malformed status line from upstream");
  const prefix = [0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e];
  for (let k = 0; k < 7; k++) if (buf[k] !== prefix[k]) throw bad();
  const minorByte = buf[7];
  if ((minorByte !== 0x30 && minorByte !== 0x31) || buf[8] !== 0x20) throw bad();
  const d0 = buf[9] - 0x30, d1 = buf[10] - 0x30, d2 = buf[11] - 0x30;
  if (!(d0 >= 1 && d0 <= 9 && d1 >= 0 && d1 <= 9 && d2 >= 0 && d2 <= 9)) throw bad();
  let i = 12;
  if (buf[i] === 0x20) {
    for (i++; buf[i] !== 0x0d; i++) {
      const c = buf[i];
      if (!fieldValueByte(c) || i >= end) throw bad(); // reason-phrase: the bytes a field value may hold
    }
  }
  if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) throw bad();

  let head: ResponseHead;
  try {
    head = new ResponseHead(buf, scanFields(buf, i + 2, end, index, 502), end);
    head.framing();
  } catch (e) {
    // Whatever is wrong with a response head, it is a bad response from upstream.
    throw e instanceof HeadError && e.status !== 502 ? new HeadError(502, e.reason) : e;
  }
  head.status = d0 * 100 + d1 * 10 + d2;
  head.minor = minorByte === 0x31 ? 1 : 0;
  head.statusLineEnd = i;
  const conn = head.connectionTokens();
  head.keepAlive = head.minor === 1 ? !conn.includes("close") : conn.includes("keep-alive");
  const status = head.status;
  if (requestMethod === "HEAD" || status < 200 || status === 204 || status === 304) head.body = "none";
  else if (head.chunked) head.body = "chunked";
  else if (head.contentLength >= 0) head.body = "length";
  else { head.body = "close"; head.keepAlive = false; }
  return head;
}
