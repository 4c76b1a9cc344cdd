// Access logs end to end: a real `fulcrum run` in front of a real nginx, driven by curl (HTTP/1.1,
// HTTP/2 with prior knowledge, through an L4 tcp listener) and a raw socket (a PROXY header).
// The lines are read back from the files and parsed; logrotate's move + SIGUSR1 and a reload on
// the same path lose and repeat nothing; lines still buffered at shutdown are written.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { runtime } from "../src/runtime/index.ts";
import { type Running, runCli, startCli, writeTemp } from "./helpers/fulcrum.ts";
import { freePort, type Peer, startNginx, tempDir } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";

const skip = needs("nginx", "curl");
const BODY = "hello from nginx\n";
let upstream: Peer & { dir: string };
let fulcrum: Running;
let configFile = "";
let dir = "";
const port: Record<string, number> = {};

function config(extraRoute = ""): string {
  return `
admin: { bind: 127.0.0.1:${port.admin} }
access_log: { path: ${dir}/default.log, flush: 50ms }
listeners:
  - name: web
    bind: 127.0.0.1:${port.web}
    http2: true
    access_log: { path: ${dir}/access.log, format: combined, flush: 50ms }
  - name: api-json
    bind: 127.0.0.1:${port.json}
    access_log: { path: ${dir}/access.json, format: json, flush: 50ms }
  - name: proxied
    bind: 127.0.0.1:${port.proxied}
    accept_proxy: true
    access_log: { path: ${dir}/access.log, flush: 50ms }
  - name: quiet
    bind: 127.0.0.1:${port.quiet}
    access_log: off
  - name: buffered
    bind: 127.0.0.1:${port.buffered}
    access_log: { path: ${dir}/buffered.log, flush: 10m }
  - name: tcp-in
    bind: 127.0.0.1:${port.tcp}
    protocol: tcp
    pool: web
routes:
${extraRoute}  - { name: gone, path_prefix: /gone, pool: gone }
  - { name: main, pool: web }
pools:
  web: { servers: [127.0.0.1:${port.upstream}] }
  gone: { servers: [{ address: 127.0.0.1:${port.refused}, max_fails: 0 }] }
`;
}

before(async () => {
  if (skip) return;
  for (const k of ["upstream", "refused", "admin", "web", "json", "proxied", "quiet", "buffered", "tcp"]) port[k] = await freePort();
  dir = tempDir("access-log");
  upstream = await startNginx(`http { access_log off; server { listen 127.0.0.1:${port.upstream}; location / { return 200 "${BODY.trim()}\\n"; } } }`, port.upstream);
  configFile = await writeTemp(config());
  fulcrum = await startCli(["run", "--config", configFile], 6);
});

after(async () => {
  if (skip) return;
  await fulcrum?.stop().catch(() => {});
  await upstream?.stop();
});

async function run(cmd: string[]): Promise<string> {
  const child = runtime.spawn(cmd);
  const [out] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  await child.exited;
  return out;
}

const curl = (...args: string[]) => run(["curl", "-s", "--max-time", "10", ...args]);

function fileLines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, "latin1").split("\n").filter(Boolean) : [];
}

/** The lines of `path` that `match`, once there are at least `n` (bounded wait: lines are flushed
 * every 50 ms; 10 s leaves room for a loaded machine). */
async function linesMatching(path: string, match: (line: string) => boolean, n = 1): Promise<string[]> {
  const until = Date.now() + 10_000;
  for (;;) {
    const found = fileLines(path).filter(match);
    if (found.length >= n || Date.now() > until) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const COMBINED = /^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\S+) (\S+) (\S+) (\S+) (\S+) (\d+) (\S+) (\S+) (\S+)$/;

interface Combined {
  remote: string; user: string; time: string; request: string; status: number; bytes: number; referer: string; agent: string;
  upstream: string; upstreamStatus: string; connect: string; header: string; requestTime: string; retries: number;
  listener: string; route: string; pool: string;
}

function parseCombined(line: string): Combined {
  const m = COMBINED.exec(line);
  assert.ok(m, `not a combined line: ${line}`);
  return {
    remote: m[1], user: m[2], time: m[3], request: m[4], status: Number(m[5]), bytes: Number(m[6]), referer: m[7], agent: m[8],
    upstream: m[9], upstreamStatus: m[10], connect: m[11], header: m[12], requestTime: m[13], retries: Number(m[14]),
    listener: m[15], route: m[16], pool: m[17],
  };
}

/** A time column: seconds with ms resolution. */
function secondsOf(field: string): number {
  assert.match(field, /^\d+\.\d{3}$/);
  return Number(field);
}

const hasTarget = (target: string) => (line: string) => line.includes(` ${target} `) || line.includes(`"${target}"`);

test("access log: an HTTP/1.1 request through Fulcrum logs a combined line with upstream, status, times, route and pool", { skip }, async () => {
  const body = await curl("-A", "access-test/1.0", "-e", "http://ref.example/page", `http://127.0.0.1:${port.web}/t1?q=1`);
  assert.equal(body, BODY);
  const [line] = await linesMatching(`${dir}/access.log`, hasTarget("/t1?q=1"));
  const l = parseCombined(line);
  assert.equal(l.remote, "127.0.0.1");
  assert.equal(l.user, "-");
  assert.match(l.time, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$/);
  assert.equal(l.request, "GET /t1?q=1 HTTP/1.1");
  assert.equal(l.status, 200);
  assert.equal(l.bytes, BODY.length);
  assert.equal(l.referer, "http://ref.example/page");
  assert.equal(l.agent, "access-test/1.0");
  assert.equal(l.upstream, `127.0.0.1:${port.upstream}`);
  assert.equal(l.upstreamStatus, "200");
  const [connect, header, total] = [secondsOf(l.connect), secondsOf(l.header), secondsOf(l.requestTime)];
  assert.ok(connect <= header && header <= total, `${connect} <= ${header} <= ${total}`);
  assert.equal(l.retries, 0);
  assert.equal(l.listener, "web");
  assert.equal(l.route, "main");
  assert.equal(l.pool, "web");
});

test("access log: an HTTP/2 request (curl --http2-prior-knowledge) logs the same fields, protocol HTTP/2.0", { skip }, async () => {
  const out = await curl("--http2-prior-knowledge", "-A", "access-test/2.0", "-w", "%{http_version}", `http://127.0.0.1:${port.web}/t2`);
  assert.equal(out, `${BODY}2`);
  const [line] = await linesMatching(`${dir}/access.log`, hasTarget("/t2"));
  const l = parseCombined(line);
  assert.equal(l.request, "GET /t2 HTTP/2.0");
  assert.equal(l.status, 200);
  assert.equal(l.bytes, BODY.length);
  assert.equal(l.agent, "access-test/2.0");
  assert.equal(l.upstream, `127.0.0.1:${port.upstream}`);
  assert.equal(l.upstreamStatus, "200");
  for (const t of [l.connect, l.header, l.requestTime]) secondsOf(t);
  assert.deepEqual([l.listener, l.route, l.pool], ["web", "main", "web"]);
});

test("access log: the json format is one object per line with named fields", { skip }, async () => {
  await curl("-A", "json-agent", `http://127.0.0.1:${port.json}/t3`);
  const [line] = await linesMatching(`${dir}/access.json`, (s) => s.includes('"/t3"'));
  const j = JSON.parse(line);
  assert.equal(j.remote_addr, "127.0.0.1");
  assert.equal(j.request, "GET /t3 HTTP/1.1");
  assert.equal(j.method, "GET");
  assert.equal(j.uri, "/t3");
  assert.equal(j.status, 200);
  assert.equal(j.body_bytes_sent, BODY.length);
  assert.equal(j.user_agent, "json-agent");
  assert.equal(j.referer, null);
  assert.equal(j.upstream_addr, `127.0.0.1:${port.upstream}`);
  assert.equal(j.upstream_status, 200);
  for (const k of ["upstream_connect_time", "upstream_header_time", "request_time"]) assert.equal(typeof j[k], "number", k);
  assert.ok(j.upstream_header_time <= j.request_time);
  assert.equal(j.retries, 0);
  assert.deepEqual([j.listener, j.route, j.pool], ["api-json", "main", "web"]);
  assert.ok(!Number.isNaN(Date.parse(j.time)));
});

test("access log: a server that refuses logs 502 with the server tried and no upstream status", { skip }, async () => {
  await curl(`http://127.0.0.1:${port.web}/gone/x`);
  const [line] = await linesMatching(`${dir}/access.log`, hasTarget("/gone/x"));
  const l = parseCombined(line);
  assert.equal(l.status, 502);
  assert.ok(l.bytes > 0); // Fulcrum's own error body
  assert.equal(l.upstream, `127.0.0.1:${port.refused}`);
  assert.equal(l.upstreamStatus, "-");
  assert.equal(l.connect, "-");
  assert.deepEqual([l.route, l.pool], ["gone", "gone"]);
});

test("access log: an answer Fulcrum gives itself logs too: a malformed head is a 400 with request \"-\"", { skip }, async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port.web, "127.0.0.1", () => s.write("BAD REQUEST LINE t8\r\n\r\n"));
    let got = "";
    s.on("data", (d: Uint8Array) => got += new TextDecoder().decode(d));
    s.on("end", () => resolve(got));
    s.on("error", reject);
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error("no reply")); });
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
  const [line] = await linesMatching(`${dir}/access.log`, (l) => / "-" 400 /.test(l));
  const l = parseCombined(line);
  assert.equal(l.request, "-");
  assert.equal(l.status, 400);
  assert.equal(l.bytes, reply.length - reply.indexOf("\r\n\r\n") - 4); // the error body Fulcrum sent
  assert.deepEqual([l.upstream, l.upstreamStatus, l.connect, l.header, l.route, l.pool], ["-", "-", "-", "-", "-", "-"]);
  assert.equal(l.listener, "web");
});

test("access log: behind accept_proxy the client is the PROXY header's source; listeners on one path share its file", { skip }, async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port.proxied, "127.0.0.1", () => {
      s.write(`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${port.proxied}\r\nGET /t5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    let got = "";
    s.on("data", (d: Uint8Array) => got += new TextDecoder().decode(d));
    s.on("end", () => resolve(got));
    s.on("error", reject);
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error("no reply")); });
  });
  assert.match(reply, /^HTTP\/1\.1 200/);
  const [line] = await linesMatching(`${dir}/access.log`, hasTarget("/t5"));
  const l = parseCombined(line);
  assert.equal(l.remote, "203.0.113.7");
  assert.equal(l.listener, "proxied");
  assert.equal(l.status, 200);
});

test("access log: an L4 tcp connection logs one line (the top-level access_log applies to it)", { skip }, async () => {
  const body = await curl(`http://127.0.0.1:${port.tcp}/t6`);
  assert.equal(body, BODY);
  const lines = await linesMatching(`${dir}/default.log`, (s) => s.includes(" tcp-in "));
  assert.equal(lines.length, 1);
  const l = parseCombined(lines[0]);
  assert.equal(l.request, "TCP");
  assert.equal(l.status, 200);
  assert.ok(l.bytes > BODY.length, `${l.bytes} bytes sent to the client (head and body)`);
  assert.equal(l.upstream, `127.0.0.1:${port.upstream}`);
  secondsOf(l.connect);
  secondsOf(l.requestTime);
  assert.deepEqual([l.listener, l.route, l.pool], ["tcp-in", "-", "web"]);
});

test("access log: `access_log: off` on a listener logs nothing there, whatever the top-level default", { skip }, async () => {
  assert.equal(await curl(`http://127.0.0.1:${port.quiet}/t7-quiet`), BODY);
  // A marker through the listener that uses the top-level file: once its line is there, a line
  // for the quiet request (made before it, into the same buffer) would be too.
  await curl(`http://127.0.0.1:${port.tcp}/t7-marker`);
  const markers = await linesMatching(`${dir}/default.log`, (s) => s.includes(" tcp-in "), 2);
  assert.equal(markers.length, 2);
  for (const f of ["default.log", "access.log", "access.json"]) {
    assert.deepEqual(fileLines(`${dir}/${f}`).filter((s) => s.includes("t7-quiet")), [], f);
  }
});

test("access log: logrotate (rename, SIGUSR1 to the Fulcrum process) moves new lines to a new file; none lost or repeated", { skip }, async () => {
  const path = `${dir}/access.log`;
  for (let i = 0; i < 10; i++) await curl(`http://127.0.0.1:${port.web}/rot/before/${i}`);
  assert.equal((await linesMatching(path, (s) => s.includes("/rot/before/"), 10)).length, 10);
  renameSync(path, `${path}.1`);
  process.kill(fulcrum.child.pid, "SIGUSR1");
  // The reopen creates the file at the path: wait for it (bounded) before the next requests.
  for (let i = 0; i < 400 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(existsSync(path), "reopened at the original path");
  for (let i = 0; i < 10; i++) await curl(`http://127.0.0.1:${port.web}/rot/after/${i}`);
  const after = await linesMatching(path, (s) => s.includes("/rot/after/"), 10);
  const rotated = fileLines(`${path}.1`).filter((s) => s.includes("/rot/"));
  assert.deepEqual(rotated.map((s) => parseCombined(s).request), Array.from({ length: 10 }, (_, i) => `GET /rot/before/${i} HTTP/1.1`));
  assert.deepEqual(after.map((s) => parseCombined(s).request), Array.from({ length: 10 }, (_, i) => `GET /rot/after/${i} HTTP/1.1`));
  assert.deepEqual(fileLines(path).filter((s) => s.includes("/rot/before/")), []);
});

test("access log: a reload that keeps the path loses and repeats no line of requests sent across it", { skip }, async () => {
  const path = `${dir}/access.log`;
  await runtime.writeTextFile(configFile, config("  - { name: added, path_prefix: /added, pool: web }\n"));
  const total = 30;
  for (let i = 0; i < total; i++) {
    if (i === 10) process.kill(fulcrum.child.pid, "SIGHUP");
    assert.equal(await curl(`http://127.0.0.1:${port.web}/reload/${i}`), BODY);
  }
  // The new generation serves: the route it added answers (bounded wait for the swap).
  for (let i = 0; i < 200 && !/generation 2 serving/.test(fulcrum.output()); i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(fulcrum.output(), /generation 2 serving/);
  await curl(`http://127.0.0.1:${port.web}/added/x`);
  const lines = await linesMatching(path, (s) => s.includes("/reload/"), total);
  const targets = lines.map((s) => parseCombined(s).request);
  assert.deepEqual(targets, Array.from({ length: total }, (_, i) => `GET /reload/${i} HTTP/1.1`));
  const [added] = await linesMatching(path, hasTarget("/added/x"));
  assert.equal(parseCombined(added).route, "added");
});

test("access log: /metrics counts the lines written per file, none dropped", { skip }, async () => {
  const path = `${dir}/access.json`;
  const n = fileLines(path).length;
  assert.ok(n >= 1);
  let text = "";
  for (let i = 0; i < 100; i++) {
    text = await (await fetch(`http://127.0.0.1:${port.admin}/metrics`)).text();
    if (text.includes(`fulcrum_access_log_lines_total{path="${path}"} ${n}\n`)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(text.includes(`fulcrum_access_log_lines_total{path="${path}"} ${n}\n`), text.split("\n").filter((l) => l.includes("access_log")).join("\n"));
  assert.ok(text.includes(`fulcrum_access_log_dropped_total{path="${path}"} 0\n`));
});

test("access log: a bad access_log gives key-path errors; an unopenable file stops the start", { skip }, async () => {
  const bad = await writeTemp(`listeners:
  - bind: 127.0.0.1:1
    access_log: { path: /tmp/x.log, format: common }
  - { bind: 127.0.0.1:2, protocol: tcp, pool: p, access_log: { path: relative.log } }
pools:
  p: { servers: [127.0.0.1:3] }
`);
  const r = await runCli(["check", "--config", bad]);
  assert.equal(r.code, 2);
  const out = r.stdout + r.stderr;
  assert.match(out, /listeners\[0\]\.access_log\.format: expected one of combined, json, got "common"/);
  assert.match(out, /listeners\[1\]\.access_log\.path: expected an absolute file path or stdout, got "relative\.log"/);
  const unopenable = await writeTemp(`listeners:
  - { bind: 127.0.0.1:${await freePort()}, access_log: /nonexistent-dir-${process.pid}/access.log }
pools:
  p: { servers: [127.0.0.1:3] }
`);
  const started = await runCli(["run", "--config", unopenable]);
  assert.equal(started.code, 1);
  assert.match(started.stdout + started.stderr, /access_log \/nonexistent-dir-\d+\/access\.log: cannot open/);
});

// Last: it stops the shared Fulcrum.
test("access log: lines still buffered at shutdown are written before the process exits", { skip }, async () => {
  const path = `${dir}/buffered.log`;
  assert.equal(await curl(`http://127.0.0.1:${port.buffered}/t9`), BODY);
  // Flushed every 10 minutes: nothing is in the file yet (the line waits in the buffer).
  assert.deepEqual(fileLines(path), []);
  assert.equal(await fulcrum.stop(), 0);
  const lines = fileLines(path);
  assert.equal(lines.length, 1);
  assert.equal(parseCombined(lines[0]).request, "GET /t9 HTTP/1.1");
});
