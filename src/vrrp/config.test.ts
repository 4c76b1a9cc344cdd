// The vrrp config section: keepalived's defaults and vocabulary, and errors that name the key
// path, what was expected and what was found.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfigText as parseConfig } from "../control/schema.ts";

function vrrpErrors(text: string): string[] {
  const result = parseConfig(text, "test.yaml");
  if (result.ok) assert.fail("expected config errors, got a valid config");
  return result.errors.map((e) => `${e.path}: ${e.message}`);
}

const MINIMAL = `vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      virtual_ipaddress: [10.200.1.100/24]
`;

test("vrrp: a config with only a vrrp section is valid, with keepalived's defaults", () => {
  const result = parseConfig(MINIMAL, "test.yaml");
  assert.ok(result.ok, result.ok ? "" : result.message);
  assert.deepEqual(result.config.listeners, []);
  assert.deepEqual(result.config.pools, []);
  const i = result.config.vrrp!.instances[0];
  assert.equal(i.version, 2);
  assert.equal(i.priority, 100);
  assert.equal(i.intervalCs, 100);
  assert.equal(i.preempt, true);
  assert.equal(i.checksumMode, "pseudo-header");
  assert.deepEqual(i.garp, { masterDelayMs: 5000, masterRepeat: 5, refreshMs: 0, refreshRepeat: 1 });
  assert.equal(i.addresses[0].prefixLength, 24);
  // Without vrrp, listeners and pools are still required; an edge config has vrrp null.
  assert.ok(vrrpErrors("hash_seed: 1\n").some((e) => e.startsWith("listeners:")));
  const edge = parseConfig("listeners: [{ bind: 127.0.0.1:8080 }]\npools:\n  web: { servers: [127.0.0.1:9001] }\n", "t.yaml");
  assert.ok(edge.ok && edge.config.vrrp === null);
});

test("vrrp: the full keepalived vocabulary is read", () => {
  const result = parseConfig(`vrrp:
  scripts:
    chk_web: { script: "test -f /tmp/ok", interval: 0.5, weight: -30, rise: 2, fall: 3 }
  instances:
    - name: VI_6
      interface: eth1
      virtual_router_id: 7
      priority: 200
      advert_int: 0.1
      virtual_ipaddress: ["2001:db8::10/64", "2001:db8::11"]
      nopreempt: true
      preempt_delay: 2.5
      unicast_src_ip: "fd00::1"
      unicast_peer: ["fd00::2", "fd00::3"]
      track_interface: [uplink, { interface: eth2, weight: -20 }]
      track_script: [chk_web, { script: chk_web, weight: 10 }]
      notify: /usr/local/bin/vrrp-notify
      notify_master: "logger master"
      garp_master_delay: 1
      garp_master_refresh: 60
      use_vmac: true
    - name: VI_4
      interface: eth1
      virtual_router_id: 7
      priority: 90
      advert_int: "250ms"
      version: 3
      v3_checksum_as_v2: true
      virtual_ipaddress: [10.0.0.1]
      authentication: null
  sync_groups:
    G1: { group: [VI_6, VI_4], notify_fault: "logger fault" }
`, "t.yaml");
  assert.ok(result.ok, result.ok ? "" : result.message);
  const [v6, v4] = result.config.vrrp!.instances;
  assert.equal(v6.family, 6);
  assert.equal(v6.version, 3, "IPv6 defaults to VRRPv3");
  assert.equal(v6.intervalCs, 10);
  assert.equal(v6.preempt, false);
  assert.equal(v6.preemptDelayMs, 2500);
  assert.equal(v6.addresses[1].prefixLength, 128);
  assert.equal(v6.unicastPeers.length, 2);
  assert.deepEqual(v6.trackInterfaces, [{ name: "uplink", weight: 0 }, { name: "eth2", weight: -20 }]);
  assert.deepEqual(v6.trackScripts, [{ name: "chk_web", weight: -30 }, { name: "chk_web", weight: 10 }]);
  assert.equal(v6.notify.any, "/usr/local/bin/vrrp-notify");
  assert.equal(v6.vmac, "vrrp.7");
  assert.equal(v6.garp.refreshMs, 60_000);
  assert.equal(v4.intervalCs, 25);
  assert.equal(v4.checksumMode, "v2-style");
  const vrrp = result.config.vrrp!;
  assert.deepEqual(vrrp.scripts[0], { name: "chk_web", script: "test -f /tmp/ok", intervalMs: 500, timeoutMs: 500, weight: -30, rise: 2, fall: 3 });
  assert.deepEqual(vrrp.syncGroups[0].instances, ["VI_6", "VI_4"]);
});

test("vrrp: config errors name the key path, what was expected and what was found", () => {
  const errors = vrrpErrors(`vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 0
      priority: 300
      advert_int: 1.5
      virtual_ipaddress: [10.0.0.1, "fe80::1", 10.0.0.300]
      prempt: true
      authentication: { auth_type: AH, auth_pass: "much too long" }
      track_script: [chk_nope]
    - name: VI_1
      interface: "a-very-long-interface-name"
      virtual_router_id: 9
      version: 3
      advert_int: 0.005
      virtual_ipaddress: [10.0.0.2]
      preempt: true
      nopreempt: true
  sync_groups:
    G: { group: [VI_1, VI_9] }
`);
  const expected = [
    "vrrp.instances[0].virtual_router_id: expected an integer 1..255, got 0",
    "vrrp.instances[0].priority: expected an integer 1..255, got 300",
    "vrrp.instances[0].advert_int: expected whole seconds 1..255 with version 2, got 1.5",
    "vrrp.instances[0].virtual_ipaddress[1]: expected an IPv4 address like the first one (one family per instance), got \"fe80::1\"",
    "vrrp.instances[0].virtual_ipaddress[2]: expected an IPv4 or IPv6 address, optionally with a prefix length like /24, got \"10.0.0.300\"",
    "vrrp.instances[0].prempt: unknown key (did you mean \"preempt\"?)",
    "vrrp.instances[0].authentication.auth_type: expected one of PASS, got \"AH\"",
    "vrrp.instances[0].authentication.auth_pass: expected a password of 1..8 bytes (the advert carries 8), got \"much too long\"",
    "vrrp.instances[0].track_script[0]: expected the name of a defined vrrp script, got \"chk_nope\"",
    "vrrp.instances[1].name: expected a unique instance name, got \"VI_1\" again (vrrp.instances[0])",
    "vrrp.instances[1].interface: expected an interface name of 1..15 characters, got \"a-very-long-interface-name\"",
    "vrrp.instances[1].advert_int: expected 0.01..40.95 seconds in steps of 0.01 with version 3, got 0.005",
    "vrrp.instances[1].nopreempt: expected nopreempt to be the opposite of preempt, got both true",
    "vrrp.sync_groups.G.group[1]: expected the name of a defined VRRP instance, got \"VI_9\" (did you mean \"VI_1\"?)",
  ];
  for (const line of expected) assert.ok(errors.includes(line), `missing:\n  ${line}\ngot:\n  ${errors.join("\n  ")}`);
  assert.ok(vrrpErrors(MINIMAL.replace("virtual_router_id: 51", "virtual_router_id: 51\n      version: 2\n      virtual_ipaddress: [\"2001:db8::1\"]").replace("      virtual_ipaddress: [10.200.1.100/24]\n", ""))
    .includes("vrrp.instances[0].version: expected 3 for IPv6 virtual addresses (VRRPv2 is IPv4 only), got 2"));
  const pools = "listeners: [{ bind: 127.0.0.1:8080 }]\npools:\n  web: { servers: [127.0.0.1:9001] }\n";
  assert.ok(vrrpErrors(pools + MINIMAL.replace("virtual_router_id: 51", "virtual_router_id: 51\n      track_pool: [wbe]"))
    .includes('vrrp.instances[0].track_pool[0]: expected the name of a defined pool, got "wbe" (did you mean "web"?)'));
  const tracked = parseConfig(pools + MINIMAL.replace("virtual_router_id: 51", "virtual_router_id: 51\n      track_pool: [{ pool: web, weight: -30 }]"), "t");
  assert.ok(tracked.ok && tracked.config.vrrp!.instances[0].trackPools[0].weight === -30);
  assert.ok(vrrpErrors(MINIMAL + "    - { name: VI_2, interface: eth0, virtual_router_id: 51, virtual_ipaddress: [10.0.0.9] }\n")
    .some((e) => e.startsWith("vrrp.instances[1].virtual_router_id: expected a virtual_router_id no other IPv4 instance on eth0 uses")));
});
