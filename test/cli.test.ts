// The fulcrum command as a user meets it: exit codes, messages, proxy and demo.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli, startCli, writeTemp } from "./helpers/fulcrum.ts";
import { startBackend, freePort } from "./helpers/backends.ts";
import { getJson, request } from "./helpers/http.ts";
import { needs } from "./helpers/peers.ts";
import net from "node:net";
import { runtime } from "../src/runtime/index.ts";

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

test("cli: demo starts three backends behind a balancer, shows the spread and prints the dashboard's URL and token", async () => {
  const port = await freePort(), adminPort = await freePort();
  const r = await runCli(["demo", "--once", "--listen", `127.0.0.1:${port}`, "--admin", `127.0.0.1:${adminPort}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^Dashboard: http://127\\.0\\.0\\.1:${adminPort}/ +\\(admin token for its buttons: [0-9a-f]{32}\\)$`, "m"));
  assert.match(r.stdout, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
  // 12 requests at weights 3:2:1.
  assert.match(r.stdout, /backend-1\s+6 /);
  assert.match(r.stdout, /backend-2\s+4 /);
  assert.match(r.stdout, /backend-3\s+2 /);
  assert.match(r.stdout, /backend-\d\s+6 +#{6}\n\n\/ is smooth/, "sticky requests stay on one backend");
});

/** A plain TCP listener on a free loopback port, so that port is in use while it runs. */
async function occupyPort(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test("cli: a listen address already in use is named with the reason, exit 1 (proxy and run)", async () => {
  const taken = await occupyPort();
  try {
    const r = await runCli(["proxy", "--listen", `127.0.0.1:${taken.port}`, "--to", "127.0.0.1:9"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^fulcrum: cannot start: 127\\.0\\.0\\.1:${taken.port}: address in use$`, "m"));
    assert.doesNotMatch(r.stdout, /listening/);
    const file = await writeTemp(`listeners: [{ bind: 127.0.0.1:${taken.port} }]\npools:\n  web: { servers: [127.0.0.1:9] }\n`);
    const f = await runCli(["run", "--config", file]);
    assert.equal(f.code, 1, f.stdout + f.stderr);
    assert.match(f.stderr, new RegExp(`^fulcrum: cannot start: 127\\.0\\.0\\.1:${taken.port}: address in use$`, "m"));
  } finally {
    await taken.close();
  }
});

test("cli: a TLS listen address already in use is named with the reason, exit 1", { skip: needs("openssl") }, async () => {
  const dir = `/tmp/fulcrum-cli-tls-${runtime.name}-${Date.now()}`;
  const child = runtime.spawn(["sh", "-c", `mkdir -p ${dir} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=a.test -keyout ${dir}/key.pem -out ${dir}/cert.pem`]);
  const [, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  assert.equal(await child.exited, 0, err);
  const taken = await occupyPort();
  try {
    const file = await writeTemp(`listeners: [{ bind: 127.0.0.1:${taken.port}, tls: [{ cert: ${dir}/cert.pem, key: ${dir}/key.pem }] }]\npools:\n  web: { servers: [127.0.0.1:9] }\n`);
    const r = await runCli(["run", "--config", file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^fulcrum: cannot start: 127\\.0\\.0\\.1:${taken.port}: address in use$`, "m"));
  } finally {
    await taken.close();
    await runtime.spawn(["rm", "-rf", dir]).exited;
  }
});

test("cli: an unknown or misspelt flag is named with a did-you-mean, exit 2, before anything starts", async () => {
  const run = await runCli(["run", "--confg", "x.yaml"]);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.match(run.stderr, /^fulcrum run: unknown flag --confg \(did you mean --config\?\)$/m);
  const x = await startBackend("x");
  const port = await freePort();
  try {
    const proxy = await runCli(["proxy", "--bogus", "2", "--listen", `127.0.0.1:${port}`, "--to", x.address]);
    assert.equal(proxy.code, 2, proxy.stdout + proxy.stderr);
    assert.match(proxy.stderr, /^fulcrum proxy: unknown flag --bogus$/m);
    assert.doesNotMatch(proxy.stdout, /listening/);
    const typo = await runCli(["proxy", "--schedular", "rr", "--to", x.address]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /^fulcrum proxy: unknown flag --schedular \(did you mean --scheduler\?\)$/m);
  } finally {
    await x.stop();
  }
});

test("cli: a value flag without its value, a value on a boolean flag and a stray argument are errors, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["proxy", "--to"], /^fulcrum proxy: --to needs a value \(ADDR\[,ADDR\.\.\.\]\)$/m],
    [["proxy", "--to", "--listen", "127.0.0.1:1"], /^fulcrum proxy: --to needs a value/m],
    [["check", "--config="], /^fulcrum check: --config needs a value \(FILE\)$/m],
    [["demo", "--once=yes"], /^fulcrum demo: --once takes no value$/m],
    [["run", "fulcrum.yaml"], /^fulcrum run: unexpected argument "fulcrum\.yaml"$/m],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});

test("cli: demo refuses a dashboard address off loopback (it prints its token), exit 2", async () => {
  const r = await runCli(["demo", "--once", "--admin", "0.0.0.0:9901"]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^fulcrum demo: --admin: expected a loopback address and port \(127\.0\.0\.1:9901\), got "0\.0\.0\.0:9901"/m);
  assert.doesNotMatch(r.stdout, /listening/);
});

test("cli: each command's --help lists its flags with their aliases, exit 0", async () => {
  const proxy = await runCli(["proxy", "--help"]);
  assert.equal(proxy.code, 0, proxy.stderr);
  assert.match(proxy.stdout, /^Usage: fulcrum proxy --listen ADDR --to ADDR/m);
  assert.match(proxy.stdout, /^ {2}-t, --to ADDR\[,ADDR\.\.\.\] +the servers to balance$/m);
  assert.match(proxy.stdout, /^ {2}-s, --scheduler NAME +/m);
  const run = await runCli(["run", "-h"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^ {2}-c, --config FILE +/m);
  assert.doesNotMatch(run.stdout, /--scheduler/);
});
