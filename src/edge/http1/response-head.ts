// The upstream's response head, read as strictly as requests: an upstream that frames a
// response two ways could desynchronise the connection we reuse.
import { type HeaderField, HeadError, parseHeaderLines, readFraming, splitHeadLines, tokens } from "./head.ts";

export interface ResponseHead {
  status: number;
  reason: string;
  minor: 0 | 1;
  fields: HeaderField[];
  /** "length": contentLength bytes; "chunked"; "close": until the upstream closes; "none". */
  body: "none" | "length" | "chunked" | "close";
  contentLength: number;
  keepAlive: boolean;
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;

export function parseResponseHead(head: string, requestMethod: string): ResponseHead {
  const lines = splitHeadLines(head);
  const m = STATUS_LINE.exec(lines[0]);
  if (!m) throw new HeadError(502, "malformed status line from upstream");
  const minor = m[1] === "1" ? 1 : 0, status = Number(m[2]);
  const fields = parseHeaderLines(lines, 1, 1000);
  const { contentLength, chunked } = readFraming(fields);
  const conn = tokens(fields, "connection");
  let keepAlive = minor === 1 ? !conn.includes("close") : conn.includes("keep-alive");
  let body: ResponseHead["body"];
  if (requestMethod === "HEAD" || status < 200 || status === 204 || status === 304) body = "none";
  else if (chunked) body = "chunked";
  else if (contentLength >= 0) body = "length";
  else { body = "close"; keepAlive = false; }
  return { status, reason: m[3] ?? "", minor, fields, body, contentLength, keepAlive };
}
