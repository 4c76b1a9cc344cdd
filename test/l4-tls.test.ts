// TLS passthrough end to end: Fulcrum reads the ClientHello's server name and splices the
// connection, never decrypting, to one of several `openssl s_server` instances that each present
// their own certificate; openssl s_client and curl are the clients.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { runtime } from "../src/runtime/index.ts";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { accepting, freePort, type Peer, startPeer, tempDir, TcpClient } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";

const skip = needs("openssl", "curl");
const servers: Record<string, Peer> = {};
let fulcrum: Running;
let recorder: net.Server;
const recorded: string[] = [];
const port: Record<string, number> = {};

async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const child = runtime.spawn(cmd);
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, out: out + err };
}

/** An s_server presenting a certificate for `cn`, on its own key. */
async function tlsServer(cn: string): Promise<Peer> {
  const dir = tempDir(`tls-${cn}`);
  const made = await run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-days", "1",
    "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`]);
  assert.equal(made.code, 0, made.out);
  const p = await freePort();
  return startPeer(["openssl", "s_server", "-accept", `127.0.0.1:${p}`, "-cert", `${dir}/cert.pem`, "-key", `${dir}/key.pem`, "-www", "-quiet"], p, () => accepting(p));
}

before(async () => {
  if (skip) return;
  for (const cn of ["api.example.test", "wild.example.test", "default.example.test"]) servers[cn] = await tlsServer(cn);
  recorder = net.createServer((s) => {
    s.on("data", (d: Uint8Array) => recorded.push(new TextDecoder().decode(d)));
    s.on("error", () => {});
  });
  const recorderPort = await new Promise<number>((r) => recorder.listen(0, "127.0.0.1", () => r((recorder.address() as net.AddressInfo).port)));
  port.tls = await freePort();
  port.fallback = await freePort();
  const at = (cn: string) => `127.0.0.1:${servers[cn].port}`;
  fulcrum = await startFulcrum(`
listeners:
  - name: tls
    bind: 127.0.0.1:${port.tls}
    protocol: tcp
    preread_timeout: 2s
    routes:
      - { sni: [api.example.test], pool: api }
      - { sni: ["*.wild.test"], pool: wild }
      - { pool: default }
  - name: fallback
    bind: 127.0.0.1:${port.fallback}
    protocol: tcp
    bad_client_hello: default
    routes:
      - { sni: api.example.test, pool: api }
      - { pool: recorder }
pools:
  api: { servers: [${at("api.example.test")}] }
  wild: { servers: [${at("wild.example.test")}] }
  default: { servers: [${at("default.example.test")}] }
  recorder: { servers: [127.0.0.1:${recorderPort}] }
`, 2);
});

after(async () => {
  await fulcrum?.stop();
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  recorder?.close();
});

/** The CN of the certificate the server behind Fulcrum presented for `servername`. */
async function certificateCn(servername: string | null): Promise<string> {
  const name = servername ? ["-servername", servername] : ["-noservername"];
  const r = await run(["openssl", "s_client", "-connect", `127.0.0.1:${port.tls}`, ...name]);
  return /depth=0 CN = (\S+)/.exec(r.out)?.[1] ?? `(no certificate: ${r.out.slice(0, 300)})`;
}

test("tls passthrough: an exact SNI name reaches the server with that certificate", { skip }, async () => {
  assert.equal(await certificateCn("api.example.test"), "api.example.test");
});

test("tls passthrough: a leading wildcard matches names under it at any depth, not the bare domain", { skip }, async () => {
  assert.equal(await certificateCn("a.wild.test"), "wild.example.test");
  assert.equal(await certificateCn("x.y.wild.test"), "wild.example.test");
  assert.equal(await certificateCn("wild.test"), "default.example.test");
});

test("tls passthrough: a name no route lists, and a hello without SNI, take the default route", { skip }, async () => {
  assert.equal(await certificateCn("other.test"), "default.example.test");
  assert.equal(await certificateCn(null), "default.example.test");
});

test("tls passthrough: curl --resolve completes HTTPS end to end through the splice", { skip }, async () => {
  const url = `https://api.example.test:${port.tls}/`;
  const r = await run(["curl", "-sk", "--max-time", "10", "--resolve", `api.example.test:${port.tls}:127.0.0.1`, "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}", url]);
  assert.equal(r.out.split(" ")[0], "200", r.out);
});

test("tls passthrough: bytes that are no ClientHello are closed and logged (bad_client_hello: close)", { skip }, async () => {
  const c = await TcpClient.connect(port.tls);
  assert.equal(await c.exchange("GET / HTTP/1.0\r\n\r\n"), "");
  await c.until(() => /tls: bad_client_hello from 127\.0\.0\.1:\d+: not a TLS handshake record/.test(fulcrum.output()), 2000, "log line");
});

test("tls passthrough: with bad_client_hello: default, such bytes go to the default route's server untouched", { skip }, async () => {
  const c = await TcpClient.connect(port.fallback);
  c.write("PLAIN TEXT, NOT TLS\r\n");
  for (let i = 0; i < 100 && !recorded.join("").includes("PLAIN TEXT"); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(recorded.join(""), "PLAIN TEXT, NOT TLS\r\n");
  c.destroy();
  assert.match(fulcrum.output(), /fallback: bad_client_hello from .*; default route to pool recorder/);
});
