// The config keys of least_time, route priority and the overload guard: what they read to, and
// the key-path errors a mistake gets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../src/control/schema.ts";
import type { Config } from "../src/control/schema.ts";

function parse(text: string): { config: Config | null; errors: string[] } {
  const r = parseConfigText(text, "test.yaml");
  return r.ok ? { config: r.config, errors: [] } : { config: null, errors: r.errors.map((e) => `${e.path}: ${e.message}`) };
}

const base = (pool: string) => `
listeners: [{ bind: "127.0.0.1:8080" }]
routes: [{ path_prefix: /, pool: web }]
pools:
  web: { servers: [127.0.0.1:9001], ${pool} }
`;

test("config: least_time reads its measure (header by default) and decay (10 s by default)", () => {
  const d = parse(base("scheduler: least_time"));
  assert.deepEqual(d.errors, []);
  assert.deepEqual(d.config!.pools[0].leastTime, { measure: "header", decayMs: 10_000 });
  const set = parse(base("scheduler: least_time, least_time: last_byte, least_time_decay: 2s"));
  assert.deepEqual(set.config!.pools[0].leastTime, { measure: "last_byte", decayMs: 2_000 });
  assert.equal(parse(base("scheduler: wlc")).config!.pools[0].leastTime, undefined);
});

test("config: least_time keys get key-path errors: a wrong measure, a zero decay, and either key on another scheduler", () => {
  assert.deepEqual(parse(base("scheduler: least_time, least_time: body")).errors,
    [`pools.web.least_time: expected one of header, last_byte, got "body"`]);
  assert.match(parse(base("scheduler: least_time, least_time_decay: 0s")).errors.join("\n"), /^pools\.web\.least_time_decay: expected a duration greater than zero/);
  assert.deepEqual(parse(base("scheduler: wlc, least_time: header")).errors,
    ["pools.web.least_time: least_time applies to scheduler least_time only (this pool's is wlc)"]);
  assert.deepEqual(parse(base("scheduler: rr, least_time_decay: 1s")).errors,
    ["pools.web.least_time_decay: least_time_decay applies to scheduler least_time only (this pool's is rr)"]);
});
