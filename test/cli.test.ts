// The fulcrum command as a user meets it: exit codes, messages, proxy and demo.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli, startCli, writeTemp } from "./helpers/fulcrum.ts";
import { startBackend, freePort } from "./helpers/backends.ts";
import { getJson, request } from "./helpers/http.ts";

test("cli: check accepts a valid config with exit 0", async () => {
  const file = await writeTemp("listeners: [{ bind: 127.0.0.1:8080 }]\npools:\n  web: { servers: [127.0.0.1:9001] }\n");
  const r = await runCli(["check", "--config", file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configuration .* is ok/);
});

test("cli: check reports every error with file, line, key path and exit 2", async () => {
  const file = await writeTemp([
    "listeners: [{ bind: 127.0.0.1:8080 }]",
    "pools:",
    "  api:",
    "    scheduler: wrrr",
    "    servers:",
    "      - { address: 127.0.0.1:9001, weight: heavy }",
    "      - { address: 127.0.0.1:9002, wieght: 2 }",
  ].join("\n"));
  const r = await runCli(["check", "--config", file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /:4:\d+: pools\.api\.scheduler: .*got "wrrr" \(did you mean "wrr"\?\)/);
  assert.match(r.stderr, /:6:\d+: pools\.api\.servers\[0\]\.weight: expected an integer 0\.\.256, got "heavy"/);
  assert.match(r.stderr, /:7:\d+: pools\.api\.servers\[1\]\.wieght: unknown key \(did you mean "weight"\?\)/);
});

test("cli: run with no config says what to do and exits 2", async () => {
  const r = await runCli(["run", "--config", "/nonexistent/fulcrum.yaml"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read config \/nonexistent\/fulcrum\.yaml/);
});

test("cli: unknown command suggests the closest one, exit 2; version and help exit 0", async () => {
  const r = await runCli(["chek"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command "chek" \(did you mean "check"\?\)/);
  const v = await runCli(["version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^fulcrum \d+\.\d+\.\d+ \((bun|deno) /);
  const h = await runCli(["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /fulcrum proxy --listen ADDR --to ADDR/);
});

test("cli: proxy balances without a config file", async () => {
  const [x, y] = await Promise.all([startBackend("x"), startBackend("y")]);
  const port = await freePort();
  const p = await startCli(["proxy", "--listen", `127.0.0.1:${port}`, "--to", `${x.address},${y.address}`, "--scheduler", "rr"]);
  try {
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await getJson<{ backend: string }>(`${p.url}/`)).backend);
    assert.deepEqual(seen.sort(), ["x", "x", "y", "y"]);
  } finally {
    assert.equal(await p.stop(), 0, "SIGTERM stops it cleanly");
    await Promise.all([x.stop(), y.stop()]);
  }
});

test("cli: proxy flag errors name the flag and exit 2", async () => {
  const r = await runCli(["proxy", "--to", "127.0.0.1:x", "--scheduler", "wrrr"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--scheduler: .*did you mean "wrr"/);
  assert.match(r.stderr, /--to: expected "host:port"/);
});

test("cli: a route-less request gets 404 with a reason", async () => {
  const b = await startBackend("only");
  const port = await freePort();
  const file = await writeTemp(`listeners: [{ bind: 127.0.0.1:${port} }]
routes: [{ host: only.test, pool: web }]
pools:
  web: { servers: [${b.address}] }
`);
  const p = await startCli(["run", "--config", file]);
  try {
    const r = await request(`${p.url}/`);
    assert.equal(r.status, 404);
    assert.equal(r.headers["x-fulcrum-error"], "no_route");
    assert.equal((await request(`${p.url}/`, { headers: { host: "only.test" } })).status, 200);
  } finally {
    await p.stop();
    await b.stop();
  }
});

test("cli: demo starts three backends behind a balancer and shows the spread", async () => {
  const port = await freePort();
  const r = await runCli(["demo", "--once", "--listen", `127.0.0.1:${port}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
  // 12 requests at weights 3:2:1.
  assert.match(r.stdout, /backend-1\s+6 /);
  assert.match(r.stdout, /backend-2\s+4 /);
  assert.match(r.stdout, /backend-3\s+2 /);
  assert.match(r.stdout, /backend-\d\s+6 +#{6}\n\n\/ is smooth/, "sticky requests stay on one backend");
});
