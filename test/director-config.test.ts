// The `virtual_servers:` section: checked with key paths like every section, accepted by
// `fulcrum check`, and refused by `fulcrum run` with the reason where the packet I/O cannot serve them yet.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../src/control/schema.ts";
import { runCli, writeTemp } from "./helpers/fulcrum.ts";

const BASE = `
listeners:
  - name: web
    bind: 127.0.0.1:18080
pools:
  web:
    scheduler: wlc
    servers: [10.0.1.1:8080, 10.0.1.2:8080]
  web6:
    scheduler: rr
    servers: ["[2001:db8:1::1]:5353"]
routes:
  - { pool: web }
`;

const withServers = (section: string) => `${BASE}virtual_servers:\n${section}`;

const VALID = withServers(`
  - name: web
    address: 10.0.0.100:80
    protocol: tcp
    lb_kind: fullnat
    interface: eth0
    pool: web
    persistence_timeout: 300s
    local_addresses: [10.0.1.50, 10.0.1.51]
    toa: true
  - name: dns6
    address: "[2001:db8::53]:53"
    protocol: udp
    lb_kind: nat
    pool: web6
`);

function issues(text: string): string[] {
  const r = parseConfigText(text, "t.yaml");
  if (r.ok) return [];
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

test("virtual_servers: a valid section reads into the config", () => {
  const r = parseConfigText(VALID, "t.yaml");
  assert.ok(r.ok, r.ok ? "" : JSON.stringify(r.errors));
  const [web, dns] = r.config.virtualServers;
  assert.deepEqual(
    { ...web },
    { name: "web", address: "10.0.0.100", port: 80, family: 4, protocol: "tcp", lbKind: "fullnat", interface: "eth0",
      pool: "web", persistenceMs: 300_000, localAddresses: ["10.0.1.50", "10.0.1.51"], toa: true, proxyProtocol: null, mtu: null },
  );
  assert.deepEqual([dns.address, dns.family, dns.protocol, dns.lbKind, dns.persistenceMs], ["2001:db8::53", 6, "udp", "nat", 0]);
});

test("virtual_servers: errors name their key path", () => {
  const found = issues(withServers(`
  - name: a
    address: vip.example:80
    lb_kind: masq
    pool: nowhere
  - name: b
    address: 10.0.0.100:80
    lb_kind: fullnat
    pool: web
  - name: c
    address: 10.0.0.101:80
    lb_kind: nat
    pool: web
    local_addresses: [2001:db8::1]
    toa: true
    proxy_protocol: v2
  - name: d
    address: 10.0.0.102:53
    protocol: udp
    lb_kind: fullnat
    pool: web
    local_addresses: [10.0.1.50, 10.0.1.60]
    proxy_protocol: v1
  - name: e
    address: 10.0.0.103:53
    protocol: udp
    lb_kind: fullnat
    pool: web
    local_addresses: [10.0.1.60]
    proxy_protocol: v2
  - name: f
    address: "[2001:db8::100]:80"
    pool: web
`));
  const has = (path: string, re: RegExp) =>
    assert.ok(found.some((f) => f.startsWith(path) && re.test(f)), `${path} ${re} in:\n${found.join("\n")}`);
  has("virtual_servers[0].address", /an address, not a name/);
  has("virtual_servers[0].lb_kind", /one of nat, dr, tun, fullnat/);
  has("virtual_servers[0].pool", /defined pool/);
  has("virtual_servers[1].local_addresses", /fullnat needs local_addresses/);
  has("virtual_servers[2].local_addresses", /only fullnat/);
  has("virtual_servers[2].local_addresses[0]", /IPv4 address like the VIP/);
  has("virtual_servers[2].toa", /fullnat only/);
  has("virtual_servers[2].proxy_protocol", /fullnat only/);
  has("virtual_servers[3].proxy_protocol", /one of v2/);
  has("virtual_servers[4].proxy_protocol", /protocol must be tcp/);
  has("virtual_servers[4].local_addresses[0]", /10\.0\.1\.60 is already used by virtual_servers\[3\]/);
  has("pools.web.servers[0]", /expected an IPv6 address like the VIP of virtual server f \(2001:db8::100\), got 10\.0\.1\.1/);
});

test("fulcrum check accepts virtual_servers; fulcrum run refuses those it cannot serve yet and says why", async () => {
  const file = await writeTemp(VALID);
  const checked = await runCli(["check", "--config", file]);
  assert.equal(checked.code, 0, checked.stderr);
  const ran = await runCli(["run", "--config", file]);
  assert.equal(ran.code, 1);
  assert.match(ran.stderr, /virtual_servers: 2 checked, 1 cannot be served: dns6/);
  // An IPv6 VIP is served like an IPv4 one: this one only lacks its interface.
  assert.match(ran.stderr, /dns6 \(nat udp \[2001:db8::53\]:53\): no interface/);
});
