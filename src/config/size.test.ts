import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSize } from "./size.ts";

test("parseSize: nginx's sizes and memory sizes in bytes; anything else is not a size", () => {
  const cases: [string, number | null][] = [
    ["0", 0], ["4096", 4096], ["32k", 32768], ["1m", 1048576], ["1M", 1048576], ["2g", 2 * 1024 ** 3],
    ["512MB", 512 * 1048576], ["1GB", 1024 ** 3], ["2GiB", 2 * 1024 ** 3], ["800 m", 800 * 1048576], ["10b", 10],
    ["", null], ["1.5m", null], ["-1k", null], ["1t", null], ["k", null], ["1 mega", null],
  ];
  for (const [s, want] of cases) assert.equal(parseSize(s), want, s);
});
