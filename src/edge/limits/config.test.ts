// The rate_limit and conn_limit readers: the forms a rate takes, the defaults, and what a key
// may be (errors end to end: test/client-limits.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Checker } from "../../config/checker.ts";
import { readClientLimits, readL4ConnLimit } from "./config.ts";

function read(m: Record<string, unknown>) {
  const c = new Checker();
  const limits = readClientLimits(c, m, ["routes", 0]);
  return { limits, issues: c.issues.map((i) => `${i.path.join(".")}: ${i.message}`) };
}

test("limits config: rates per second or minute (nginx's r/s too), with burst, key and size defaults", () => {
  const rates = ["100/s", "100r/s", "30/m", "0.5/s"].map((rate) => read({ rate_limit: { rate } }).limits.rate?.rate);
  assert.deepEqual(rates, [100, 100, 0.5, 0.5]);
  assert.deepEqual(read({ rate_limit: { rate: "10/s" } }).limits, {
    rate: { rate: 10, burst: 0, key: { kind: "client" }, size: 100_000 }, conn: null,
  });
  assert.deepEqual(read({ conn_limit: { max: 3, key: "header:X-Api-Key", size: 50 } }).limits.conn, {
    max: 3, key: { kind: "header", name: "x-api-key" }, size: 50,
  });
  assert.deepEqual(read({ conn_limit: { max: 3, key: "cookie:Session" } }).limits.conn?.key, { kind: "cookie", name: "Session" });
  assert.deepEqual(read({}).limits, { rate: null, conn: null });
});

test("limits config: bad values are reported at their key path", () => {
  const { issues } = read({ rate_limit: { rate: "100/h", burst: 1.5, size: 2 }, conn_limit: { key: "ip" } });
  assert.deepEqual(issues, [
    'routes.0.rate_limit.rate: expected a rate like 100/s or 30/m (at most 1000000/s), got "100/h"',
    "routes.0.rate_limit.burst: expected an integer 0..1000000, got 1.5",
    "routes.0.rate_limit.size: expected an integer 8..2000000, got 2",
    "routes.0.conn_limit.max: expected an integer 1..1000000, got nothing",
    'routes.0.conn_limit.key: expected client, header:NAME or cookie:NAME, got "ip"',
  ]);
  const c = new Checker();
  readL4ConnLimit(c, { conn_limit: { max: 1, key: "header:X" } }, ["listeners", 1]);
  assert.deepEqual(c.issues.map((i) => i.message), ['expected client (the only key of a tcp listener), got "header:X"']);
});
