// PROXY protocol end to end: Fulcrum sends v1 and v2 to nginx (`listen ... proxy_protocol`),
// which must see the real client address; HAProxy (`send-proxy-v2`) in front of Fulcrum, whose
// listener accepts the header and passes the address on; broken headers close and are counted.
// The same for HTTP: an HTTP pool sends the header, an HTTP listener accepts one (X-Forwarded-For).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { freePort, type Peer, startHaproxy, startNginx, TcpClient } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";
import { encodeProxyV2 } from "../src/l4/proxy-protocol.ts";

const skip = needs("nginx", "haproxy");
let nginx: Peer & { dir: string }, haproxy: Peer;
let fulcrum: Running;
const port: Record<string, number> = {};
const GET = "GET / HTTP/1.0\r\nHost: pp.test\r\n\r\n";

before(async () => {
  if (skip) return;
  for (const name of ["nginx", "plain", "plain2", "hashed", "haproxy", "haproxyHttp", "v1", "v2", "accept", "strict", "http", "httpAccept"]) port[name] = await freePort();
  nginx = await startNginx(`http {
  log_format pp '$proxy_protocol_addr:$proxy_protocol_port via $remote_addr';
  access_log $DIR/access.log pp;
  server {
    listen 127.0.0.1:${port.nginx} proxy_protocol;
    location / { return 200 "client=$proxy_protocol_addr:$proxy_protocol_port via=$remote_addr\\n"; }
  }
  server {
    listen 127.0.0.1:${port.plain};
    location / { return 200 "xff=$http_x_forwarded_for\\n"; }
  }
  server {
    listen 127.0.0.1:${port.plain2};
    location / { return 200 "second xff=$http_x_forwarded_for\\n"; }
  }
}`, port.nginx);
  fulcrum = await startFulcrum(`
listeners:
  - { name: v1, bind: 127.0.0.1:${port.v1}, protocol: tcp, pool: nginx-v1 }
  - { name: v2, bind: 127.0.0.1:${port.v2}, protocol: tcp, pool: nginx-v2 }
  - { name: accept, bind: 127.0.0.1:${port.accept}, protocol: tcp, pool: nginx-v1, accept_proxy: true }
  - { name: strict, bind: 127.0.0.1:${port.strict}, protocol: tcp, pool: nginx-v2, accept_proxy: true, preread_timeout: 500ms }
  - { name: hashed, bind: 127.0.0.1:${port.hashed}, protocol: tcp, pool: hashed, accept_proxy: true }
  - { name: http, bind: 127.0.0.1:${port.http} }
  - { name: http-accept, bind: 127.0.0.1:${port.httpAccept}, accept_proxy: true }
routes:
  - { listeners: [http], pool: nginx-v2 }
  - { listeners: [http-accept], pool: plain }
pools:
  nginx-v1: { send_proxy: v1, servers: [127.0.0.1:${port.nginx}] }
  nginx-v2: { send_proxy: v2, servers: [127.0.0.1:${port.nginx}] }
  plain: { servers: [127.0.0.1:${port.plain}] }
  hashed: { scheduler: sh, servers: [127.0.0.1:${port.plain}, 127.0.0.1:${port.plain2}] }
`, 7);
  haproxy = await startHaproxy(`global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${port.haproxy}
  default_backend be
backend be
  server fulcrum 127.0.0.1:${port.accept} send-proxy-v2
frontend fe-http
  bind 127.0.0.1:${port.haproxyHttp}
  default_backend be-http
backend be-http
  server fulcrum-http 127.0.0.1:${port.httpAccept} send-proxy-v2
`, port.haproxy);
});

after(async () => {
  await haproxy?.stop();
  await fulcrum?.stop();
  await nginx?.stop();
});

async function get(listenerPort: number, from: string): Promise<{ text: string; clientPort: number }> {
  const c = await TcpClient.connect(listenerPort, "127.0.0.1", false, from);
  const clientPort = c.socket.localPort!;
  return { text: await c.exchange(GET), clientPort };
}

for (const version of ["v1", "v2"]) {
  test(`proxy-protocol: send_proxy ${version}: nginx sees the client's address and port, not Fulcrum's`, { skip }, async () => {
    const { text, clientPort } = await get(port[version], "127.0.0.2");
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, new RegExp(`client=127\\.0\\.0\\.2:${clientPort} via=127\\.0\\.0\\.1\\n$`));
  });
}

test("proxy-protocol: HAProxy send-proxy-v2 in front: Fulcrum reads the header and sends the client on (v1) to nginx", { skip }, async () => {
  const { text, clientPort } = await get(port.haproxy, "127.0.0.3");
  assert.match(text, new RegExp(`client=127\\.0\\.0\\.3:${clientPort} via=127\\.0\\.0\\.1\\n$`));
});

test("proxy-protocol: an accepted v2 header's address is the one sent on, and the bytes after it are the client's", { skip }, async () => {
  const header = encodeProxyV2({ address: "203.0.113.7", port: 4242 }, { address: "127.0.0.1", port: port.strict });
  const c = await TcpClient.connect(port.strict);
  const bytes = new Uint8Array(header.length + GET.length);
  bytes.set(header);
  bytes.set(Uint8Array.from(GET, (ch) => ch.charCodeAt(0)), header.length);
  const text = await c.exchange(bytes);
  assert.match(text, /client=203\.0\.113\.7:4242 via=127\.0\.0\.1\n$/);
});

const BROKEN: [string, string, string][] = [
  ["no header at all", GET, "proxy_header_missing"],
  ["a v1 line longer than 107 bytes", `PROXY TCP4 ${"1".repeat(120)}`, "proxy_header_too_long"],
  ["a malformed v1 line", "PROXY TCP4 1.2.3.4 5.6.7.8 x y\r\n" + GET, "proxy_header_malformed"],
];

for (const [what, bytes, kind] of BROKEN) {
  test(`proxy-protocol: accept_proxy: ${what} closes the connection unanswered and is logged as ${kind}`, { skip }, async () => {
    const c = await TcpClient.connect(port.strict, "127.0.0.1", false, "127.0.0.4");
    const text = await c.exchange(bytes);
    assert.equal(text, "");
    await c.until(() => new RegExp(`strict: ${kind} from 127\\.0\\.0\\.4`).test(fulcrum.output()), 2000, `${kind} in the log`);
  });
}

test("proxy-protocol: accept_proxy: a client that sends nothing is closed after preread_timeout", { skip }, async () => {
  const c = await TcpClient.connect(port.strict, "127.0.0.1", false, "127.0.0.5");
  const opened = performance.now();
  await c.until(() => c.closedAt !== null, 5000, "close");
  assert.equal(c.text, "");
  // The sweep's 50 ms granularity: never more than that early.
  assert.ok(c.closedAt! - opened >= 450, `closed after ${c.closedAt! - opened} ms: ${fulcrum.output()}`);
  assert.match(fulcrum.output(), /strict: preread_timeout from 127\.0\.0\.5/);
});

test("proxy-protocol: an HTTP pool with send_proxy v2: nginx sees each client's own address, connections not shared", { skip }, async () => {
  for (const from of ["127.0.0.7", "127.0.0.8"]) {
    const { text, clientPort } = await get(port.http, from);
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, new RegExp(`client=${from.replaceAll(".", "\\.")}:${clientPort} via=127\\.0\\.0\\.1\\n$`));
  }
});

test("proxy-protocol: an HTTP listener with accept_proxy behind HAProxy send-proxy-v2: X-Forwarded-For is the client", { skip }, async () => {
  const { text } = await get(port.haproxyHttp, "127.0.0.6");
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.match(text, /xff=127\.0\.0\.6\n$/);
});

test("proxy-protocol: an HTTP listener with accept_proxy closes a connection without a header and logs it", { skip }, async () => {
  const c = await TcpClient.connect(port.httpAccept, "127.0.0.1", false, "127.0.0.9");
  assert.equal(await c.exchange(GET), "");
  await c.until(() => /http-accept: bad_proxy_header \(missing\) from 127\.0\.0\.9/.test(fulcrum.output()), 2000, "log line");
});

test("proxy-protocol: sh hashes the address an accepted header names: each client sticks, clients spread", { skip }, async () => {
  const serverOf = new Map<string, Set<string>>();
  for (let i = 1; i <= 16; i++) {
    const client = `198.51.100.${i}`;
    for (let k = 0; k < 2; k++) {
      const c = await TcpClient.connect(port.hashed);
      const text = await c.exchange(`PROXY TCP4 ${client} 127.0.0.1 ${40000 + k} ${port.hashed}\r\n${GET}`);
      const set = serverOf.get(client) ?? new Set<string>();
      set.add(text.includes("second") ? "second" : "first");
      serverOf.set(client, set);
    }
  }
  for (const [client, set] of serverOf) assert.equal(set.size, 1, `${client} reached both servers`);
  const used = new Set([...serverOf.values()].map((s) => [...s][0]));
  assert.equal(used.size, 2, "sixteen client addresses hash to both servers (all from 127.0.0.1 would hash to one)");
});
