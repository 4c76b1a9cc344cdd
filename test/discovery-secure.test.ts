// Discovery from an etcd that needs TLS (its certificate signed by a CA made here with openssl)
// and from one with authentication enabled (user and password, a token per session).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { type Backend, type Echo, freePort, startBackend } from "./helpers/backends.ts";
import { type Running, startFulcrum, writeTemp } from "./helpers/fulcrum.ts";
import { request } from "./helpers/http.ts";
import { type Etcd, startEtcd } from "./helpers/etcd.ts";
import { needs } from "./helpers/peers.ts";
import { runtime } from "../src/runtime/index.ts";
import { EtcdClient } from "../src/discovery/etcd-client.ts";

const skip = needs("etcd", "openssl");
let dir = "";
let tlsEtcd: Etcd, authEtcd: Etcd;
let backends: Backend[] = [];
const running: Running[] = [];

function openssl(...args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync("/tmp/fulcrum-etcd-tls-");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=fulcrum test CA");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "etcd.key", "-out", "etcd.csr", "-subj", "/CN=127.0.0.1");
  await runtime.writeTextFile(`${dir}/san.ext`, "subjectAltName=IP:127.0.0.1\n");
  openssl("x509", "-req", "-in", "etcd.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "etcd.pem", "-days", "1", "-extfile", "san.ext");
  const ca = await runtime.readTextFile(`${dir}/ca.pem`);
  tlsEtcd = await startEtcd({ tls: { certFile: `${dir}/etcd.pem`, keyFile: `${dir}/etcd.key`, ca } });
  authEtcd = await startEtcd();
  const c = authEtcd.client;
  // Auth needs a root user with the root role; then every request needs a token.
  for (const [path, body] of [
    ["/v3/auth/user/add", { name: "root", password: "root-pw" }],
    ["/v3/auth/role/add", { name: "root" }],
    ["/v3/auth/user/grant", { user: "root", role: "root" }],
    ["/v3/auth/enable", {}],
  ] as const) await c.call(path, body);
  backends = await Promise.all(["s1", "s2"].map((n) => startBackend(n)));
});

after(async () => {
  for (const f of running) await f.stop().catch(() => {});
  await Promise.all(backends.map((b) => b.stop()));
  await tlsEtcd?.remove();
  await authEtcd?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function fulcrum(etcdSection: string, fallback: Backend): Promise<Running> {
  const port = await freePort();
  const f = await startFulcrum(`
hash_seed: 7
discovery:
  etcd: ${etcdSection}
listeners: [{ bind: 127.0.0.1:${port} }]
pools:
  api: { scheduler: rr, discovery: etcd, servers: [${fallback.address}] }
`);
  running.push(f);
  return f;
}

/** Waits (bounded: 100 x 100 ms) until the node's log matches: it logs once etcd answered or not. */
async function logged(f: Running, re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(f.output()); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(f.output(), re);
}

/** Rounds of 4 requests until one reaches `name`; bounded (40 rounds of 250 ms). */
async function reaches(f: Running, name: string): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    for (let k = 0; k < 4; k++) {
      const r = await request(`${f.url}/`);
      if ((JSON.parse(r.body) as Echo).backend === name) return true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

test("discovery over TLS: with the CA file the node reads and watches etcd; without it the certificate is refused", { skip }, async () => {
  const [s1, s2] = backends;
  await tlsEtcd.client.put(`/t-tls/pools/api/servers/${s2.address}`, "");
  const trusted = await fulcrum(`{ endpoints: [${tlsEtcd.url}], prefix: /t-tls/, ca: ${dir}/ca.pem }`, s1);
  assert.ok(await reaches(trusted, "s2"), trusted.output());
  await tlsEtcd.client.put(`/t-tls/pools/api/servers/${s1.address}`, `{"state":"maint"}`);
  // The watch too: s1 (maint) gets nothing once the change is applied.
  let onlyS2 = false;
  for (let i = 0; i < 40 && !onlyS2; i++) {
    const names = await Promise.all([0, 1, 2, 3].map(async () => (JSON.parse((await request(`${trusted.url}/`)).body) as Echo).backend));
    onlyS2 = names.every((n) => n === "s2");
    if (!onlyS2) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(onlyS2, trusted.output());

  const untrusted = await fulcrum(`{ endpoints: [${tlsEtcd.url}], prefix: /t-tls/ }`, s1);
  await logged(untrusted, /etcd unreachable .*pool api serves its configured servers/);
  assert.equal((JSON.parse((await request(`${untrusted.url}/`)).body) as Echo).backend, "s1");
});

test("discovery with etcd auth: username and password_file get a token for reads and the watch; a wrong password is reported", { skip }, async () => {
  const [s1, s2] = backends;
  const root = new EtcdClient({ endpoints: [authEtcd.url], ca: null, username: "root", password: "root-pw" });
  await root.put(`/t-auth/pools/api/servers/${s1.address}`, "");
  const good = await writeTemp("root-pw\n", "txt");
  const f = await fulcrum(`{ endpoints: [${authEtcd.url}], prefix: /t-auth/, username: root, password_file: ${good} }`, s2);
  assert.ok(await reaches(f, "s1"));
  await root.put(`/t-auth/pools/api/servers/${s2.address}`, "");
  await root.delete(`/t-auth/pools/api/servers/${s1.address}`);
  let gone = false;
  for (let i = 0; i < 40 && !gone; i++) {
    const names = await Promise.all([0, 1, 2, 3].map(async () => (JSON.parse((await request(`${f.url}/`)).body) as Echo).backend));
    gone = names.every((n) => n === "s2");
    if (!gone) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(gone, `the watch did not deliver the delete:\n${f.output()}`);

  const bad = await writeTemp("wrong\n", "txt");
  const g = await fulcrum(`{ endpoints: [${authEtcd.url}], prefix: /t-auth/, username: root, password_file: ${bad} }`, s2);
  await logged(g, /authentication as root failed/);
});
