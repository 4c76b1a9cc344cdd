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

/** A self-signed certificate for `name`, in files named after `file` (a wildcard has no file name). */
async function makeCert(name: string, file = name): Promise<void> {
  await sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
    "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-keyout", `${dir}/${file}.key`, "-out", `${dir}/${file}.pem`]);
}

const noOpenssl = needs("openssl"); // it makes the certificates

before(async () => {
  if (noOpenssl) return;
  await sh(["mkdir", "-p", dir]);
  await makeCert("a.test");
  await makeCert("b.test");
  await makeCert("*.w.test", "star.w.test");
  backend = await startBackend("tls-backend");
  port = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - bind: 127.0.0.1:${port}
    tls:
      - { cert: ${dir}/a.test.pem, key: ${dir}/a.test.key, server_names: [a.test] }
      - { cert: ${dir}/b.test.pem, key: ${dir}/b.test.key, server_names: [b.test] }
      - { cert: ${dir}/star.w.test.pem, key: ${dir}/star.w.test.key, server_names: ["*.w.test"] }
pools:
  web: { servers: [${backend.address}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  await backend?.stop();
  await sh(["rm", "-rf", dir]);
});

/** Connects with SNI `servername` (none when null), sends one request, returns the certificate's
 * CN and the reply. */
function httpsGet(servername: string | null, host = servername ?? "127.0.0.1"): Promise<{ cn: string; reply: string }> {
  return new Promise((resolve, reject) => {
    // Without servername, connecting to an IP address sends no SNI (RFC 6066 allows only names).
    const sni = servername === null ? {} : { servername };
    const sock = tls.connect({ host: "127.0.0.1", port, ...sni, rejectUnauthorized: false }, () => {
      const cn = String(sock.getPeerCertificate().subject?.CN ?? "");
      let reply = "";
      sock.on("data", (d: Buffer) => { reply += d.toString("latin1"); });
      sock.on("end", () => resolve({ cn, reply }));
      sock.write(`GET /secure HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
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

test("tls: a leading wildcard name covers its subdomains, not the bare domain", { skip: noOpenssl }, async () => {
  for (const name of ["x.w.test", "api.w.test"]) {
    const r = await httpsGet(name);
    assert.equal(r.cn, "*.w.test", name);
    assert.match(r.reply, /^HTTP\/1\.1 200 /);
  }
  assert.equal((await httpsGet("w.test")).cn, "a.test", "w.test is not *.w.test: the default");
});

test("tls: the first certificate is the default, for an unknown SNI name and for none", { skip: noOpenssl }, async () => {
  const unknown = await httpsGet("unknown.test");
  assert.equal(unknown.cn, "a.test");
  assert.match(unknown.reply, /^HTTP\/1\.1 200 /);
  const none = await httpsGet(null);
  assert.equal(none.cn, "a.test");
  assert.match(none.reply, /^HTTP\/1\.1 200 /);
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
