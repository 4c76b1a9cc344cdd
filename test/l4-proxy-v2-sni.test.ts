// PROXY v2's authority TLV end to end: a TLS passthrough listener routes by the ClientHello's
// server name to a pool with `send_proxy: v2`, whose server is a real HAProxy (`accept-proxy` on
// a TLS-terminating bind) that answers with the authority TLV it read (`fc_pp_authority`) and
// the client address from the header; curl is the client, verifying HAProxy's certificate.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { type Running, startFulcrum } from "./helpers/fulcrum.ts";
import { freePort, type Peer, startHaproxy, tempDir } from "./helpers/l4.ts";
import { exec } from "./helpers/netns.ts";
import { needs } from "./helpers/peers.ts";
import { readFileSync, writeFileSync } from "node:fs";

const skip = needs("haproxy", "openssl", "curl");
let haproxy: Peer;
let fulcrum: Running;
let dir = "";
const port: Record<string, number> = {};

before(async () => {
  if (skip) return;
  dir = tempDir("pp-sni");
  const made = await exec(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=pp.test", "-days", "1",
    "-addext", "subjectAltName=DNS:*.pp.test", "-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`]);
  assert.equal(made.code, 0, made.stderr);
  // HAProxy's crt is one file: the certificate, then its key.
  writeFileSync(`${dir}/haproxy.pem`, readFileSync(`${dir}/cert.pem`, "utf8") + readFileSync(`${dir}/key.pem`, "utf8"));
  for (const name of ["haproxy", "tls"]) port[name] = await freePort();
  haproxy = await startHaproxy(`global
  maxconn 100
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${port.haproxy} accept-proxy ssl crt ${dir}/haproxy.pem
  http-request return status 200 content-type text/plain lf-string "authority=%[fc_pp_authority] sni=%[ssl_fc_sni] client=%[src]\\n"
`, port.haproxy);
  fulcrum = await startFulcrum(`
listeners:
  - name: tls
    bind: 127.0.0.1:${port.tls}
    protocol: tcp
    routes:
      - { sni: ["*.pp.test"], pool: haproxy }
pools:
  haproxy: { send_proxy: v2, servers: [127.0.0.1:${port.haproxy}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  await haproxy?.stop();
  if (dir) await exec(["rm", "-rf", dir]);
});

for (const [name, from] of [["a.pp.test", "127.0.0.11"], ["b.pp.test", "127.0.0.12"]]) {
  test(`proxy-protocol v2: TLS passthrough by SNI to HAProxy accept-proxy: the authority TLV is the ClientHello's name (${name}), the address the client's`, { skip }, async () => {
    const r = await exec(["curl", "-sS", "--max-time", "10", "--cacert", `${dir}/cert.pem`, "--interface", from,
      "--resolve", `${name}:${port.tls}:127.0.0.1`, `https://${name}:${port.tls}/`]);
    assert.equal(r.code, 0, `${r.stderr}\n${fulcrum.output()}`);
    assert.equal(r.stdout, `authority=${name} sni=${name} client=${from}\n`);
  });
}
