// Access rules end to end with curl through the real fulcrum CLI to real backends: allow/deny by
// CIDR per listener (HTTP, tcp, udp) and per route, with the longest prefix deciding and the client
// taken from a PROXY header when the listener accepts one; basic auth from files Debian's htpasswd
// made (bcrypt and SHA users); redirect and respond routes over HTTP/1.1 and HTTP/2.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { runtime } from "../src/runtime/index.ts";
import { freePort, startBackend, type Backend, type Echo } from "./helpers/backends.ts";
import { startFulcrum, writeTemp, type Running } from "./helpers/fulcrum.ts";
import { needs } from "./helpers/peers.ts";

const noPeers = needs("curl", "htpasswd");
const dir = `/tmp/fulcrum-access-${runtime.name}-${Date.now()}`;
let web: Backend, fulcrum: Running, admin: string;
let mainPort: number, openPort: number, v6Port: number, proxyPort: number, tcpPort: number, udpPort: number;
let udpEcho: dgram.Socket;

async function run(cmd: string[]): Promise<{ code: number; out: string; err: string }> {
  const child = runtime.spawn(cmd);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  return { code: await child.exited, out, err };
}

interface CurlReply { code: number; version: string; status: number; headers: Map<string, string>; body: string }

/** curl printing the head, the body, then the version and status. */
async function curl(args: string[]): Promise<CurlReply> {
  const r = await run(["curl", "-s", "--max-time", "15", "-D", "-", "-w", "\n%{http_version} %{http_code}", ...args]);
  const m = /\n(\S+) (\d+)$/.exec(r.out);
  if (!m) return { code: r.code, version: "", status: 0, headers: new Map(), body: r.out };
  const text = r.out.slice(0, m.index);
  const split = text.indexOf("\r\n\r\n");
  const headers = new Map<string, string>();
  for (const line of text.slice(0, split).split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return { code: r.code, version: m[1], status: Number(m[2]), headers, body: text.slice(split + 4) };
}

const from = (address: string) => ["--interface", address];

before(async () => {
  if (noPeers) return;
  await run(["mkdir", "-p", dir]);
  // Users made by htpasswd itself: bcrypt at cost 5, and SHA.
  for (const args of [["-cbB", "-C", "5", `${dir}/users`, "alice", "wonder land"], ["-bs", `${dir}/users`, "bob", "builder"]]) {
    const r = await run(["htpasswd", ...args]);
    assert.equal(r.code, 0, r.err);
  }
  // A large deny list: 20,000 prefixes of 10.0.0.0/8, comments, and the one that matters.
  const lines = ["# generated", ...Array.from({ length: 20_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`), "127.0.0.4  # this one", ""];
  await runtime.writeTextFile(`${dir}/deny.txt`, lines.join("\n"));
  web = await startBackend("web");
  udpEcho = dgram.createSocket("udp4");
  udpEcho.on("message", (msg, rinfo) => udpEcho.send(msg, rinfo.port, rinfo.address));
  await new Promise<void>((resolve) => udpEcho.bind(0, "127.0.0.1", resolve));
  [mainPort, openPort, v6Port, proxyPort, tcpPort, udpPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const adminPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  fulcrum = await startFulcrum(`
admin: { bind: 127.0.0.1:${adminPort}, token_file: ${await writeTemp("t\n", "token")} }
listeners:
  - { name: main, bind: 127.0.0.1:${mainPort}, http2: true, allow: [127.0.0.0/8], deny: [127.0.0.3] }
  - { name: open, bind: 127.0.0.1:${openPort}, deny_file: ${dir}/deny.txt }
  - { name: v6, bind: "[::1]:${v6Port}" }
  - { name: proxied, bind: 127.0.0.1:${proxyPort}, accept_proxy: true, allow: [192.0.2.0/24, 2001:db8::/32] }
  - { name: tcp, protocol: tcp, bind: 127.0.0.1:${tcpPort}, pool: web, deny: [127.0.0.2] }
  - { name: udp, protocol: udp, bind: 127.0.0.1:${udpPort}, pool: echo, deny: [127.0.0.2] }
pools:
  web: { servers: [${web.address}] }
  echo: { servers: [127.0.0.1:${udpEcho.address().port}] }
routes:
  - { name: private, path_prefix: /private, pool: web, deny: [127.0.0.2/32] }
  - { name: v6only, path_prefix: /v6only, pool: web, allow: ["::1/128"] }
  - name: secret
    path_prefix: /secret
    pool: web
    auth: { basic: { realm: "Fulcrum staff", htpasswd: ${dir}/users } }
  - { name: old, path_prefix: /old, redirect: { to: "https://example.com/new", status: 301 } }
  - { name: moved, path_prefix: /moved, redirect: { to: "https://$host/v2$request_uri", status: 308 } }
  - { name: secure, path_prefix: /login, redirect: { scheme: https, port: 8443 } }
  - { name: health, path: /healthz, respond: { status: 200, headers: { content-type: text/plain, x-check: yes }, body: "ok\\n" } }
  - name: staff-only
    path: /staff
    auth: { basic: { realm: "Fulcrum staff", htpasswd: ${dir}/users } }
    respond: { status: 204 }
  - { name: rest, pool: web }
`, 6);
});

after(async () => {
  await fulcrum?.stop();
  await web?.stop();
  udpEcho?.close();
  await run(["rm", "-rf", dir]);
});

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (m && m[1] === name && labels.split(",").every((l) => m[2].includes(l))) return Number(m[3]);
  }
  assert.fail(`no sample ${name}{${labels}}`);
}

test("allow/deny on a listener: inside the allow list passes, a longer deny inside it is refused with 403 and counted", { skip: noPeers }, async () => {
  const before = await metric("fulcrum_listener_errors_total", 'listener="main",kind="denied"');
  const ok = await curl([...from("127.0.0.1"), `http://127.0.0.1:${mainPort}/a`]);
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as Echo).backend, "web");
  const alsoOk = await curl([...from("127.0.0.5"), `http://127.0.0.1:${mainPort}/a`]);
  assert.equal(alsoOk.status, 200);
  const denied = await curl([...from("127.0.0.3"), `http://127.0.0.1:${mainPort}/a`]);
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get("x-fulcrum-error"), "denied");
  assert.equal(await metric("fulcrum_listener_errors_total", 'listener="main",kind="denied"'), before + 1);
  // The same refusal over h2 (prior knowledge on a plain listener).
  const h2 = await curl(["--http2-prior-knowledge", ...from("127.0.0.3"), `http://127.0.0.1:${mainPort}/a`]);
  assert.equal(h2.version, "2");
  assert.equal(h2.status, 403);
});

test("deny_file of 20,001 prefixes without an allow list: the listed address is refused, others pass", { skip: noPeers }, async () => {
  assert.equal((await curl([...from("127.0.0.4"), `http://127.0.0.1:${openPort}/x`])).status, 403);
  assert.equal((await curl([...from("127.0.0.6"), `http://127.0.0.1:${openPort}/x`])).status, 200);
});

test("allow/deny on a route: its deny refuses one client there only; an IPv6-only allow list admits ::1 and no IPv4 client", { skip: noPeers }, async () => {
  const before = await metric("fulcrum_route_refused_total", 'route="private",reason="denied"');
  assert.equal((await curl([...from("127.0.0.2"), `http://127.0.0.1:${mainPort}/private/x`])).status, 403);
  assert.equal((await curl([...from("127.0.0.1"), `http://127.0.0.1:${mainPort}/private/x`])).status, 200);
  assert.equal((await curl([...from("127.0.0.2"), `http://127.0.0.1:${mainPort}/public`])).status, 200);
  assert.equal(await metric("fulcrum_route_refused_total", 'route="private",reason="denied"'), before + 1);
  assert.equal((await curl([`http://[::1]:${v6Port}/v6only`])).status, 200);
  assert.equal((await curl([`http://127.0.0.1:${mainPort}/v6only`])).status, 403);
});

/** Sends a PROXY v1 header naming `client`, then a request; the raw response. */
function throughProxyHeader(client: string, family: "TCP4" | "TCP6"): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, "127.0.0.1");
    let got = "";
    const timer = setTimeout(() => { s.destroy(); reject(new Error("no answer in 10 s")); }, 10_000);
    s.on("connect", () => s.write(`PROXY ${family} ${client} ${family === "TCP4" ? "127.0.0.1" : "2001:db8::1"} 40000 80\r\nGET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    s.on("data", (d) => got += d.toString());
    s.on("close", () => { clearTimeout(timer); resolve(got); });
    s.on("error", (e) => { clearTimeout(timer); reject(e); });
  });
}

test("with accept_proxy the PROXY header's source is the client the rules judge", { skip: noPeers }, async () => {
  assert.match(await throughProxyHeader("192.0.2.7", "TCP4"), /^HTTP\/1\.1 200 /);
  assert.match(await throughProxyHeader("198.51.100.7", "TCP4"), /^HTTP\/1\.1 403 /);
  assert.match(await throughProxyHeader("2001:db8::42", "TCP6"), /^HTTP\/1\.1 200 /);
  assert.match(await throughProxyHeader("2001:db9::42", "TCP6"), /^HTTP\/1\.1 403 /);
});

test("allow/deny on an L4 tcp listener: a refused client is closed at accept, others are proxied", { skip: noPeers }, async () => {
  const ok = await curl([...from("127.0.0.1"), `http://127.0.0.1:${tcpPort}/via-tcp`]);
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as Echo).target, "/via-tcp");
  const refused = await curl([...from("127.0.0.2"), `http://127.0.0.1:${tcpPort}/via-tcp`]);
  assert.equal(refused.status, 0);
  // Reset as it connects (7), or closed before any answer (52, 56): never an HTTP reply.
  assert.ok([7, 52, 56].includes(refused.code), `curl exit ${refused.code}`);
});

test("allow/deny on an L4 udp listener: a refused client's datagram is dropped, another's is answered", { skip: noPeers }, async () => {
  const exchange = (address: string) => new Promise<string | null>((resolve, reject) => {
    const s = dgram.createSocket("udp4");
    // A dropped datagram shows as no answer: bounded wait (2 s on a loaded machine; the allowed
    // client's answer comes in milliseconds).
    const timer = setTimeout(() => { s.close(); resolve(null); }, 2000);
    s.on("message", (m) => { clearTimeout(timer); s.close(); resolve(m.toString()); });
    s.on("error", (e) => { clearTimeout(timer); reject(e); });
    s.bind(0, address, () => s.send(`hello from ${address}`, udpPort, "127.0.0.1"));
  });
  assert.equal(await exchange("127.0.0.1"), "hello from 127.0.0.1");
  assert.equal(await exchange("127.0.0.2"), null);
});

test("basic auth: htpasswd's bcrypt and SHA users get through (credentials not forwarded); wrong, unknown and missing get 401 with the realm", { skip: noPeers }, async () => {
  const alice = await curl(["-u", "alice:wonder land", `http://127.0.0.1:${mainPort}/secret/a`]);
  assert.equal(alice.status, 200);
  const echo = JSON.parse(alice.body) as Echo;
  assert.equal(echo.target, "/secret/a");
  assert.equal(echo.headers.authorization, undefined);
  // Again: remembered, same answer.
  assert.equal((await curl(["-u", "alice:wonder land", `http://127.0.0.1:${mainPort}/secret/b`])).status, 200);
  assert.equal((await curl(["-u", "bob:builder", `http://127.0.0.1:${mainPort}/secret/c`])).status, 200);
  const before = await metric("fulcrum_route_refused_total", 'route="secret",reason="unauthorized"');
  for (const args of [["-u", "alice:wonderland"], ["-u", "bob:Builder"], ["-u", "carol:wonder land"], []]) {
    const r = await curl([...args, `http://127.0.0.1:${mainPort}/secret/a`]);
    assert.equal(r.status, 401, args.join(" "));
    assert.equal(r.headers.get("www-authenticate"), 'Basic realm="Fulcrum staff", charset="UTF-8"');
  }
  assert.equal(await metric("fulcrum_route_refused_total", 'route="secret",reason="unauthorized"'), before + 4);
  // Over h2, the same.
  const h2 = await curl(["--http2-prior-knowledge", "-u", "alice:wonder land", `http://127.0.0.1:${mainPort}/secret/h2`]);
  assert.equal(h2.version, "2");
  assert.equal(h2.status, 200);
  const h2wrong = await curl(["--http2-prior-knowledge", "-u", "alice:nope", `http://127.0.0.1:${mainPort}/secret/h2`]);
  assert.equal(h2wrong.status, 401);
  assert.match(h2wrong.headers.get("www-authenticate") ?? "", /^Basic realm="Fulcrum staff"/);
});

test("basic auth in front of a respond route: 401 without the password, the route's answer with it", { skip: noPeers }, async () => {
  assert.equal((await curl([`http://127.0.0.1:${mainPort}/staff`])).status, 401);
  assert.equal((await curl(["-u", "bob:builder", `http://127.0.0.1:${mainPort}/staff`])).status, 204);
  assert.equal((await curl(["-u", "alice:wonder land", "--http2-prior-knowledge", `http://127.0.0.1:${mainPort}/staff`])).status, 204);
});

for (const h2 of [false, true]) {
  const proto = h2 ? ["--http2-prior-knowledge"] : ["--http1.1"];
  const name = h2 ? "h2" : "h1";
  test(`redirect routes (${name}): a fixed URL, a template with $host and $request_uri, and the HTTP->HTTPS form`, { skip: noPeers }, async () => {
    const fixed = await curl([...proto, `http://127.0.0.1:${mainPort}/old/page`]);
    assert.equal(fixed.version, h2 ? "2" : "1.1");
    assert.equal(fixed.status, 301);
    assert.equal(fixed.headers.get("location"), "https://example.com/new");
    const templ = await curl([...proto, "-H", "Host: shop.test", `http://127.0.0.1:${mainPort}/moved/x?y=1`]);
    assert.equal(templ.status, 308);
    assert.equal(templ.headers.get("location"), "https://shop.test/v2/moved/x?y=1");
    const secure = await curl([...proto, "-H", "Host: shop.test:8080", `http://127.0.0.1:${mainPort}/login?next=/cart`]);
    assert.equal(secure.status, 301);
    assert.equal(secure.headers.get("location"), "https://shop.test:8443/login?next=/cart");
  });

  test(`respond routes (${name}): status, headers and body; HEAD gets the head only; a body sent is dropped and the connection kept`, { skip: noPeers }, async () => {
    const hitsBefore = web.hits;
    const r = await curl([...proto, `http://127.0.0.1:${mainPort}/healthz`]);
    assert.equal(r.status, 200);
    assert.equal(r.body, "ok\n");
    assert.equal(r.headers.get("content-type"), "text/plain");
    assert.equal(r.headers.get("x-check"), "yes");
    assert.equal(r.headers.get("content-length"), "3");
    const head = await run(["curl", "-s", ...proto, "-I", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", `http://127.0.0.1:${mainPort}/healthz`]);
    assert.equal(head.out, "200 0");
    // A POST with a body; over HTTP/1.1 a second request on the same connection follows (curl
    // reuses it: num_connects 0). (curl 7.88 does not run a --next transfer on a reused h2c connection.)
    const post = ["-d", "x".repeat(5000), `http://127.0.0.1:${mainPort}/healthz`];
    const two = await run(["curl", "-s", ...proto, ...post, ...(h2 ? [] : ["--next", ...proto, `http://127.0.0.1:${mainPort}/healthz`, "-w", "%{num_connects}"])]);
    assert.equal(two.out, h2 ? "ok\n" : "ok\nok\n0", two.err);
    // A client that waits for 100 Continue gets the answer instead, without its body being waited for.
    const expect = await run(["curl", "-s", ...proto, "-H", "Expect: 100-continue", "--expect100-timeout", "30", "-d", "x".repeat(5000),
      "-w", "%{http_code} %{time_total}", `http://127.0.0.1:${mainPort}/healthz`]);
    const [code, seconds] = expect.out.slice(3).split(" ");
    assert.equal(expect.out.slice(0, 3), "ok\n");
    assert.equal(code, "200");
    // curl would wait 30 s for a 100 Continue that never came; 10 s is slack for a loaded machine.
    assert.ok(Number(seconds) < 10, `answered after ${seconds} s`);
    assert.equal(web.hits, hitsBefore, "no request reached the pool");
  });
}

// Last: it changes the users file and reloads.
test("basic auth: a reload reads the htpasswd file again; a removed user's remembered success is gone", { skip: noPeers }, async () => {
  const url = `http://127.0.0.1:${mainPort}/secret/r`;
  assert.equal((await curl(["-u", "alice:wonder land", url])).status, 200);
  assert.equal((await curl(["-u", "carol:new one", url])).status, 401);
  for (const args of [["-D", `${dir}/users`, "alice"], ["-bB", "-C", "5", `${dir}/users`, "carol", "new one"]]) {
    const r = await run(["htpasswd", ...args]);
    assert.equal(r.code, 0, r.err);
  }
  fulcrum.child.kill("SIGHUP");
  let carol = 0;
  for (let i = 0; i < 100 && carol !== 200; i++) { // bounded: 100 tries, 100 ms apart
    await new Promise((r) => setTimeout(r, 100));
    carol = (await curl(["-u", "carol:new one", url])).status;
  }
  assert.equal(carol, 200, "the reloaded file's new user gets in");
  assert.equal((await curl(["-u", "alice:wonder land", url])).status, 401);
  assert.equal((await curl(["-u", "bob:builder", url])).status, 200);
});
