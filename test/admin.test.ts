// The admin API and `fulcrum ctl` end to end: a real `fulcrum run` with an admin section in front
// of real loopback backends, driven by real HTTP requests and the real CLI.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { runCli, type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { getJson, request } from "./helpers/http.ts";

const TOKEN = "test-token-0123456789";
let fast: Backend, slow: Backend, extra: Backend, other: Backend;
let fulcrum: Running;
let admin: string;
let configFile: string;

interface ServerView { address: string; admin: string; state: string; down_reasons: string[]; weight: number; effective_weight: number; active: number; checks: { checks: number; up: boolean | null }[] }
interface PoolView { name: string; servers: ServerView[] }

before(async () => {
  [fast, slow, extra, other] = await Promise.all([
    startBackend("fast"), startBackend("slow", { delayMs: 2500 }), startBackend("extra"), startBackend("other"),
  ]);
  const tokenFile = await writeTemp(`${TOKEN}\n`, "token");
  const adminPort = await freePort(), port = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  const config = `
admin:
  bind: 127.0.0.1:${adminPort}
  token_file: ${tokenFile}
listeners:
  - { name: main, bind: 127.0.0.1:${port} }
routes:
  - { path_prefix: /d, pool: d }
  - { path_prefix: /q, pool: q }
  - { pool: web }
pools:
  web: { scheduler: rr, servers: [${other.address}] }
  d:
    scheduler: rr
    servers: [${slow.address}, ${fast.address}]
    health: { type: tcp, interval: 100ms }
  q:
    scheduler: rr
    servers: [${fast.address}, ${other.address}]
    sorry_server: ${extra.address}
    quorum: 2
    health: { type: tcp, interval: 100ms }
`;
  configFile = await writeTemp(config);
  fulcrum = await startFulcrum(config);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all([fast, slow, extra, other].map((b) => b?.stop()));
});

const pools = async () => (await getJson<{ pools: PoolView[] }>(`${admin}/api/pools`)).pools;
const server = async (pool: string, address: string) => (await pools()).find((p) => p.name === pool)!.servers.find((s) => s.address === address);
const post = (path: string, body?: unknown, token: string | null = TOKEN) => request(`${admin}${path}`, {
  method: "POST",
  headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
  body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
});
const backendOf = async (path: string) => {
  const r = await request(`${fulcrum.url}${path}`);
  assert.equal(r.status, 200, r.body);
  return String(r.headers["x-backend"] ?? JSON.parse(r.body).backend);
};
/** Waits (bounded: 100 tries of 20 ms) for a line in Fulcrum's output: it may arrive after the answer. */
async function logged(re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(fulcrum.output()); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(fulcrum.output(), re);
}
const ctl = (...args: string[]) => runCli(["ctl", "--config", configFile, ...args]);

// What a write could change: membership, admin state, weights.
const settings = async () => (await pools()).map((p) => [p.name, p.servers.map((s) => [s.address, s.admin, s.weight, s.down_reasons])]);

test("admin: every write without the token is 401, with a wrong one 403, and changes nothing", async () => {
  const before = await settings();
  const writes: [string, unknown][] = [
    [`/api/pools/d/servers/${slow.address}/drain`, undefined],
    [`/api/pools/d/servers/${slow.address}/maint`, undefined],
    [`/api/pools/d/servers/${slow.address}/ready`, undefined],
    [`/api/pools/d/servers/${slow.address}/weight`, { weight: 7 }],
    [`/api/pools/d/servers/${slow.address}/remove`, undefined],
    ["/api/pools/d/servers", { address: extra.address }],
    ["/api/pools", { name: "new", servers: [extra.address] }],
    ["/api/pools/web/remove", undefined],
  ];
  for (const [path, body] of writes) {
    const none = await post(path, body, null);
    assert.equal(none.status, 401, `${path} without a token: ${none.body}`);
    assert.match(JSON.parse(none.body).error, /needs the admin token/);
    assert.equal(none.headers["www-authenticate"], 'Bearer realm="fulcrum"');
    const wrong = await post(path, body, "not-the-token");
    assert.equal(wrong.status, 403, `${path} with a wrong token: ${wrong.body}`);
  }
  assert.deepEqual(await settings(), before, "nothing changed");
});

test("admin: bad requests get a JSON error naming what was wrong, and the process keeps serving", async () => {
  const get = await request(`${admin}/api/pools/d/servers/${slow.address}/drain`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, "POST");
  assert.equal((await request(`${admin}/api/nothing`)).status, 404);
  const noPool = await post(`/api/pools/nope/servers/${slow.address}/drain`);
  assert.equal(noPool.status, 404);
  assert.match(JSON.parse(noPool.body).error, /no pool "nope"/);
  const noServer = await post("/api/pools/d/servers/127.0.0.1:1/drain");
  assert.equal(noServer.status, 404);
  assert.match(JSON.parse(noServer.body).error, /pool d has no server 127\.0\.0\.1:1/);
  const badAddress = await post("/api/pools/d/servers/not-an-address/drain");
  assert.equal(badAddress.status, 400);
  const badWeight = await post(`/api/pools/d/servers/${slow.address}/weight`, { weight: 999 });
  assert.equal(badWeight.status, 400);
  assert.match(JSON.parse(badWeight.body).error, /weight: expected an integer 0\.\.256, got 999/);
  const badServer = await post("/api/pools/d/servers", { address: extra.address, wieght: 2 });
  assert.equal(badServer.status, 400);
  assert.deepEqual(JSON.parse(badServer.body).issues.map((i: { path: string }) => i.path), ["server.wieght"]);
  const notJson = await post(`/api/pools/d/servers/${slow.address}/weight`, "{weight:");
  assert.equal(notJson.status, 400);
  assert.match(JSON.parse(notJson.body).error, /not valid JSON/);
  const huge = await post("/api/pools/d/servers", JSON.stringify({ address: extra.address, pad: "x".repeat(100_000) }));
  assert.equal(huge.status, 413);
  const inUse = await post("/api/pools/web/remove");
  assert.equal(inUse.status, 409);
  assert.match(JSON.parse(inUse.body).error, /used by route route2/);
  assert.equal((await request(`${admin}/healthz`)).status, 200, "still serving");
  assert.equal(await backendOf("/"), "other", "and so is the edge");
});

test("admin: drain stops new requests to a server while the one open on it finishes; checks go on; ready brings it back", async () => {
  // Only the slow server takes requests, so the first one lands there and stays open 2.5 s (room for the steps below on a loaded machine).
  assert.equal((await post(`/api/pools/d/servers/${fast.address}/maint`)).status, 200);
  const hitsBefore = slow.hits;
  const open = request(`${fulcrum.url}/d/open`);
  // Bounded wait until the request is on the slow server.
  for (let i = 0; i < 100 && (await server("d", slow.address))!.active === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const drained = await post(`/api/pools/d/servers/${slow.address}/drain`);
  assert.equal(drained.status, 200, drained.body);
  assert.match(JSON.parse(drained.body).message, /is drain \(was ready\); this lasts until the next reload/);
  assert.equal((await post(`/api/pools/d/servers/${fast.address}/ready`)).status, 200);
  const during = await server("d", slow.address);
  assert.equal(during!.state, "DRAIN");
  assert.deepEqual(during!.down_reasons, ["drain"]);
  assert.equal(during!.active, 1, "the open request is still on it");
  const checksAtDrain = during!.checks[0].checks;
  const served = [];
  for (let i = 0; i < 10; i++) served.push(await backendOf(`/d/${i}`));
  assert.deepEqual(new Set(served), new Set(["fast"]), "no new request reached the drained server");
  const first = await open;
  assert.equal(first.status, 200, "the request open on it finished");
  assert.equal(JSON.parse(first.body).backend, "slow");
  assert.equal(slow.hits, hitsBefore + 1, "the drained server saw only that one request");
  // Checks went on: the check ran again while it was drained (interval 100 ms; the open request took 2.5 s).
  const after = await server("d", slow.address);
  assert.ok(after!.checks[0].checks > checksAtDrain, `checks went on (${checksAtDrain} -> ${after!.checks[0].checks})`);
  assert.equal(after!.active, 0);
  assert.equal((await post(`/api/pools/d/servers/${slow.address}/ready`)).status, 200);
  const back = await server("d", slow.address);
  assert.equal(back!.state, "UP");
  const next = [await backendOf("/d/back1"), await backendOf("/d/back2")];
  assert.ok(next.includes("slow"), `rr sends to it again: ${next}`);
  // Logged with who and what (the test's HTTP client sends no User-Agent).
  await logged(new RegExp(`admin: drain d/${slow.address.replace(/\./g, "\\.")} \\(was ready\\) by 127\\.0\\.0\\.1:\\d+`));
});

test("admin: maint counts a server out of its pool's quorum at once: below it, traffic goes to the sorry server", async () => {
  const before = new Set<string>();
  for (let i = 0; i < 4; i++) before.add(await backendOf(`/q/${i}`));
  assert.deepEqual(before, new Set(["fast", "other"]));
  assert.equal((await post(`/api/pools/q/servers/${fast.address}/maint`)).status, 200);
  const q = (await pools()).find((p) => p.name === "q") as unknown as { health: { quorum_met: boolean } };
  assert.equal(q.health.quorum_met, false, "1 of 2 servers counted, quorum 2");
  const below = new Set<string>();
  for (let i = 0; i < 4; i++) below.add(await backendOf(`/q/m${i}`));
  assert.deepEqual(below, new Set(["extra"]), "the sorry server takes it all");
  assert.equal((await post(`/api/pools/q/servers/${fast.address}/ready`)).status, 200);
  const back = new Set<string>();
  for (let i = 0; i < 4; i++) back.add(await backendOf(`/q/r${i}`));
  assert.deepEqual(back, new Set(["fast", "other"]));
});

test("ctl: add-server and remove-server change where traffic goes; weight and pools show it", async () => {
  const added = await ctl("add-server", "web", extra.address, "3");
  assert.equal(added.code, 0, added.stderr);
  assert.match(added.stdout, /added web\/127\.0\.0\.1:\d+; it lasts until the next reload/);
  await logged(/admin: add server web\/127\.0\.0\.1:\d+ weight 3 by 127\.0\.0\.1:\d+ \(fulcrum-ctl\/[\d.]+ \(/);
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) seen.add(await backendOf(`/w${i}`));
  assert.deepEqual(seen, new Set(["other", "extra"]), "the added server takes requests");
  const weight = await ctl("weight", "web", extra.address, "5");
  assert.equal(weight.code, 0, weight.stderr);
  assert.match(weight.stdout, /weight 3 -> 5/);
  const listing = await ctl("pools", "web");
  assert.equal(listing.code, 0, listing.stderr);
  assert.match(listing.stdout, new RegExp(`web\\s+${extra.address.replace(/\./g, "\\.")}\\s+ready\\s+UP\\s+5\\s+5`));
  const removed = await ctl("remove-server", "web", extra.address);
  assert.equal(removed.code, 0, removed.stderr);
  const hits = extra.hits;
  for (let i = 0; i < 6; i++) assert.equal(await backendOf(`/r${i}`), "other");
  assert.equal(extra.hits, hits, "the removed server gets nothing");
});

test("ctl: exit codes: 1 refused, 2 usage, 3 no answer, 4 wrong token", async () => {
  const unknown = await ctl("drain", "web", "127.0.0.1:1");
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /404: pool web has no server 127\.0\.0\.1:1/);
  const usage = await ctl("drain", "web");
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /drain takes POOL HOST:PORT/);
  const nobody = await writeTemp(`admin: { bind: 127.0.0.1:${await freePort()} }\nlisteners: [{ bind: 127.0.0.1:8080 }]\npools: { web: { servers: [127.0.0.1:9001] } }\n`);
  const unreachable = await runCli(["ctl", "--config", nobody, "status"]);
  assert.equal(unreachable.code, 3);
  assert.match(unreachable.stderr, /no answer from the admin API/);
  const wrongToken = await writeTemp("wrong-token\n", "token");
  const text = (await readText(configFile)).replace(/token_file: .*/, `token_file: ${wrongToken}`);
  const wrongConfig = await writeTemp(text);
  const refused = await runCli(["ctl", "--config", wrongConfig, "maint", "web", other.address]);
  assert.equal(refused.code, 4);
  assert.match(refused.stderr, /403: wrong admin token/);
  assert.equal((await server("web", other.address))!.admin, "ready", "nothing changed");
});

test("admin: status, ready and healthz; the config answer has the effective config", async () => {
  const status = await getJson<{ version: string; generation: number; phase: string; config: { file: string; sha256: string }; uptime_seconds: number }>(`${admin}/api/status`);
  assert.equal(status.generation, 1);
  assert.equal(status.phase, "live");
  assert.match(status.config.sha256, /^[0-9a-f]{64}$/);
  assert.match(status.config.file, /fulcrum-test-.*\.yaml$/);
  const ready = await request(`${admin}/ready`);
  assert.equal(ready.status, 200);
  assert.equal(ready.body, "LIVE\n");
  const config = await getJson<{ config: { pools: { name: string; scheduler: string }[]; admin: { tokenFile: string } } }>(`${admin}/api/config`);
  assert.deepEqual(config.config.pools.map((p) => [p.name, p.scheduler]), [["web", "rr"], ["d", "rr"], ["q", "rr"]]);
  assert.ok(!JSON.stringify(config).includes(TOKEN), "the token itself is never shown");
});

async function readText(path: string): Promise<string> {
  const { runtime } = await import("../src/runtime/index.ts");
  return runtime.readTextFile(path);
}

test("admin: a token file that cannot be read, or a bind in use, stops the start with the reason and exit 1", async () => {
  const base = (admin: string) => `${admin}\nlisteners: [{ bind: 127.0.0.1:${0} }]\npools: { web: { servers: [${other.address}] } }\n`;
  const port = await freePort();
  const noToken = await writeTemp(base(`admin: { bind: 127.0.0.1:${port}, token_file: /nonexistent/admin.token }`).replace(":0 }", `:${await freePort()} }`));
  const r = await runCli(["run", "--config", noToken]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot start: admin: cannot read token_file \/nonexistent\/admin\.token/);
  const adminPort = Number(new URL(admin).port);
  const inUse = await writeTemp(base(`admin: { bind: 127.0.0.1:${adminPort} }`).replace(":0 }", `:${await freePort()} }`));
  const r2 = await runCli(["run", "--config", inUse]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, new RegExp(`cannot start: 127\\.0\\.0\\.1:${adminPort}: address in use`));
});
