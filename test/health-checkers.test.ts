// Each checker against real servers that break in the ways real servers do: HTTP and HTTPS (status,
// body, digest, Host, SNI, certificates, connection reuse), TCP, script (exit codes, dynamic
// weight, hung scripts), agent (HAProxy agent-check replies) and UDP. ICMP is in health-icmp.test.ts.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { FlakyServer, startFlaky, waitFor, sleep } from "./helpers/health-servers.ts";
import { harness, monitorFor, sh, stopHarnesses } from "./helpers/health.ts";
import { needs } from "./helpers/peers.ts";

const servers: FlakyServer[] = [];
async function flaky(name: string, body?: string): Promise<FlakyServer> {
  const s = await startFlaky(name, body);
  servers.push(s);
  return s;
}

/** Temp files the tests write, removed at the end. */
const tempFiles: string[] = [];

after(async () => {
  stopHarnesses();
  for (const s of servers) await s.kill();
  if (tempFiles.length) await sh(["rm", "-f", ...tempFiles]);
});

/** Runs a command to completion (bounded: killed after 10 s) and returns its stdout. */
async function capture(argv: string[]): Promise<string> {
  const child = runtime.spawn(argv);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [out] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  await child.exited;
  clearTimeout(timer);
  return out;
}

test("health: HTTP check passes a good server and names what is wrong with a broken one", async () => {
  const s = await flaky("http1", "all good\n");
  const m = monitorFor(s, `{ type: http, path: /healthz, timeout: 300ms, interval: 1s, body_regex: "good" }`);
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "HTTP 200" });
  s.mode = { status: 503 };
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP 503, expected 200-399" });
  s.mode = { body: "all bad\n" };
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP 200, body does not match /good/" });
  s.mode = "hang";
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP timed out after 300ms waiting for the response" });
  s.mode = "close-mid-response";
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP connection closed mid-response (10 of 100 body bytes)" });
  await s.kill();
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "HTTP connect refused" });
  await s.start();
  s.mode = "ok";
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "HTTP 200" }, "came back on the same port");
});

test("health: HTTP check sends method, path and Host, and checks status ranges and the body digest", async () => {
  const seen: string[] = [];
  const net = await import("node:net");
  const server = net.createServer((socket) => {
    socket.setEncoding("latin1");
    socket.on("data", (head: string) => {
      seen.push(head);
      socket.end("HTTP/1.1 302 Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    // MD5("hello") = 5d41402abc4b2a76b9719d911017c592
    const m = monitorFor({ port }, `{ type: http, method: POST, path: "/status?full=1", host: api.example.test,
      status: [200, "300-302"], digest: 5d41402abc4b2a76b9719d911017c592 }`);
    assert.deepEqual(await m.runOnce(), { ok: true, detail: "HTTP 302" });
    assert.match(seen[0], /^POST \/status\?full=1 HTTP\/1\.1\r\n/);
    assert.match(seen[0], /\r\nHost: api\.example\.test\r\n/);
    const wrongDigest = monitorFor({ port }, `{ type: http, digest: "00000000000000000000000000000000", status: 302 }`);
    assert.deepEqual(await wrongDigest.runOnce(), {
      ok: false, detail: "HTTP 302, body digest 5d41402abc4b2a76b9719d911017c592, expected 00000000000000000000000000000000",
    });
    const onlyOk = monitorFor({ port }, "{ type: http, status: 200 }");
    assert.deepEqual(await onlyOk.runOnce(), { ok: false, detail: "HTTP 302, expected 200" });
    // Without a Host of its own the check names the server.
    await monitorFor({ port }, "{ type: http }").runOnce();
    assert.match(seen[seen.length - 1], new RegExp(`\\r\\nHost: 127\\.0\\.0\\.1:${port}\\r\\n`));
  } finally {
    server.close();
  }
});

test("health: TCP check is up while something accepts, even a server that never answers", async () => {
  const s = await flaky("tcp1");
  const m = monitorFor(s, "{ type: tcp, timeout: 300ms, interval: 1s }");
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "TCP connect ok" });
  s.mode = "hang";
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "TCP connect ok" }, "TCP_CHECK only connects");
  await s.kill();
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "TCP connect refused" });
  const other = monitorFor({ port: s.port }, `{ type: tcp, port: ${s.port === 65535 ? 65534 : s.port + 1} }`);
  assert.equal(other.target.port, s.port === 65535 ? 65534 : s.port + 1, "a check's own port overrides the server's");
});

test("health: script check: exit 0 is up, the exit code and first output line are the reason, a hung script is killed", { skip: needs("ps") }, async () => {
  const codeFile = `/tmp/fulcrum-health-${runtime.name}-${process.pid}-code`;
  tempFiles.push(codeFile);
  await runtime.writeTextFile(codeFile, "0");
  const script = `echo checking $FULCRUM_SERVER_HOST:$FULCRUM_SERVER_PORT >&2; exit $(cat ${codeFile})`;
  const m = monitorFor({ port: 9001 }, `{ type: script, command: ${JSON.stringify(script)}, timeout: 300ms, interval: 1s }`);
  assert.deepEqual(await m.runOnce(), { ok: true, detail: "script exit 0: checking 127.0.0.1:9001" });
  await runtime.writeTextFile(codeFile, "1");
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "script exit 1: checking 127.0.0.1:9001" });
  await runtime.writeTextFile(codeFile, "7");
  assert.deepEqual(await m.runOnce(), { ok: false, detail: "script exit 7: checking 127.0.0.1:9001" }, "without dynamic, any non-zero is down");
  const marker = `${4 + (process.pid % 1000) / 1000}`; // a sleep only this test starts
  const hung = monitorFor({ port: 9001 }, `{ type: script, command: "sleep ${marker}; true", timeout: 200ms, interval: 1s }`);
  const t0 = performance.now();
  assert.deepEqual(await hung.runOnce(), { ok: false, detail: "script timed out after 200ms (killed)" });
  // 200 ms planned; the bound is widened for a loaded machine and stays below the script's 4 s sleep.
  assert.ok(performance.now() - t0 < 3500, "the check does not wait for the script");
  await sleep(100);
  const ps = await capture(["ps", "-eo", "args"]);
  assert.ok(!ps.includes(`sleep ${marker}`), "the script's own children were killed with it");
  const missing = monitorFor({ port: 9001 }, `{ type: script, command: [/nonexistent/fulcrum-check], timeout: 300ms, interval: 1s }`);
  const r = await missing.runOnce();
  assert.equal(r.ok, false);
  assert.match(r.detail, /^script \/nonexistent\/fulcrum-check (could not start|exit \d+)/);
});

test("health: script check with dynamic weight (misc_dynamic) sets the server's weight from the exit code", async () => {
  const codeFile = `/tmp/fulcrum-health-${runtime.name}-${process.pid}-dyn`;
  tempFiles.push(codeFile);
  await runtime.writeTextFile(codeFile, "0");
  const h = await harness(`
pools:
  api:
    servers: [{ address: 127.0.0.1:9001, weight: 50 }, 127.0.0.1:9002]
    health: { type: script, command: "exit $(cat ${codeFile})", dynamic: true, interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }`);
  const [first] = h.pools.get("api")!.servers;
  await waitFor("first checks", () => h.service.registry.all().every((m) => m.checks > 0), 3000);
  assert.equal(h.dp.effectiveWeight[first.slot], 50, "exit 0 leaves the weight as configured");
  await runtime.writeTextFile(codeFile, "12");
  await waitFor("weight 10", () => h.dp.effectiveWeight[first.slot] === 10, 3000);
  assert.ok(h.lines.some((l) => l === `api/127.0.0.1:9001 weight 50 -> 10: script exit 12`), h.lines.join("\n"));
  await runtime.writeTextFile(codeFile, "1");
  await waitFor("DOWN", () => first.down.has("health"), 3000);
  await runtime.writeTextFile(codeFile, "2");
  await waitFor("UP with weight 0", () => !first.down.has("health") && h.dp.effectiveWeight[first.slot] === 0, 3000);
  assert.ok(h.pools.get("api")!.isAvailable(first), "up, but weight 0 takes no new sessions (drained)");
});

/** A TCP agent (HAProxy agent-check) that answers each connection with `reply` and a newline. */
async function startAgent(): Promise<{ port: number; reply: string; received: string[]; close(): void }> {
  const net = await import("node:net");
  const agent = { port: 0, reply: "up", received: [] as string[], close: () => server.close() };
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => agent.received.push(d));
    setTimeout(() => socket.end(`${agent.reply}\n`), 5);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  agent.port = (server.address() as { port: number }).port;
  return agent;
}

test("health: agent check: up, down with a description, drain, ready, N% and weight:N", async () => {
  const agent = await startAgent();
  try {
    const h = await harness(`
pools:
  api:
    servers: [{ address: 127.0.0.1:9001, weight: 10 }, 127.0.0.1:9002]
    health: { type: agent, port: ${agent.port}, send: "hello\\n", interval: 100ms, timeout: 100ms, rise: 1, fall: 1 }`);
    const [first] = h.pools.get("api")!.servers;
    const weight = () => h.dp.effectiveWeight[first.slot];
    await waitFor("first checks", () => h.service.registry.all().every((m) => m.checks > 0), 3000);
    assert.equal(weight(), 10);
    assert.ok(agent.received.includes("hello\n"), "the agent got `send`");
    agent.reply = "75%";
    await waitFor("75% of 10", () => weight() === 8, 3000);
    agent.reply = "drain";
    await waitFor("drained", () => weight() === 0, 3000);
    assert.ok(h.pools.get("api")!.isAvailable(first), "drain keeps the server up with no new sessions");
    agent.reply = "ready";
    await waitFor("ready", () => weight() === 10, 3000);
    agent.reply = "down # maintenance window";
    await waitFor("DOWN", () => first.down.has("health"), 3000);
    assert.ok(h.lines.includes("api/127.0.0.1:9001 DOWN: agent says down (maintenance window) (1/1)"), h.lines.join("\n"));
    agent.reply = "up, weight:3";
    await waitFor("UP at weight 3", () => !first.down.has("health") && weight() === 3, 3000);
    assert.ok(h.lines.includes("api/127.0.0.1:9001 UP: agent says up weight:3 (1/1)"), h.lines.join("\n"));
  } finally {
    agent.close();
  }
});

test("health: UDP check: a matching reply is up, a wrong or missing reply is down", async () => {
  const dgram = await import("node:dgram");
  const echo = dgram.createSocket("udp4");
  let answer = (msg: string) => `pong ${msg}`;
  echo.on("message", (m, peer) => {
    const reply = answer(String(m));
    if (reply) echo.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
  const port = echo.address().port;
  try {
    const m = monitorFor({ port }, `{ type: udp, send: ping, expect: "^pong ping$", timeout: 200ms, interval: 1s }`);
    assert.deepEqual(await m.runOnce(), { ok: true, detail: "UDP reply ok" });
    answer = () => "busy";
    assert.deepEqual(await m.runOnce(), { ok: false, detail: `UDP reply "busy" does not match /^pong ping$/` });
    answer = () => "";
    assert.deepEqual(await m.runOnce(), { ok: false, detail: "UDP no reply after 200ms" });
    const silentOk = monitorFor({ port }, `{ type: udp, send: ping, timeout: 150ms, interval: 1s }`);
    assert.deepEqual(await silentOk.runOnce(), { ok: true, detail: "UDP sent, no ICMP error" }, "no reply needed: silence is up");
  } finally {
    echo.close();
  }
  // Nothing listens now. Bun surfaces the ICMP port unreachable on the connected socket.
  const closed = monitorFor({ port }, `{ type: udp, send: ping, require_reply: true, timeout: 150ms, interval: 1s }`);
  const r = await closed.runOnce();
  assert.equal(r.ok, false);
  assert.match(r.detail, /^UDP (port unreachable|no reply after 150ms)$/);
  if (runtime.name === "bun") {
    const noReply = monitorFor({ port }, `{ type: udp, send: ping, timeout: 150ms, interval: 1s }`);
    assert.deepEqual(await noReply.runOnce(), { ok: false, detail: "UDP port unreachable" });
  }
});

test("health: HTTP checks reuse one connection (Envoy's reuse_connection), survive the server closing it, and can open one per check", async () => {
  const s = await flaky("reuse");
  const reused = monitorFor(s, "{ type: http, timeout: 300ms, interval: 1s }");
  for (let i = 0; i < 5; i++) assert.deepEqual(await reused.runOnce(), { ok: true, detail: "HTTP 200" });
  assert.equal(s.connections, 1, "five checks, one connection");
  // The server drops its idle connections (an idle timeout, a restart of workers): not a failure.
  await s.kill();
  await s.start();
  assert.deepEqual(await reused.runOnce(), { ok: true, detail: "HTTP 200" });
  assert.equal(s.connections, 2);
  const fresh = monitorFor(s, "{ type: http, timeout: 300ms, interval: 1s, reuse_connection: false }");
  for (let i = 0; i < 3; i++) assert.deepEqual(await fresh.runOnce(), { ok: true, detail: "HTTP 200" });
  assert.equal(s.connections, 5, "reuse_connection: false opens one per check");
});

test("health: HTTPS check verifies the certificate against a CA, sends SNI, and can skip verification", { skip: needs("openssl") }, async () => {
  const dir = `/tmp/fulcrum-health-tls-${runtime.name}-${process.pid}`;
  await sh(["mkdir", "-p", dir]);
  await sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`,
    "-days", "1", "-subj", "/CN=health.test", "-addext", "subjectAltName=DNS:health.test"]);
  const https = await import("node:https");
  const fs = await import("node:fs");
  const seen: { sni: string; host: string }[] = [];
  const server = https.createServer({ key: fs.readFileSync(`${dir}/key.pem`), cert: fs.readFileSync(`${dir}/cert.pem`) }, (req, res) => {
    seen.push({ sni: (req.socket as { servername?: string }).servername ?? "", host: req.headers.host ?? "" });
    res.end("secure ok\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const noCa = monitorFor({ port }, "{ type: https, host: health.test, timeout: 500ms, interval: 1s }");
    const r = await noCa.runOnce();
    assert.equal(r.ok, false);
    assert.match(r.detail, /^HTTPS TLS handshake failed: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
    const withCa = monitorFor({ port }, `{ type: https, host: health.test, ca: ${dir}/cert.pem, body_regex: "^secure", timeout: 500ms, interval: 1s }`);
    assert.deepEqual(await withCa.runOnce(), { ok: true, detail: "HTTPS 200" });
    assert.deepEqual(seen.at(-1), { sni: "health.test", host: "health.test" }, "SNI and Host from `host`");
    const wrongName = monitorFor({ port }, `{ type: https, host: other.test, ca: ${dir}/cert.pem, timeout: 500ms, interval: 1s }`);
    const w = await wrongName.runOnce();
    assert.equal(w.ok, false, "the certificate is for health.test, not other.test");
    assert.match(w.detail, /^HTTPS TLS handshake failed: ERR_TLS_CERT_ALTNAME_INVALID/);
    const skip = monitorFor({ port }, "{ type: https, verify: false, sni: health.test, timeout: 500ms, interval: 1s }");
    assert.deepEqual(await skip.runOnce(), { ok: true, detail: "HTTPS 200" });
    assert.equal(seen.at(-1)?.sni, "health.test");
  } finally {
    server.close();
    await sh(["rm", "-rf", dir]);
  }
});
