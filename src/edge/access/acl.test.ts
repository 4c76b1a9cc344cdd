// Access lists: the rules' meaning (longest prefix decides; no match: denied with an allow list,
// allowed without), on both LPM kernels, and the request path's address parsers against the
// config's (src/vrrp/ip.ts) on valid and broken text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createDataPlane } from "../../core/wasm.ts";
import { AccessList, type AccessRules, ipv4Word, ipv6Words, parseCidr, type Cidr } from "./acl.ts";
import { formatIP, parseIPv4, parseIPv6 } from "../../vrrp/ip.ts";
import type { KernelImpl } from "../../core/kernels.ts";

function rules(allow: string[], deny: string[]): AccessRules {
  const read = (list: string[]) => list.flatMap((t) => parseCidr(t) as Cidr[]);
  return { allow: read(allow), deny: read(deny) };
}

for (const impl of ["wasm", "ts"] as KernelImpl[]) {
  test(`access list (${impl}): with an allow list, what no prefix holds is denied; the longest prefix decides`, async () => {
    const dp = await createDataPlane({ impl, seed: 1 });
    const acl = new AccessList(dp, rules(["10.0.0.0/8", "10.1.2.0/24", "2001:db8::/32"], ["10.1.0.0/16", "2001:db8:bad::/48"]), impl);
    const cases: [string, boolean][] = [
      ["10.9.9.9", true], ["10.1.9.9", false], ["10.1.2.9", true], ["11.0.0.1", false], ["127.0.0.1", false],
      ["2001:db8::1", true], ["2001:db8:bad::1", false], ["2001:db9::1", false], ["::1", false],
      ["::ffff:10.9.9.9", true], ["::ffff:10.1.9.9", false], ["fe80::1%eth0", false], ["2001:db8::1%lo", true],
      ["not an address", false], ["", false],
    ];
    for (const [address, want] of cases) {
      assert.equal(acl.permits(address), want, address);
      assert.equal(acl.permits(address), want, `${address} (remembered)`);
    }
  });

  test(`access list (${impl}): without an allow list, what no deny holds is allowed; "all" covers both families`, async () => {
    const dp = await createDataPlane({ impl, seed: 1 });
    const denyOnly = new AccessList(dp, rules([], ["192.0.2.0/24", "::1"]), impl);
    assert.equal(denyOnly.permits("192.0.2.1"), false);
    assert.equal(denyOnly.permits("192.0.3.1"), true);
    assert.equal(denyOnly.permits("::1"), false);
    assert.equal(denyOnly.permits("::2"), true);
    const allButOne = new AccessList(dp, rules(["192.0.2.7"], ["all"]), impl);
    assert.equal(allButOne.permits("192.0.2.7"), true);
    assert.equal(allButOne.permits("192.0.2.8"), false);
    assert.equal(allButOne.permits("2001:db8::7"), false);
  });
}

test("parseCidr: forms, lengths and host bits", () => {
  assert.deepEqual(parseCidr("10.0.0.0/8"), [{ bytes: Uint8Array.from([10, 0, 0, 0]), length: 8 }]);
  assert.equal((parseCidr("192.0.2.1") as Cidr[])[0].length, 32);
  assert.equal((parseCidr("2001:db8::1") as Cidr[])[0].length, 128);
  assert.equal((parseCidr("all") as Cidr[]).length, 2);
  assert.match(String(parseCidr("10.0.0.1/8")), /10\.0\.0\.0\/8\?/);
  assert.match(String(parseCidr("10.0.0.0/33")), /0\.\.32/);
  assert.match(String(parseCidr("10.0.0.0/x")), /0\.\.32/);
  assert.match(String(parseCidr("example.com")), /IPv4 or IPv6 prefix/);
});

function lcg(seed: number) {
  let s = seed >>> 0;
  return (n: number) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return Math.floor((s / 2 ** 32) * n); };
}

test("ipv4Word agrees with parseIPv4 on valid and broken text", () => {
  const texts = ["0.0.0.0", "255.255.255.255", "127.0.0.1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "", "a.b.c.d", "1.2.3.0400"];
  const rand = lcg(4);
  for (let i = 0; i < 500; i++) texts.push([rand(256), rand(256), rand(256), rand(256)].join("."));
  for (const t of texts) {
    const bytes = parseIPv4(t);
    const want = bytes === null ? -1 : ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
    assert.equal(ipv4Word(t), want, t);
  }
});

test("ipv6Words agrees with parseIPv6 on valid and broken text", () => {
  const texts = [
    "::", "::1", "1::", "2001:db8::", "2001:db8::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
    "::ffff:192.0.2.1", "64:ff9b::192.0.2.1", "1:2:3:4:5:6:192.0.2.1", "FFFF::ABCD",
    ":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "1:", ":1", "g::1",
    "1:2:3:4:5:6:7:192.0.2.1", "::192.0.2", "::1.2.3.4.5", "1::2:", "", "1.2.3.4",
  ];
  const rand = lcg(6);
  for (let i = 0; i < 500; i++) {
    const bytes = Uint8Array.from({ length: 16 }, () => rand(4) === 0 ? 0 : rand(256));
    texts.push(formatIP(bytes), formatIP(bytes).toUpperCase());
  }
  const out = new Uint32Array(4);
  for (const t of texts) {
    const bytes = parseIPv6(t);
    const ok = ipv6Words(t, out);
    assert.equal(ok, bytes !== null, t);
    if (!bytes) continue;
    for (let k = 0; k < 4; k++) {
      assert.equal(out[k], ((bytes[4 * k] << 24) | (bytes[4 * k + 1] << 16) | (bytes[4 * k + 2] << 8) | bytes[4 * k + 3]) >>> 0, t);
    }
  }
});
