// The registry's identity of a shared check: one monitor per (address, check definition).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText as parseConfig } from "../control/schema.ts";
import type { CheckConfig } from "./config.ts";
import { MonitorRegistry } from "./registry.ts";

function checkOf(body: string): CheckConfig {
  const r = parseConfig(`listeners: [{ bind: "127.0.0.1:8080" }]\npools:\n  api:\n    servers: [127.0.0.1:9001]\n    health: ${body}\n`, "t.yaml");
  if (!r.ok) assert.fail(r.message);
  return r.config.pools[0].health.checks[0];
}

test("health registry: one monitor per (address, check): pools with the same check share it", () => {
  const registry = new MonitorRegistry();
  const a = checkOf("{ type: http, path: /healthz }");
  const b = checkOf("{ type: http, path: /healthz }");
  const c = checkOf("{ type: http, path: /other }");
  const addr = { host: "127.0.0.1", port: 9001 };
  assert.equal(registry.acquire(addr, a), registry.acquire(addr, b));
  assert.notEqual(registry.acquire(addr, a), registry.acquire(addr, c));
  assert.notEqual(registry.acquire(addr, a), registry.acquire({ host: "127.0.0.1", port: 9002 }, a));
  assert.equal(registry.all().length, 3);
});
