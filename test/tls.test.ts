// TLS termination: an HTTPS listener with a certificate per SNI name, certificates made by the
// test with openssl.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import tls from "node:tls";
import { runtime } from "../src/runtime/index.ts";
import { startBackend, freePort, type Backend } from "./helpers/backends.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { needs } from "./helpers/peers.ts";

const dir = `/tmp/fulcrum-tls-${runtime.name}-${Date.now()}`;
let backend: Backend, fulcrum: Running, port: number;

async function sh(cmd: string[]): Promise<void> {
  const child = runtime.spawn(cmd);
  const [, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  assert.equal(await child.exited, 0, `${cmd.join(" ")}: ${err}`);
}

async function makeCert(name: string): Promise<void> {
  await sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-keyout", `${dir}/${name}.key`, "-out", `${dir}/${name}.pem`]);
}

const noOpenssl = needs("openssl"); // it makes the certificates

before(async () => {
  if (noOpenssl) return;
  await sh(["mkdir", "-p", dir]);
  await makeCert("a.test");
  await makeCert("b.test");
  backend = await startBackend("tls-backend");
  port = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${port}
    tls:
      - { cert: ${dir}/a.test.pem, key: ${dir}/a.test.key, server_names: [a.test] }
      - { cert: ${dir}/b.test.pem, key: ${dir}/b.test.key, server_names: [b.test] }
pools:
  web: { servers: [${backend.address}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  await backend?.stop();
  await sh(["rm", "-rf", dir]);
});

/** Connects with SNI `servername`, sends one request, returns the certificate's CN and the reply. */
function httpsGet(servername: string): Promise<{ cn: string; reply: string }> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      const cn = String(sock.getPeerCertificate().subject?.CN ?? "");
      let reply = "";
      sock.on("data", (d: Buffer) => { reply += d.toString("latin1"); });
      sock.on("end", () => resolve({ cn, reply }));
      sock.write(`GET /secure HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    sock.on("error", reject);
    sock.setTimeout(10_000, () => sock.destroy(new Error("TLS request timed out")));
  });
}

test("tls: each SNI name gets its own certificate, and requests are proxied with X-Forwarded-Proto https", { skip: noOpenssl }, async () => {
  const a = await httpsGet("a.test");
  assert.equal(a.cn, "a.test");
  assert.match(a.reply, /^HTTP\/1\.1 200 /);
  assert.match(a.reply, /"x-forwarded-proto":"https"/);
  const b = await httpsGet("b.test");
  assert.equal(b.cn, "b.test");
  assert.match(b.reply, /^HTTP\/1\.1 200 /);
});

test("tls: the listener says https in its listening line", { skip: noOpenssl }, () => {
  assert.match(fulcrum.url, /^https:\/\//);
});

test("tls: SIGTERM stops the listener even with a client still connected", { skip: noOpenssl }, async () => {
  const port2 = await freePort();
  const f = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${port2}
    tls: [{ cert: ${dir}/a.test.pem, key: ${dir}/a.test.key }]
pools:
  web: { servers: [${backend.address}] }
`);
  const sock = tls.connect({ host: "127.0.0.1", port: port2, servername: "a.test", rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => { sock.once("secureConnect", () => resolve()); sock.once("error", reject); });
  try {
    assert.equal(await f.stop(), 0, "exits 0 on SIGTERM, not killed after the grace period");
  } finally {
    sock.destroy();
  }
});
