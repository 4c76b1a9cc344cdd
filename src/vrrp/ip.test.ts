// IPv4 and IPv6 addresses: parsing (strict), canonical formatting, ordering.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compareAddresses, formatIP, parseIP, parseIPv4, parseIPv6 } from "./ip.ts";

const ip = (s: string) => parseIP(s)!.bytes;

test("vrrp: IPv4 and IPv6 addresses parse and format canonically", () => {
  assert.deepEqual(parseIPv4("10.200.1.100"), Uint8Array.of(10, 200, 1, 100));
  assert.equal(parseIPv4("10.200.1.256"), null);
  assert.equal(parseIPv4("10.200.01.1"), null);
  assert.equal(formatIP(parseIPv6("FE80:0:0:0:0:0:0:1")!), "fe80::1");
  assert.equal(formatIP(parseIPv6("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
  assert.equal(formatIP(parseIPv6("ff02::12")!), "ff02::12");
  assert.equal(formatIP(parseIPv6("::ffff:10.0.0.1")!), "::ffff:a00:1");
  assert.equal(formatIP(parseIPv6("2001:db8:1:1:1:1:0:1")!), "2001:db8:1:1:1:1:0:1");
  for (const bad of ["1::2::3", "12345::", "fe80::g", "1:2:3:4:5:6:7:8:9", ":::"]) assert.equal(parseIPv6(bad), null, bad);
  assert.ok(compareAddresses(ip("10.0.0.2"), ip("10.0.0.10")) < 0);
});
