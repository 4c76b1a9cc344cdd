// `fulcrum import keepalived FILE`, run as the real CLI on realistic keepalived.conf files
// (test/fixtures/keepalived/): the YAML it prints passes `fulcrum check`, what does not carry over
// is listed with its file and line, and the exit code says whether the result is complete. Then in
// a namespace lab: keepalived loads the fixtures itself (keepalived -t), and Fulcrum runs the
// translation of one beside keepalived running the original, with the same VRRP behaviour.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { runCli, writeTemp } from "./helpers/fulcrum.ts";
import { Capture, exec, Lab } from "./helpers/netns.ts";
import { type Peer, startFulcrum, startKeepalived, waitForAddress } from "./helpers/vrrp.ts";
import { needs } from "./helpers/peers.ts";
import { acceptsTcpListeners } from "../src/import/keepalived/emit.ts";

const FIXTURES = "test/fixtures/keepalived";
type Yaml = Record<string, any>;

interface Imported {
  code: number;
  yaml: Yaml;
  text: string;
  /** The stderr lines naming what did not carry over (file:line: ...). */
  listed: string[];
  stderr: string;
}

async function importFile(file: string): Promise<Imported> {
  const r = await runCli(["import", "keepalived", file]);
  const listed = r.stderr.split("\n").filter((l) => /^\S+:\d+: /.test(l));
  return { code: r.code, yaml: r.stdout.trim() === "" ? {} : parse(r.stdout) ?? {}, text: r.stdout, listed, stderr: r.stderr };
}

/** The real `fulcrum check` on the printed YAML. */
async function assertChecks(text: string): Promise<void> {
  const file = await writeTemp(text);
  const r = await runCli(["check", "--config", file]);
  assert.equal(r.code, 0, `fulcrum check refused the translation:\n${r.stderr}\n${text}`);
  assert.match(r.stdout, /is ok/);
}

test("import keepalived: LVS-DR with HTTP checks: an HTTP listener and pool, the DR forwarding listed with its line", async () => {
  const file = `${FIXTURES}/lvs-dr-http.conf`;
  const r = await importFile(file);
  assert.equal(r.code, 3, r.stderr);
  assert.deepEqual(r.listed, [
    `${file}:28: virtual_server 192.0.2.80 80: lb_kind DR has no Fulcrum equivalent yet (the L4 packet director); served as an HTTP listener and pool`,
  ]);
  assert.match(r.stderr, /partial: 1 item not translated/);
  assert.deepEqual(r.yaml.listeners, [{ name: "vs_192_0_2_80_80", bind: "192.0.2.80:80" }]);
  const pool = r.yaml.pools.vs_192_0_2_80_80;
  assert.equal(pool.scheduler, "wlc");
  assert.equal(pool.persistence_timeout, "120s");
  const timing = { interval: "5s", timeout: "2s", rise: 1, fall: 3, fastinter: "1s", initial: "down" };
  assert.deepEqual(pool.health, [
    { type: "http", ...timing, path: "/healthz", status: ["200-299", 304] },
    { type: "http", ...timing, path: "/static/ping.txt", digest: "3c3b4ab1cd6ac9ad7a5cb5d5ee3f4ef1", status: "200-299" },
  ]);
  assert.deepEqual(pool.servers, [
    { address: "198.51.100.11:80", weight: 2, max_fails: 0 },
    { address: "198.51.100.12:80", weight: 1, max_fails: 0 },
  ]);
  const [instance] = r.yaml.vrrp.instances;
  assert.deepEqual(instance, {
    name: "VI_WEB", interface: "eth0", virtual_router_id: 60, priority: 150, advert_int: 1,
    virtual_ipaddress: ["192.0.2.80/24"], authentication: { auth_type: "PASS", auth_pass: "w3bfarm" }, garp_master_delay: 2,
  });
  assert.match(r.text, new RegExp(`# ${file}:25: virtual_server 192\\.0\\.2\\.80 80`), "each block names where it came from");
  await assertChecks(r.text);
});

test("import keepalived: NAT with TCP checks and a sorry server: quorum and sorry server carried over; the MySQL service needs the socket proxy", async () => {
  const file = `${FIXTURES}/nat-tcp-sorry.conf`;
  const r = await importFile(file);
  const web = r.yaml.pools.vs_203_0_113_10_80;
  assert.equal(web.scheduler, "rr");
  assert.equal(web.quorum, 2);
  assert.equal(web.sorry_server, "10.10.0.250:8080");
  assert.deepEqual(web.health.map((c: Yaml) => [c.type, c.interval, c.timeout, c.fall]), [["tcp", "10s", "3s", 2], ["http", "10s", "3s", 2]]);
  assert.equal(web.servers.length, 3);
  assert.equal(r.yaml.vrrp.instances[0].nopreempt, true);
  if (acceptsTcpListeners()) {
    // This Fulcrum has the L4 socket proxy: the database is a TCP listener naming its pool.
    assert.equal(r.code, 0, r.stderr);
    const db = r.yaml.listeners.find((l: Yaml) => l.bind === "203.0.113.10:3306");
    assert.deepEqual(db, { name: "vs_203_0_113_10_3306", bind: "203.0.113.10:3306", protocol: "tcp", pool: "vs_203_0_113_10_3306" });
    assert.equal(r.yaml.pools.vs_203_0_113_10_3306.sorry_server, "10.10.0.250:3306");
  } else {
    assert.equal(r.code, 3, r.stderr);
    assert.deepEqual(r.listed, [
      `${file}:65: virtual_server 203.0.113.10 3306: a TCP service without HTTP_GET checks needs the L4 socket proxy, which this Fulcrum has not; left out`,
    ]);
    assert.equal(r.yaml.pools.vs_203_0_113_10_3306, undefined);
  }
  await assertChecks(r.text);
});

test("import keepalived: VRRP only, with scripts and a sync group: complete (exit 0, nothing listed)", async () => {
  const r = await importFile(`${FIXTURES}/vrrp-only.conf`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const vrrp = r.yaml.vrrp;
  assert.deepEqual(vrrp.scripts, {
    chk_proxy: { script: "/usr/bin/pgrep -x haproxy", interval: 2, timeout: 1, rise: 2, fall: 3 },
    chk_uplink: { script: "/bin/ping -c1 -W1 192.0.2.1", interval: 5, fall: 2 },
  });
  assert.deepEqual(vrrp.sync_groups, {
    G_EDGE: { group: ["VI_OUT", "VI_IN"], notify_master: "/etc/keepalived/notify.sh master", notify_backup: "/etc/keepalived/notify.sh backup" },
  });
  const [out, inside] = vrrp.instances;
  assert.deepEqual(
    [out.version, out.advert_int, out.preempt_delay, out.virtual_ipaddress, out.track_script, out.track_interface],
    [3, 0.5, 10, ["192.0.2.10/24", "192.0.2.11/24"], ["chk_proxy"], ["eth1"]],
    "vrrp_version 3 from global_defs",
  );
  assert.deepEqual(
    [inside.interface, inside.unicast_src_ip, inside.unicast_peer, inside.track_script, inside.garp_master_repeat, inside.notify],
    ["eth1", "10.1.0.2", ["10.1.0.3"], ["chk_proxy", "chk_uplink"], 3, "/etc/keepalived/notify-all.sh"],
  );
  await assertChecks(r.text);
});

test("import keepalived: includes: brace and wildcard patterns, nested relative to the including file, inside a block", async () => {
  const dir = `${FIXTURES}/includes`;
  const r = await importFile(`${dir}/keepalived.conf`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(Object.keys(r.yaml.pools), ["vs_192_0_2_91_8080", "vs_192_0_2_90_80"], "conf.d/*.conf before the block that follows it");
  assert.deepEqual(r.yaml.pools.vs_192_0_2_90_80.servers.map((s: Yaml) => [s.address, s.weight]), [["198.51.100.21:80", 1], ["198.51.100.22:80", 2]], "real servers from real-servers/*.conf, in name order, inside the virtual_server");
  assert.equal(r.yaml.pools.vs_192_0_2_90_80.scheduler, "sh");
  const [instance] = r.yaml.vrrp.instances;
  assert.deepEqual(instance.virtual_ipaddress, ["192.0.2.90/24"], "vrrp/instances.conf includes ../common/vip.conf, relative to itself");
  assert.deepEqual(Object.keys(r.yaml.vrrp.scripts), ["chk_web"], "vrrp/{scripts,instances}.conf");
  assert.match(r.text, new RegExp(`# ${dir}/conf.d/50-api.conf:1: virtual_server 192\\.0\\.2\\.91 8080`));
  assert.doesNotMatch(r.text, /README/);
  await assertChecks(r.text);
});

let scratch = "";
before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "fulcrum-import-"));
});
after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const VRRP_INSTANCE = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n";

test("import keepalived: an include cycle and includes nested too deep cannot be read (exit 2, nothing on stdout)", async () => {
  const cycle = await importFile(`${FIXTURES}/cycle/a.conf`);
  assert.equal(cycle.code, 2);
  assert.equal(cycle.text, "");
  assert.match(cycle.stderr, /^fulcrum import: test\/fixtures\/keepalived\/cycle\/b\.conf:1: include cycle: .*a\.conf -> .*b\.conf -> .*a\.conf$/m);

  for (let i = 0; i < 10; i++) await writeFile(join(scratch, `deep${i}.conf`), i < 9 ? `include deep${i + 1}.conf\n` : VRRP_INSTANCE);
  const deep = await importFile(join(scratch, "deep0.conf"));
  assert.equal(deep.code, 2);
  assert.match(deep.stderr, /deep7\.conf:1: includes nested deeper than 8 files/);
});

test("import keepalived: a missing include is listed (plain include) or an error (includea); bad braces cannot be parsed", async () => {
  const file = join(scratch, "missing.conf");
  await writeFile(file, `${VRRP_INSTANCE}include not-there.conf\n`);
  const missing = await importFile(file);
  assert.equal(missing.code, 3);
  assert.deepEqual(missing.listed, [`${file}:8: include: include not-there.conf: no such file`]);
  await assertChecks(missing.text);

  await writeFile(file, `${VRRP_INSTANCE}includea not-there.conf\n`);
  const strict = await importFile(file);
  assert.equal(strict.code, 2);
  assert.match(strict.stderr, /missing\.conf:8: includea not-there\.conf: no such file/);

  await writeFile(file, `global_defs {\n  router_id x\n${VRRP_INSTANCE}`);
  const unclosed = await importFile(file);
  assert.equal(unclosed.code, 2);
  assert.equal(unclosed.text, "");
  assert.match(unclosed.stderr, /missing\.conf:1: the block of global_defs is not closed/);

  const absent = await importFile(join(scratch, "absent.conf"));
  assert.equal(absent.code, 2);
  assert.match(absent.stderr, /cannot read .*absent\.conf: ENOENT/);
});

test("import keepalived: usage: the format and the file are required; --help gives the exit codes", async () => {
  const noFile = await runCli(["import", "keepalived"]);
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /expected `fulcrum import keepalived FILE` \(the file is missing\)/);
  const other = await runCli(["import", "haproxy", "x.cfg"]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /got "haproxy"/);
  const help = await runCli(["import", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /0 +complete/);
  assert.match(help.stdout, /3 +partial/);
  assert.match(help.stdout, /2 +the input cannot be read or parsed/);
});

// ------------------------------------------------------------------------ with keepalived, in a lab

const noLab = needs("root", "ip", "keepalived", "tcpdump");
const VIP = "10.200.9.100";
let lab: Lab;
const running: Peer[] = [];

before(async () => {
  if (noLab) return;
  lab = await Lab.create("imp", ["a", "b"], 9);
  await lab.addLink("a", "eth1"); // vrrp-only.conf's second instance is on eth1
});
after(async () => {
  for (const peer of running) await peer.stop();
  await lab?.destroy();
});

test("import keepalived: keepalived itself loads every fixture (keepalived -t)", { skip: noLab }, async () => {
  for (const file of ["lvs-dr-http.conf", "nat-tcp-sorry.conf", "vrrp-only.conf", "includes/keepalived.conf", "lab-vrrp.conf"]) {
    const r = await exec(["ip", "netns", "exec", lab.node("a").ns, "keepalived", "-t", "-f", `${FIXTURES}/${file}`]);
    assert.equal(r.code, 0, `keepalived -t ${file}: ${r.stdout}${r.stderr}`);
  }
});

test("import keepalived: Fulcrum on the translation and keepalived on the original elect, track the script and fail over alike", { skip: noLab }, async () => {
  const file = `${FIXTURES}/lab-vrrp.conf`;
  const r = await importFile(file);
  assert.equal(r.code, 0, r.stderr);
  await assertChecks(r.text);
  const capture = await Capture.start(lab, "b", "ip proto 112");
  try {
    // Node a: Fulcrum on the translation (priority 140, +10 while chk_alive succeeds).
    const fulcrum = await startFulcrum(lab, "a", r.text);
    running.push(fulcrum);
    await fulcrum.waitForLine(/VI_LAB BACKUP -> MASTER/, 8000);
    await waitForAddress(lab, "a", VIP, 2000);
    // Its adverts carry 150, as keepalived's would: the script's weight is applied the same way.
    await capture.waitFor(/10\.200\.9\.1 > 224\.0\.0\.18: VRRPv2, Advertisement, vrid 57, prio 150, authtype simple/, 1, 3000);

    // Node b: keepalived on the original file, as the backup node runs it (priority 100, so 110).
    const original = await readFile(file, "utf8");
    const keepalived = await startKeepalived(lab, "b", original.replace("priority 140", "priority 100"));
    running.push(keepalived);
    await keepalived.waitForLine(/\(VI_LAB\) Entering BACKUP STATE/, 6000);
    const mark = keepalived.output().length;

    // Fulcrum stops cleanly (a priority-0 advert): keepalived takes the address over.
    assert.equal(await fulcrum.stop(), 0);
    await keepalived.waitForLine(/\(VI_LAB\) Entering MASTER STATE/, 6000, mark);
    await waitForAddress(lab, "b", VIP, 3000);
    await capture.waitFor(/10\.200\.9\.2 > 224\.0\.0\.18: VRRPv2, Advertisement, vrid 57, prio 110, authtype simple/, 1, 3000);
    assert.doesNotMatch(keepalived.output(), /invalid|mismatch|checksum/i, "keepalived accepted every advert of Fulcrum's");
    assert.doesNotMatch(fulcrum.output(), /dropped advert/);
  } finally {
    await capture.stop();
    for (const peer of running.splice(0)) await peer.stop();
  }
});
