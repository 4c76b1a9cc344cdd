// The VRRP codec: v2/v3 adverts for IPv4 and IPv6 encoded to reference bytes and decoded back,
// checksums (with and without the pseudo-header), and every rejection reason, from crafted bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatIP, parseIP } from "./ip.ts";
import {
  type Advert, AUTH_NONE, AUTH_PASS, checkAdvert, decodeAdvert, encodeAdvert, type Expectation, internetChecksum,
  DROP_REASONS, parseIPv4Packet, passwordBytes, type ReceiveContext, VRRP_GROUP_V4, VRRP_GROUP_V6,
} from "./packet.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));
const ip = (s: string) => parseIP(s)!.bytes;

const v4 = (source: string, destination = "224.0.0.18") => ({ source: ip(source), destination: ip(destination) });

function rx(family: 4 | 6, endpoints: { source: Uint8Array; destination: Uint8Array }, extra: Partial<ReceiveContext> = {}): ReceiveContext {
  return { family, hopLimit: 255, endpoints, checksumMode: "pseudo-header", ...extra };
}

function advert(over: Partial<Advert> = {}): Advert {
  return {
    version: 3, vrid: 7, priority: 150, intervalCs: 100, addresses: [ip("10.200.1.100"), ip("10.200.1.101")],
    authType: AUTH_NONE, authData: new Uint8Array(8), ...over,
  };
}

test("vrrp: v2 advert with PASS auth encodes to the reference bytes and decodes back", () => {
  const a = advert({ version: 2, vrid: 51, priority: 100, addresses: [ip("10.200.1.100")], authType: AUTH_PASS, authData: passwordBytes("secret") });
  const bytes = encodeAdvert(a, 4, null);
  // Reference computed independently (Python struct + RFC 1071 sum).
  assert.deepEqual(bytes, hex("21 33 64 01 01 01 3152 0ac80164 736563726574 0000"));
  const d = decodeAdvert(bytes, rx(4, v4("10.200.1.1")));
  assert.ok(d.ok, JSON.stringify(d));
  assert.equal(d.advert.intervalCs, 100);
  assert.equal(d.advert.authType, AUTH_PASS);
  assert.deepEqual(d.advert.authData, passwordBytes("secret"));
});

test("vrrp: v3 IPv4 checksum covers the pseudo-header, or not with v2-style (v3_checksum_as_v2)", () => {
  const ends = v4("10.200.1.1");
  const pseudo = encodeAdvert(advert(), 4, ends);
  assert.deepEqual(pseudo, hex("31 07 96 02 00 64 33dd 0ac80164 0ac80165"));
  const asV2 = encodeAdvert(advert(), 4, ends, "v2-style");
  assert.equal((asV2[6] << 8) | asV2[7], 0x2039);
  assert.ok(decodeAdvert(pseudo, rx(4, ends)).ok);
  assert.ok(decodeAdvert(asV2, rx(4, ends, { checksumMode: "v2-style" })).ok);
  // Each mode rejects the other's checksum, and the pseudo-header binds the addresses.
  assert.equal(decodeAdvert(asV2, rx(4, ends)).ok, false);
  const moved = decodeAdvert(pseudo, rx(4, v4("10.200.1.2")));
  assert.ok(!moved.ok && moved.reason === "checksum");
});

test("vrrp: v3 IPv6 advert uses the IPv6 pseudo-header", () => {
  const ends = { source: ip("fe80::1"), destination: VRRP_GROUP_V6 };
  const a = advert({ vrid: 9, priority: 200, intervalCs: 50, addresses: [ip("2001:db8::9")] });
  const bytes = encodeAdvert(a, 6, ends, "v2-style"); // the mode does not apply to IPv6
  assert.deepEqual(bytes.subarray(0, 8), hex("31 09 c8 01 00 32 dae1"));
  const d = decodeAdvert(bytes, rx(6, ends));
  assert.ok(d.ok);
  assert.equal(formatIP(d.advert.addresses[0]), "2001:db8::9");
  assert.throws(() => encodeAdvert(advert({ version: 2 }), 6, ends), /IPv4 only/);
});

test("vrrp: v3 interval uses 12 bits of centiseconds", () => {
  const bytes = encodeAdvert(advert({ intervalCs: 4095 }), 4, v4("10.0.0.1"));
  assert.equal(bytes[4], 0x0f);
  assert.equal(bytes[5], 0xff);
  const d = decodeAdvert(bytes, rx(4, v4("10.0.0.1")));
  assert.ok(d.ok && d.advert.intervalCs === 4095);
});

test("vrrp: crafted bad adverts are rejected with their reason", () => {
  const ends = v4("10.200.1.1");
  const good = encodeAdvert(advert(), 4, ends);
  const withChecksum = (m: Uint8Array) => {
    const fixed = m.slice();
    fixed[6] = fixed[7] = 0;
    const sum = internetChecksum(Uint8Array.of(10, 200, 1, 1, 224, 0, 0, 18, 0, 112, 0, fixed.length), fixed);
    fixed[6] = sum >> 8;
    fixed[7] = sum & 0xff;
    return fixed;
  };
  const mutate = (f: (m: Uint8Array) => void) => { const m = good.slice(); f(m); return withChecksum(m); };
  const cases: [string, Uint8Array, Partial<ReceiveContext>, string][] = [
    ["ttl", good, { hopLimit: 64 }, "ttl"],
    ["empty", new Uint8Array(0), {}, "length"],
    ["short", good.subarray(0, 5), {}, "length"],
    ["version 4", mutate((m) => { m[0] = 0x41; }), {}, "version"],
    ["version 1", mutate((m) => { m[0] = 0x11; }), {}, "version"],
    ["type 2", mutate((m) => { m[0] = 0x32; }), {}, "type"],
    ["count too high", mutate((m) => { m[3] = 3; }), {}, "count"],
    ["count zero", mutate((m) => { m[3] = 0; }), {}, "count"],
    ["truncated list", withChecksum(good.subarray(0, 14)), {}, "count"],
    ["trailing bytes", withChecksum(Uint8Array.from([...good, 0, 0, 0, 0])), {}, "count"],
    ["checksum", mutate(() => {}).map((b, i) => i === 7 ? b ^ 1 : b), {}, "checksum"],
    ["flipped address bit", good.map((b, i) => i === 9 ? b ^ 0x10 : b), {}, "checksum"],
  ];
  for (const [name, bytes, ctx, reason] of cases) {
    const d = decodeAdvert(bytes, rx(4, ends, ctx));
    assert.equal(d.ok, false, name);
    if (!d.ok) assert.equal(d.reason, reason, `${name}: ${d.detail}`);
  }
  const v2OverV6 = decodeAdvert(encodeAdvert(advert({ version: 2 }), 4, null), rx(6, ends));
  assert.ok(!v2OverV6.ok && v2OverV6.reason === "version");
});

test("vrrp: every 1- and 2-byte truncation and random garbage is rejected without throwing", () => {
  const ends = v4("10.200.1.1");
  const good = encodeAdvert(advert({ version: 2, authType: AUTH_PASS, authData: passwordBytes("pw") }), 4, null);
  for (let n = 0; n < good.length; n++) assert.equal(decodeAdvert(good.subarray(0, n), rx(4, ends)).ok, false);
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  for (let i = 0; i < 2000; i++) {
    const bytes = Uint8Array.from({ length: rand() % 80 }, () => rand() & 0xff);
    const d = decodeAdvert(bytes, rx(i % 2 ? 4 : 6, i % 2 ? ends : { source: ip("fe80::1"), destination: VRRP_GROUP_V6 }));
    if (d.ok) assert.ok(d.advert.addresses.length > 0); // a random valid packet is fine, a throw is not
    assert.equal(parseIPv4Packet(bytes) === null || parseIPv4Packet(bytes)!.payload.length <= bytes.length, true);
  }
});

test("vrrp: instance checks reject wrong auth, interval, version and address list", () => {
  const expect: Expectation = {
    version: 2, intervalCs: 100, authType: AUTH_PASS, authData: passwordBytes("secret"), addresses: [ip("10.200.1.100")],
  };
  const a = advert({ version: 2, addresses: [ip("10.200.1.100")], authType: AUTH_PASS, authData: passwordBytes("secret") });
  assert.deepEqual(checkAdvert(a, expect), { ok: true });
  const reasonOf = (over: Partial<Advert>) => {
    const r = checkAdvert({ ...a, ...over }, expect);
    return r.ok ? "ok" : r.reason;
  };
  assert.equal(reasonOf({ authData: passwordBytes("secreT") }), "auth");
  assert.equal(reasonOf({ authType: AUTH_NONE }), "auth");
  assert.equal(reasonOf({ intervalCs: 200 }), "interval");
  assert.equal(reasonOf({ intervalCs: 0 }), "interval");
  assert.equal(reasonOf({ version: 3 }), "version");
  assert.equal(reasonOf({ addresses: [ip("10.200.1.99")] }), "addresses");
  assert.equal(reasonOf({ addresses: [ip("10.200.1.99")], priority: 255 }), "ok", "the address owner is authoritative");
  // v3 learns the master's interval instead of requiring ours; auth does not exist in v3.
  const v3: Expectation = { ...expect, version: 3, authType: AUTH_NONE };
  assert.deepEqual(checkAdvert({ ...a, version: 3, intervalCs: 25, authType: AUTH_NONE }, v3), { ok: true });
});

test("vrrp: an IPv4 header is split from the VRRP payload", () => {
  const payload = encodeAdvert(advert(), 4, v4("10.200.1.1"));
  const header = hex("45 c0 0000 0000 0000 ff 70 0000 0ac80101 e0000012");
  header[3] = 20 + payload.length;
  const p = parseIPv4Packet(Uint8Array.from([...header, ...payload]))!;
  assert.equal(p.ttl, 255);
  assert.equal(p.protocol, 112);
  assert.equal(formatIP(p.source), "10.200.1.1");
  assert.deepEqual(p.destination, VRRP_GROUP_V4);
  assert.deepEqual(p.payload, payload);
  assert.equal(parseIPv4Packet(hex("46 00 0014")), null);
});

test("vrrp: every drop reason but vrid comes out of the codec or the instance checks, with a detail naming the fault", () => {
  const ends = v4("10.200.1.1");
  const ends6 = { source: ip("fe80::1"), destination: VRRP_GROUP_V6 };
  const good = encodeAdvert(advert(), 4, ends);
  const decoded: [Uint8Array, ReceiveContext, string, RegExp][] = [
    [good, rx(4, ends, { hopLimit: 1 }), "ttl", /^TTL 1, expected 255$/],
    [encodeAdvert(advert({ addresses: [ip("2001:db8::1")] }), 6, ends6), rx(6, ends6, { hopLimit: 64 }), "ttl", /^hop limit 64/],
    [good.subarray(0, 7), rx(4, ends), "length", /^7 bytes, shorter than the 8-byte header$/],
    [good.map((b, i) => i === 0 ? 0x51 : b), rx(4, ends), "version", /^version 5$/],
    [encodeAdvert(advert({ version: 2 }), 4, null), rx(6, ends6), "version", /^version 2 over IPv6$/],
    [good.map((b, i) => i === 0 ? 0x3f : b), rx(4, ends), "type", /^type 15, expected 1/],
    [good.map((b, i) => i === 3 ? 0 : b), rx(4, ends), "count", /^address count 0$/],
    [good.map((b, i) => i === 3 ? 1 : b), rx(4, ends), "count", /^address count 1 needs 12 bytes, got 16$/],
    [good.map((b, i) => i === 7 ? b ^ 1 : b), rx(4, ends), "checksum", /^checksum 0x[0-9a-f]{4}, expected 0x[0-9a-f]{4}$/],
  ];
  const seen = new Set<string>();
  for (const [bytes, ctx, reason, detail] of decoded) {
    const d = decodeAdvert(bytes, ctx);
    assert.ok(!d.ok, reason);
    assert.equal(d.reason, reason);
    assert.match(d.detail, detail);
    seen.add(d.reason);
  }
  const v2: Expectation = { version: 2, intervalCs: 100, authType: AUTH_PASS, authData: passwordBytes("pw"), addresses: [ip("10.200.1.100")] };
  const a = advert({ version: 2, addresses: [ip("10.200.1.100")], authType: AUTH_PASS, authData: passwordBytes("pw") });
  const checked: [Partial<Advert>, string, RegExp][] = [
    [{ version: 3 }, "version", /^version 3, this instance runs 2$/],
    [{ authType: AUTH_NONE }, "auth", /^authentication type 0, expected 1$/],
    [{ authData: passwordBytes("pW") }, "auth", /^wrong password$/],
    [{ intervalCs: 0 }, "interval", /^advertisement interval 0$/],
    [{ intervalCs: 300 }, "interval", /^interval 3s, ours is 1s$/],
    [{ addresses: [ip("10.200.1.100"), ip("10.200.1.101")] }, "addresses", /^2 address\(es\) that differ from ours$/],
  ];
  for (const [over, reason, detail] of checked) {
    const r = checkAdvert({ ...a, ...over }, v2);
    assert.ok(!r.ok, reason);
    assert.equal(r.reason, reason);
    assert.match(r.detail, detail);
    seen.add(r.reason);
  }
  // "vrid" is the receive channel's: no instance on the interface has that VRID (the lab tests it).
  assert.deepEqual([...seen].sort(), DROP_REASONS.filter((r) => r !== "vrid").sort());
});
