// An HTTP/2 request's fields as the HTTP/1.1 head the socket path reads, and the requests HTTP/2
// calls malformed (RFC 9113 §8.2, §8.3).
import { test } from "node:test";
import assert from "node:assert/strict";
import { http1Request, MalformedRequest } from "./request.ts";

const text = (b: Uint8Array) => String.fromCharCode(...b);
const base: [string, string][] = [[":method", "GET"], [":scheme", "https"], [":path", "/a?b=1"], [":authority", "example.com"]];

test("h2 request: pseudo-fields become the request line and Host, cookies are joined, te: trailers is dropped", () => {
  const r = http1Request([...base, ["cookie", "a=1"], ["accept", "*/*"], ["cookie", "b=2"], ["te", "trailers"]], true);
  assert.equal(text(r.head), "GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\naccept: */*\r\ncookie: a=1; b=2\r\n\r\n");
  assert.equal(r.chunked, false);
});

test("h2 request: a body without content-length goes chunked; with one, the length is kept", () => {
  const post: [string, string][] = [[":method", "POST"], ...base.slice(1)];
  assert.match(text(http1Request(post, false).head), /transfer-encoding: chunked\r\n\r\n$/);
  const sized = http1Request([...post, ["content-length", "12"]], false);
  assert.equal(sized.contentLength, 12);
  assert.match(text(sized.head), /content-length: 12\r\n\r\n$/);
  assert.doesNotMatch(text(sized.head), /transfer-encoding/);
});

test("h2 request: malformed requests are refused, each with its reason", () => {
  const cases: [[string, string][], RegExp][] = [
    [[...base, ["Accept", "x"]], /uppercase/],
    [[...base, ["connection", "keep-alive"]], /connection-specific/],
    [[...base, ["transfer-encoding", "chunked"]], /connection-specific/],
    [[...base, ["te", "gzip"]], /te: gzip/],
    [[["accept", "x"], ...base], /after a regular field/],
    [[...base, [":method", "POST"]], /more than once/],
    [[...base, [":status", "200"]], /pseudo-field :status/],
    [[...base, ["host", "other.com"]], /differs from :authority/],
    [[...base, ["x-a", " padded"]], /whitespace/],
    [[...base, ["x-a", "a\nb"]], /NUL, CR or LF/],
    [[...base, ["content-length", "1x"]], /content-length/],
    [[[":method", "CONNECT"], [":authority", "a:443"]], /CONNECT/],
    [[[":method", "GET"], [":authority", "a"]], /no :scheme or :path/],
  ];
  for (const [fields, reason] of cases) assert.throws(() => http1Request(fields, true), (e: Error) => e instanceof MalformedRequest && reason.test(e.message), String(reason));
});
