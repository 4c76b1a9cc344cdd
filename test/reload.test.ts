// Hot reload (SIGHUP, `fulcrum reload`): a new generation is built beside the running one and
// takes over; the listening socket never closes, requests in flight finish, a bad config keeps
// the running one, health verdicts carry over.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { type Backend, freePort, startBackend } from "./helpers/backends.ts";
import { runCli, startCli, writeTemp } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { waitFor } from "./helpers/netns.ts";
import { runtime } from "../src/runtime/index.ts";
import { AF_UNIX, SOCK_DGRAM, sockaddrUn } from "../src/ffi/unix.ts";
import { bindSocket, closeSocket, openSocket, receiveFrom } from "../src/ffi/socket.ts";

const backends: Backend[] = [];
after(async () => { for (const b of backends) await b.stop(); });

async function backend(name: string, behaviour?: Parameters<typeof startBackend>[1]): Promise<Backend> {
  const b = await startBackend(name, behaviour);
  backends.push(b);
  return b;
}

const who = async (url: string) => JSON.parse((await request(url)).body).backend as string;

function configText(port: number, servers: string[], extra = ""): string {
  return `listeners: [{ bind: "127.0.0.1:${port}" }]\ndrain_timeout: 5s\n${extra}pools:\n  web:\n    scheduler: rr\n    servers: [${servers.join(", ")}]\n`;
}

async function start(text: string, extraArgs: string[] = [], env?: Record<string, string>) {
  const file = await writeTemp(text);
  const pidFile = `${file}.pid`;
  const f = await startCli(["run", "--config", file, "--pid-file", pidFile, ...extraArgs], 1, { env });
  return { f, file, pidFile };
}

test("reload: SIGHUP swaps in the changed pool with no failed request under load, on the same socket", async () => {
  const [a, b, c] = [await backend("ra"), await backend("rb"), await backend("rc")];
  const port = await freePort();
  const { f, file } = await start(configText(port, [a.address, b.address]));
  try {
    // A bounded load loop across the reload: every request must succeed.
    let failed = 0, done = 0, running = true;
    const load = (async () => {
      for (let i = 0; i < 2000 && running; i++) {
        const r = await request(`${f.url}/load/${i}`).catch(() => null);
        if (!r || r.status !== 200) failed++;
        done++;
      }
    })();
    await waitFor("load running", () => done > 20, 5000);
    await runtime.writeTextFile(file, configText(port, [c.address]));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    const after = done;
    await waitFor("load after the reload", () => done > after + 20, 5000);
    running = false;
    await load;
    assert.equal(failed, 0, `failed requests across the reload (of ${done})`);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(await who(`${f.url}/after/${i}`));
    assert.deepEqual([...seen], ["rc"], "the new pool serves");
    assert.equal(f.url, `http://127.0.0.1:${port}`);
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: a bad config keeps the running generation, logs every error with its key path; fulcrum reload refuses it (exit 2)", async () => {
  const a = await backend("keep");
  const port = await freePort();
  const { f, file, pidFile } = await start(configText(port, [a.address]));
  try {
    await runtime.writeTextFile(file, `listeners: [{ bind: "127.0.0.1:${port}" }]\npools:\n  web:\n    scheduler: wrrr\n    servers: [${a.address}]\n    wieght: 3\n`);
    const refused = await runCli(["reload", "--pid-file", pidFile, "--config", file]);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /pools\.web\.scheduler: expected one of/);
    f.child.kill("SIGHUP");
    await waitFor("the failure", () => f.output().includes("reload failed; generation 1 goes on serving"), 10_000);
    assert.match(f.output(), /pools\.web\.scheduler: expected one of .*got "wrrr"/);
    assert.match(f.output(), /pools\.web\.wieght: unknown key/);
    assert.equal(await who(`${f.url}/still`), "keep");
    // A good config then reloads through `fulcrum reload`.
    await runtime.writeTextFile(file, configText(port, [a.address], "hash_seed: 7\n"));
    const ok = await runCli(["reload", "--pid-file", pidFile, "--config", file]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: a request in flight finishes on the old generation; the next request goes to the new one", async () => {
  const slow = await backend("slow", { delayMs: 1500 });
  const fresh = await backend("fresh");
  const port = await freePort();
  const { f, file } = await start(configText(port, [slow.address]));
  try {
    const inFlight = request(`${f.url}/slow`);
    await waitFor("the slow request to arrive", () => slow.hits > 0, 5000);
    await runtime.writeTextFile(file, configText(port, [fresh.address]));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    assert.equal(await who(`${f.url}/next`), "fresh");
    const r = await inFlight;
    assert.equal(r.status, 200, "the request in flight was answered");
    assert.equal(JSON.parse(r.body).backend, "slow");
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: a server health checks found down stays down across the reload (no flap, no new rise)", async () => {
  const up = await backend("up");
  const down = await backend("down", { status: 503 });
  const port = await freePort();
  // rise 5 at 2 s: a fresh check state would need 10 s of passes; carried over it stays as it was.
  const health = (p: string) => `listeners: [{ bind: "127.0.0.1:${port}" }]\n${p}pools:\n  web:\n    scheduler: rr\n    servers: [${up.address}, ${down.address}]\n    health: { type: http, interval: 200ms, timeout: 150ms, rise: 5, fall: 1, initial: up }\n`;
  const { f, file } = await start(health(""));
  try {
    await waitFor("DOWN", () => f.output().includes(`web/${down.address} DOWN`), 5000);
    await runtime.writeTextFile(file, health("hash_seed: 3\n"));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    for (let i = 0; i < 8; i++) assert.equal(await who(`${f.url}/h/${i}`), "up", "the down server gets nothing after the reload");
    const lines = f.output().split("\n").filter((l) => l.includes(`web/${down.address}`));
    assert.equal(lines.length, 1, `one line about the down server: ${lines.join(" | ")}`);
    assert.ok(lines[0].startsWith(`fulcrum: web/${down.address} DOWN:`), lines[0]);
  } finally {
    assert.equal(await f.stop(), 0);
  }
});

test("reload: systemd notify: READY=1, then RELOADING=1 and READY=1 around a reload, STOPPING=1 at the end", async () => {
  const a = await backend("sd");
  const port = await freePort();
  const path = `/tmp/fulcrum-notify-${runtime.name}-${Date.now()}.sock`;
  const fd = openSocket(AF_UNIX, SOCK_DGRAM, 0);
  bindSocket(fd, sockaddrUn(path));
  const got: string[] = [];
  const buf = new Uint8Array(4096), from = new Uint8Array(128);
  const poll = () => { for (let n = receiveFrom(fd, buf, from); n !== null; n = receiveFrom(fd, buf, from)) got.push(new TextDecoder().decode(buf.subarray(0, n))); };
  const timer = setInterval(poll, 10);
  try {
    const { f } = await start(configText(port, [a.address]), [], { NOTIFY_SOCKET: path });
    await waitFor("READY=1", () => got.includes("READY=1"), 5000);
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    await waitFor("READY after the reload", () => got.filter((m) => m === "READY=1").length === 2, 5000);
    assert.equal(await f.stop(), 0);
    poll();
    const kinds = got.map((m) => m.split("\n")[0]);
    assert.deepEqual(kinds, ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
    assert.match(got[1], /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  } finally {
    clearInterval(timer);
    closeSocket(fd);
    await runtime.spawn(["rm", "-f", path]).exited;
  }
});

test("reload: an L4 tcp listener keeps its socket; an open session goes on; new sessions go to the new pool", async () => {
  const net = await import("node:net");
  const echo = (tag: string) => new Promise<import("node:net").Server>((resolve) => {
    const s = net.createServer((c) => c.on("data", (d) => c.write(`${tag}:${d}`)));
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
  const [one, two] = [await echo("one"), await echo("two")];
  const addr = (s: import("node:net").Server) => `127.0.0.1:${(s.address() as import("node:net").AddressInfo).port}`;
  const port = await freePort();
  const text = (server: string) => `listeners: [{ bind: "127.0.0.1:${port}", protocol: tcp, pool: db }]\npools:\n  db: { servers: [${server}] }\n`;
  const file = await writeTemp(text(addr(one)));
  const f = await startCli(["run", "--config", file], 1);
  const talk = (c: import("node:net").Socket, msg: string) => new Promise<string>((resolve) => { c.once("data", (d) => resolve(String(d))); c.write(msg); });
  try {
    const open = net.connect(port, "127.0.0.1");
    await new Promise((r) => open.once("connect", r));
    assert.equal(await talk(open, "a"), "one:a");
    await runtime.writeTextFile(file, text(addr(two)));
    f.child.kill("SIGHUP");
    await waitFor("generation 2", () => f.output().includes("generation 2 serving"), 10_000);
    assert.equal(await talk(open, "b"), "one:b", "the open session goes on to its server");
    const fresh = net.connect(port, "127.0.0.1");
    await new Promise((r) => fresh.once("connect", r));
    assert.equal(await talk(fresh, "c"), "two:c", "a new session goes to the new pool");
    open.destroy();
    fresh.destroy();
  } finally {
    assert.equal(await f.stop(), 0);
    one.close();
    two.close();
  }
});

test("reload: POST /api/reload with the token reloads (200); without it 401; a bad config answers 400 with the errors", async () => {
  const a = await backend("api-reload");
  const port = await freePort(), adminPort = await freePort();
  const tokenFile = await writeTemp("s3cret\n", "token");
  const text = (extra: string) => `admin: { bind: "127.0.0.1:${adminPort}", token_file: ${tokenFile} }\n${configText(port, [a.address], extra)}`;
  const { f, file } = await start(text(""));
  const api = `http://127.0.0.1:${adminPort}/api/reload`;
  const auth = { authorization: "Bearer s3cret" };
  try {
    assert.equal((await request(api, { method: "POST" })).status, 401);
    const ok = await request(api, { method: "POST", headers: auth });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(JSON.parse(ok.body).generation, 2);
    await runtime.writeTextFile(file, text("hash_seed: nope\n"));
    const bad = await request(api, { method: "POST", headers: auth });
    assert.equal(bad.status, 400, bad.body);
    assert.match(JSON.parse(bad.body).errors.join("\n"), /hash_seed: expected an integer/);
    assert.equal(await who(`${f.url}/still`), "api-reload", "the running generation goes on");
  } finally {
    assert.equal(await f.stop(), 0);
  }
});
