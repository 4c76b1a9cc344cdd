// Finding where a head ends, however the bytes arrive, and reading a parsed head's fields:
// framing (Content-Length, Transfer-Encoding) and Connection tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { findHeadEnd, HeadError, indexFor, ParsedHead, scanFields } from "./head.ts";
import { K_CONTENT_LENGTH, K_HOST } from "./head-scan.ts";

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

test("findHeadEnd: a search resumed 3 bytes before where the last stopped finds the end at every cut", () => {
  const bytes = enc("GET / HTTP/1.1\r\nHost: a\r\nX-A: \r\n\r\nbody\r\n\r\n");
  const headEnd = "GET / HTTP/1.1\r\nHost: a\r\nX-A: \r\n\r\n".length;
  assert.equal(findHeadEnd(bytes, 0, bytes.length), headEnd);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const first = findHeadEnd(bytes, 0, cut);
    if (cut < headEnd) {
      assert.equal(first, -1, `not found in the first ${cut} bytes`);
      assert.equal(findHeadEnd(bytes, Math.max(0, cut - 3), bytes.length), headEnd, `resumed after ${cut} bytes`);
    } else assert.equal(first, headEnd, `found in the first ${cut} bytes`);
  }
});

test("findHeadEnd: never matches CRLF CRLF that starts before `from` (a chunked body just read ends in one)", () => {
  const body = "0\r\n\r\n", next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  const bytes = enc(body + next);
  // The next head starts right after the body: the body's blank line is not its end, whatever
  // the offset the search starts at within it.
  for (let from = body.length - 3; from <= body.length; from++) {
    assert.equal(findHeadEnd(bytes, from, bytes.length), body.length + next.length, `from ${from}`);
  }
  assert.equal(findHeadEnd(enc("\r\n\r\n"), 1, 4), -1);
  assert.equal(findHeadEnd(enc("\r\n\r\n"), 0, 4), 4);
});

function head(text: string, maxFields = 20): ParsedHead {
  const buf = enc(text);
  const from = buf.indexOf(10) + 1;
  return new ParsedHead(buf, scanFields(buf, from, buf.length, indexFor(maxFields), 431), buf.length);
}

test("parsed head: Content-Length and Transfer-Encoding have one meaning or the head is refused", () => {
  const framing = (fields: string) => {
    const h = head(`X / HTTP/1.1\r\n${fields}\r\n`);
    h.framing();
    return [h.contentLength, h.chunked];
  };
  assert.deepEqual(framing(""), [-1, false]);
  assert.deepEqual(framing("Content-Length: 42\r\n"), [42, false]);
  assert.deepEqual(framing("Content-Length: 5\r\nContent-Length: 5\r\n"), [5, false]);
  assert.deepEqual(framing("Content-Length: 5, 5\r\n"), [5, false]);
  assert.deepEqual(framing("Content-Length: 000000000000007\r\n"), [7, false]);
  assert.deepEqual(framing("Transfer-Encoding: chunked\r\n"), [-1, true]);
  assert.deepEqual(framing("transfer-encoding: CHUNKED\r\n"), [-1, true]);
  const refused: [string, RegExp][] = [
    ["Content-Length: 5\r\nContent-Length: 6\r\n", /differing Content-Length values/],
    ["Content-Length: 5, 6\r\n", /differing Content-Length values/],
    ["Content-Length: +5\r\n", /malformed Content-Length/],
    ["Content-Length: 0x5\r\n", /malformed Content-Length/],
    ["Content-Length: 1234567890123456\r\n", /malformed Content-Length/],
    ["Content-Length:\r\n", /malformed Content-Length/],
    ["Transfer-Encoding: gzip, chunked\r\n", /Transfer-Encoding other than a single final chunked/],
    ["Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", /Transfer-Encoding other than a single final chunked/],
    ["Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", /both Content-Length and Transfer-Encoding/],
  ];
  for (const [fields, reason] of refused) {
    assert.throws(() => framing(fields), (e: unknown) => e instanceof HeadError && e.status === 400 && reason.test(e.reason), fields);
  }
});

test("parsed head: fields by id and by name, Connection tokens and the fields they name", () => {
  const h = head("X / HTTP/1.1\r\nHost: a.test\r\nX-Multi: 1\r\nConnection: Keep-Alive, X-Secret\r\nx-multi: 2\r\nConnection: upgrade\r\n\r\n");
  assert.equal(h.joined(K_HOST), "a.test");
  assert.equal(h.joined(K_CONTENT_LENGTH), null);
  assert.equal(h.countOf(K_HOST), 1);
  assert.equal(h.get("X-MULTI"), "1, 2");
  assert.equal(h.get("absent"), null);
  assert.deepEqual(h.connectionTokens(), ["keep-alive", "x-secret", "upgrade"]);
  assert.deepEqual(h.connectionNamed(), ["x-secret"]);
  assert.deepEqual(head("X / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n").connectionTokens(), ["close"]);
  assert.deepEqual(head("X / HTTP/1.1\r\nHost: a\r\n\r\n").connectionTokens(), []);
});

test("parsed head: too many fields is the caller's status, a malformed line 400", () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join("");
  assert.equal(head(`X / HTTP/1.1\r\n${lines(3)}\r\n`, 3).count, 3);
  assert.throws(() => head(`X / HTTP/1.1\r\n${lines(4)}\r\n`, 3), (e: unknown) => e instanceof HeadError && e.status === 431 && /more than 3 header fields/.test(e.reason));
  assert.throws(() => head("X / HTTP/1.1\r\nBad Name: v\r\n\r\n"), (e: unknown) => e instanceof HeadError && e.status === 400 && e.reason === "whitespace before the colon");
});
