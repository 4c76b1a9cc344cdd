// The admin section as the config file gives it, and the effective config the API shows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "./schema.ts";
import { Generation } from "./generation.ts";
import { configView } from "./admin-read.ts";

const BASE = "listeners: [{ bind: 127.0.0.1:8080 }]\npools: { web: { servers: [127.0.0.1:9001] } }\n";

test("admin config: absent means no admin listener; bind defaults to 127.0.0.1:9901", () => {
  const none = parseConfigText(BASE);
  assert.ok(none.ok);
  assert.equal(none.config.admin, null);
  const empty = parseConfigText(`${BASE}admin: {}\n`);
  assert.ok(empty.ok);
  assert.deepEqual(empty.config.admin, { bind: { host: "127.0.0.1", port: 9901 }, tokenFile: null });
});

test("admin config: a non-loopback bind without token_file is an error at admin.bind; with one it is fine", () => {
  const open = parseConfigText(`${BASE}admin: { bind: "0.0.0.0:9901" }\n`, "f.yaml");
  assert.ok(!open.ok);
  assert.match(open.message, /f\.yaml:3:\d+: admin\.bind: expected a loopback address .* got "0\.0\.0\.0:9901"/);
  const wildcard = parseConfigText(`${BASE}admin: { bind: ":9901" }\n`);
  assert.ok(!wildcard.ok, "\":port\" binds every address");
  const tokened = parseConfigText(`${BASE}admin: { bind: "0.0.0.0:9901", token_file: /etc/fulcrum/admin.token }\n`);
  assert.ok(tokened.ok);
  assert.equal(tokened.config.admin!.tokenFile, "/etc/fulcrum/admin.token");
  assert.ok(parseConfigText(`${BASE}admin: { bind: "[::1]:9901" }\n`).ok);
});

test("admin config: unknown keys are named with a suggestion", () => {
  const r = parseConfigText(`${BASE}admin: { bind: 127.0.0.1:9901, tokenfile: x }\n`);
  assert.ok(!r.ok);
  assert.match(r.message, /admin\.tokenfile: unknown key \(did you mean "token_file"\?\)/);
});

test("admin: the effective config shown by the API redacts the VRRP password and reads addresses", async () => {
  const r = parseConfigText(`${BASE}vrrp:
  instances:
    - { name: vi, interface: lo, virtual_router_id: 7, priority: 100, version: 2, virtual_ipaddress: [10.9.9.9/32], authentication: { auth_type: PASS, auth_pass: hunter2 } }
`);
  assert.ok(r.ok, r.ok ? "" : r.message);
  const g = await Generation.build(r.config);
  const view = JSON.stringify(configView(g));
  assert.ok(!view.includes("hunter2"), "no password in the answer");
  assert.match(view, /"authPass":"<redacted>"/);
  assert.match(view, /"addresses":\[\{"family":4,"address":"10\.9\.9\.9"/);
  g.balancer.stop();
});
