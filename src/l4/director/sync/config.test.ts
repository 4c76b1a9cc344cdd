// The director_sync section as the config file gives it: defaults, and path-named errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText } from "../../../control/schema.ts";

const BASE = `pools: { web: { servers: [10.0.1.1:8080] } }
virtual_servers: [{ name: web, address: 10.0.0.100:80, lb_kind: nat, interface: eth1, pool: web }]
vrrp:
  instances:
    - { name: VI_1, interface: eth1, virtual_router_id: 51, priority: 100, virtual_ipaddress: [10.0.0.100/24] }
`;

test("director_sync: interface and vrrp_instance; port 8848, group 224.0.0.81, the instance's id and a 10 s refresh by default", () => {
  const r = parseConfigText(`${BASE}director_sync: { interface: eth0, vrrp_instance: VI_1 }\n`);
  assert.ok(r.ok, r.ok ? "" : r.message);
  assert.deepEqual(r.config.directorSync, {
    interface: "eth0", vrrpInstance: "VI_1", port: 8848, group: "224.0.0.81", peer: null, id: null, refreshMs: 10_000,
  });
  const u = parseConfigText(`${BASE}director_sync: { interface: eth0, vrrp_instance: VI_1, peer: 10.0.9.2, port: 9000, id: 7, refresh: 2s }\n`);
  assert.ok(u.ok, u.ok ? "" : u.message);
  assert.deepEqual([u.config.directorSync!.peer, u.config.directorSync!.port, u.config.directorSync!.id, u.config.directorSync!.refreshMs], ["10.0.9.2", 9000, 7, 2000]);
  const absent = parseConfigText(BASE);
  assert.ok(absent.ok);
  assert.equal(absent.config.directorSync, null);
});

test("director_sync: errors name their key path: an unknown instance, a unicast group, a bad peer or port, an unknown key", () => {
  const r = parseConfigText(`${BASE}director_sync: { interface: eth0, vrrp_instance: VI_2, group: 10.1.1.1, peer: 239.1.1.1, port: 0, ttl: 1 }\n`, "f.yaml");
  assert.ok(!r.ok);
  assert.match(r.message, /director_sync\.vrrp_instance: expected the name of a defined vrrp instance, got "VI_2" \(did you mean "VI_1"\?\)/);
  assert.match(r.message, /director_sync\.group: expected an IPv4 multicast address/);
  assert.match(r.message, /director_sync\.peer: expected an IPv4 unicast address, got "239\.1\.1\.1"/);
  assert.match(r.message, /director_sync\.port: expected an integer 1\.\.65535, got 0/);
  assert.match(r.message, /director_sync\.ttl: unknown key/);
  const missing = parseConfigText(`${BASE}director_sync: { vrrp_instance: VI_1 }\n`);
  assert.ok(!missing.ok);
  assert.match(missing.message, /director_sync\.interface: expected an interface name, got nothing/);
});

test("director_sync: it needs a vrrp section to follow and virtual_servers to carry", () => {
  const noVrrp = parseConfigText(`pools: { web: { servers: [10.0.1.1:8080] } }
virtual_servers: [{ name: web, address: 10.0.0.100:80, lb_kind: nat, interface: eth1, pool: web }]
director_sync: { interface: eth0, vrrp_instance: VI_1 }
`);
  assert.ok(!noVrrp.ok);
  assert.match(noVrrp.message, /director_sync\.vrrp_instance: .*there is no vrrp section/);
  const noVs = parseConfigText(`listeners: [{ bind: 127.0.0.1:8080 }]
pools: { web: { servers: [10.0.1.1:8080] } }
routes: [{ pool: web }]
vrrp:
  instances:
    - { name: VI_1, interface: eth1, virtual_router_id: 51, priority: 100, virtual_ipaddress: [10.0.0.100/24] }
director_sync: { interface: eth0, vrrp_instance: VI_1 }
`);
  assert.ok(!noVs.ok);
  assert.match(noVs.message, /director_sync: director_sync carries the packet director's connections: it needs a virtual_servers section/);
});
