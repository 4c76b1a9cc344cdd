import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeProxyV1, encodeProxyV2, parseProxyHeader, V1_MAX, V2_MAX, V2_SIGNATURE } from "./proxy-protocol.ts";

const text = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const src4 = { address: "192.0.2.10", port: 51234 }, dst4 = { address: "198.51.100.1", port: 443 };

test("proxy-protocol: v1 TCP4 and TCP6 lines encode as the spec writes them and parse back", () => {
  assert.equal(String.fromCharCode(...encodeProxyV1(src4, dst4)), "PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n");
  const six = encodeProxyV1({ address: "2001:db8::1", port: 1 }, { address: "2001:db8::2", port: 2 });
  assert.equal(String.fromCharCode(...six), "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
  const r = parseProxyHeader(six);
  assert.ok(r.status === "ok");
  assert.equal(r.length, six.length);
  assert.deepEqual(r.header.source, { address: "2001:db8::1", port: 1 });
  assert.deepEqual(r.header.destination, { address: "2001:db8::2", port: 2 });
});

test("proxy-protocol: v1 header followed by data reports its own length; UNKNOWN carries no addresses", () => {
  const buf = text("PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\nGET / HTTP/1.1\r\n");
  const r = parseProxyHeader(buf);
  assert.ok(r.status === "ok");
  assert.equal(String.fromCharCode(...buf.subarray(r.length, r.length + 3)), "GET");
  assert.deepEqual(r.header.source, { address: "10.0.0.1", port: 1000 });
  const u = parseProxyHeader(text("PROXY UNKNOWN\r\n"));
  assert.ok(u.status === "ok" && u.header.source === null && u.header.transport === "unknown");
});

test("proxy-protocol: an IPv4 client on an IPv6 listener is sent as TCP6 with a mapped address", () => {
  const line = String.fromCharCode(...encodeProxyV1(src4, { address: "::1", port: 80 }));
  assert.equal(line, "PROXY TCP6 ::ffff:c000:20a ::1 51234 80\r\n");
  const mapped = encodeProxyV1({ address: "::ffff:192.0.2.10", port: 5 }, dst4);
  assert.equal(String.fromCharCode(...mapped), "PROXY TCP4 192.0.2.10 198.51.100.1 5 443\r\n");
});

test("proxy-protocol: a header arriving a byte at a time is incomplete until its last byte", () => {
  for (const whole of [encodeProxyV1(src4, dst4), encodeProxyV2(src4, dst4, { authority: "api.example.com" })]) {
    for (let n = 1; n < whole.length; n++) assert.equal(parseProxyHeader(whole.subarray(0, n)).status, "incomplete", `${n} bytes`);
    assert.equal(parseProxyHeader(whole).status, "ok");
  }
});

test("proxy-protocol: v2 IPv4 layout, byte for byte, and the authority TLV", () => {
  const h = encodeProxyV2(src4, dst4, { authority: "a.test" });
  assert.deepEqual(h.subarray(0, 12), V2_SIGNATURE);
  assert.equal(h[12], 0x21); // version 2, PROXY
  assert.equal(h[13], 0x11); // AF_INET, STREAM
  assert.equal((h[14] << 8) | h[15], 12 + 3 + 6);
  assert.deepEqual([...h.subarray(16, 28)], [192, 0, 2, 10, 198, 51, 100, 1, 0xc8, 0x22, 0x01, 0xbb]);
  assert.deepEqual([...h.subarray(28, 31)], [0x02, 0, 6]);
  const r = parseProxyHeader(h);
  assert.ok(r.status === "ok");
  assert.deepEqual(r.header, {
    version: 2, command: "proxy", transport: "tcp", source: src4, destination: dst4, authority: "a.test",
  });
});

test("proxy-protocol: v2 IPv6 and LOCAL parse; other TLVs are skipped", () => {
  const h = encodeProxyV2({ address: "2001:db8::5", port: 7 }, { address: "::1", port: 8 });
  const r = parseProxyHeader(h);
  assert.ok(r.status === "ok" && r.header.source?.address === "2001:db8::5" && r.header.destination?.port === 8);
  const local = new Uint8Array(16 + 5);
  local.set(V2_SIGNATURE);
  local[12] = 0x20; // LOCAL
  local[13] = 0x00;
  local[15] = 5;
  local.set([0x04, 0, 2, 0xab, 0xcd], 16); // a NOOP TLV
  const l = parseProxyHeader(local);
  assert.ok(l.status === "ok" && l.header.command === "local" && l.header.source === null && l.length === 21);
});

test("proxy-protocol: missing, malformed and too long headers are refused with their kind", () => {
  const kind = (b: Uint8Array) => { const r = parseProxyHeader(b); return r.status === "invalid" ? r.kind : r.status; };
  assert.equal(kind(text("GET / HTTP/1.1\r\n")), "missing");
  assert.equal(kind(text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 extra\r\n")), "malformed");
  assert.equal(kind(text("PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n")), "malformed");
  assert.equal(kind(text("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n")), "malformed");
  assert.equal(kind(text("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n")), "malformed");
  assert.equal(kind(text("PROXY TCP4 " + "1".repeat(V1_MAX))), "too_long");
  const v2 = encodeProxyV2(src4, dst4);
  const bad = v2.slice();
  bad[12] = 0x31; // version 3
  assert.equal(kind(bad), "malformed");
  const huge = v2.slice();
  huge[14] = (V2_MAX >> 8) + 1;
  assert.equal(kind(huge), "too_long");
  const short = v2.slice();
  short[15] = 4; // shorter than the IPv4 addresses
  assert.equal(kind(short.subarray(0, 20)), "malformed");
  const brokenTlv = encodeProxyV2(src4, dst4, { authority: "x" }).slice();
  brokenTlv[30] = 9; // TLV length past the end
  assert.equal(kind(brokenTlv), "malformed");
});
