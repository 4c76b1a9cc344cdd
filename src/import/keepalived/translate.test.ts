import { test } from "node:test";
import assert from "node:assert/strict";
import { ReadError, statementsOf } from "./reader.ts";
import { translate } from "./translate.ts";
import { emit } from "./emit.ts";
import { formatUntranslated, Untranslatable } from "./values.ts";
import { parseConfigText } from "../../control/schema.ts";
import { asciiOfHex } from "./checkers.ts";
import type { Unit, Yaml } from "./units.ts";

function run(text: string, tcpListeners = false) {
  const out = new Untranslatable();
  const translation = translate(statementsOf(text, "k.conf"), out, { tcpListeners });
  return { units: translation.units, translation, out, listed: () => out.items.map(formatUntranslated) };
}

function pool(units: Unit[]): Yaml {
  const service = units.find((u) => u.kind === "service");
  assert.ok(service && service.kind === "service", "a service unit");
  return service.poolConfig;
}

const server = (address: string, body: string) => `real_server ${address} {\n${body}\n}`;
const httpCheck = (extra = "") => `HTTP_GET {\nurl { path /h\n}\n${extra}\n}`;

test("import translate: checker timing is inherited virtual_server → real_server → checker", () => {
  const { units, listed } = run(`virtual_server 10.0.0.1 80 {
    delay_loop 10
    retry 4
    alpha
    ${server("10.0.1.1 8080", `delay_before_retry 2\n${httpCheck("connect_timeout 1.5\nretry 2")}`)}
  }`);
  assert.deepEqual(pool(units).health, {
    type: "http", interval: "10s", timeout: "1s500ms", rise: 1, fall: 3, fastinter: "2s", initial: "down", path: "/h", status: "200-299",
  });
  assert.deepEqual(listed(), []);
});

test("import translate: defaults: delay_loop 60s, connect_timeout 5s, retry 1 (MISC_CHECK 0), delay_before_retry 3s for HTTP", () => {
  const { units } = run(`virtual_server 10.0.0.1 80 {
    ${server("10.0.1.1 80", `${httpCheck()}\nTCP_CHECK {\n}\nMISC_CHECK {\nmisc_path "/bin/check 10.0.1.1"\nmisc_dynamic\n}`)}
  }`);
  const [http, tcp, misc] = pool(units).health as Yaml[];
  assert.deepEqual([http.interval, http.timeout, http.fall, http.fastinter], ["1m", "5s", 2, "3s"]);
  assert.deepEqual([tcp.fall, tcp.fastinter], [2, "1s"]);
  assert.deepEqual(misc, { type: "script", interval: "1m", timeout: "1m", rise: 1, fall: 1, command: "/bin/check $FULCRUM_SERVER_HOST", dynamic: true });
});

test("import translate: a timeout longer than delay_loop is cut, and listed with its line", () => {
  const { units, listed } = run(`virtual_server 10.0.0.1 80 {\ndelay_loop 2\n${server("10.0.1.1 80", httpCheck("connect_timeout 5"))}\n}`);
  assert.equal((pool(units).health as Yaml).timeout, "2s");
  assert.match(listed().join("\n"), /^k\.conf:4: virtual_server 10\.0\.0\.1 80: real_server 10\.0\.1\.1 80: HTTP_GET: a timeout of 5s longer than delay_loop 2s/m);
});

test("import translate: lb_algo: fo is first over servers in weight order, ovf adds max_conns = weight, twos is two", () => {
  const servers = [server("10.0.1.1 80", `weight 1\n${httpCheck()}`), server("10.0.1.2 80", `weight 5\n${httpCheck()}`)].join("\n");
  const fo = pool(run(`virtual_server 10.0.0.1 80 {\nlb_algo fo\n${servers}\n}`).units);
  assert.equal(fo.scheduler, "first");
  assert.deepEqual((fo.servers as Yaml[]).map((s) => s.address), ["10.0.1.2:80", "10.0.1.1:80"]);
  const ovf = run(`virtual_server 10.0.0.1 80 {\nlvs_sched ovf\n${servers}\n}`);
  assert.deepEqual((pool(ovf.units).servers as Yaml[]).map((s) => s.max_conns), [5, 1]);
  assert.match(ovf.listed().join("\n"), /k\.conf:2: .*lvs_sched ovf translated as first with max_conns = weight/);
  assert.equal(pool(run(`virtual_server 10.0.0.1 80 {\nlb_algo twos\n${servers}\n}`).units).scheduler, "two");
  const unknown = run(`virtual_server 10.0.0.1 80 {\nlb_algo xyz\n${servers}\n}`);
  assert.equal(pool(unknown.units).scheduler, "wlc");
  assert.match(unknown.listed()[0], /lb_algo xyz has no Fulcrum equivalent; the pool uses wlc/);
});

test("import translate: quorum in servers when weights are 1, the nearest count (listed) when they are not", () => {
  const ones = [1, 2, 3].map((i) => server(`10.0.1.${i} 80`, httpCheck())).join("\n");
  const even = run(`virtual_server 10.0.0.1 80 {\nquorum 2\nsorry_server 10.0.9.9 8080\n${ones}\n}`);
  assert.deepEqual([pool(even.units).quorum, pool(even.units).sorry_server], [2, "10.0.9.9:8080"]);
  assert.deepEqual(even.listed(), []);
  const heavy = [1, 2, 3].map((i) => server(`10.0.1.${i} 80`, `weight 4\n${httpCheck()}`)).join("\n");
  const weighted = run(`virtual_server 10.0.0.1 80 {\nquorum 8\n${heavy}\n}`);
  assert.equal(pool(weighted.units).quorum, 2);
  assert.match(weighted.listed()[0], /quorum 8: keepalived counts the weight of live servers, Fulcrum counts servers; set to 2 of 3/);
});

test("import translate: real servers with different checks are listed; TCP-only services wait for the socket proxy", () => {
  const differ = run(`virtual_server 10.0.0.1 80 {\n${server("10.0.1.1 80", httpCheck())}\n${server("10.0.1.2 80", "TCP_CHECK {\n}")}\n}`);
  assert.match(differ.listed().join("\n"), /real_server 10\.0\.1\.2:80: its checks differ/);
  const db = `virtual_server 10.0.0.1 5432 {\nlb_algo lc\n${server("10.0.1.1 5432", "TCP_CHECK {\n}")}\n}`;
  const without = run(db);
  assert.equal(without.units.length, 0);
  assert.match(without.listed()[0], /^k\.conf:1: virtual_server 10\.0\.0\.1 5432: a TCP service without HTTP_GET checks needs the L4 socket proxy/);
  const withL4 = run(db, true);
  const unit = withL4.units[0];
  assert.ok(unit.kind === "service");
  assert.deepEqual([unit.listener, unit.route], [{ name: "vs_10_0_0_1_5432", bind: "10.0.0.1:5432", protocol: "tcp", pool: "vs_10_0_0_1_5432" }, null]);
});

test("import translate: vrrp_instance keys, global defaults, the 8-byte password, and what is listed", () => {
  const { units, listed } = run(`global_defs {
    vrrp_version 3
    vrrp_garp_master_delay 2
    vrrp_strict
  }
  vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 7
    priority 200
    advert_int 0.25
    virtual_ipaddress {
      10.0.0.5/24 dev eth0
      10.0.0.6/24 dev eth1
      10.0.0.7/24 label eth0:7
    }
    track_interface {
      eth1 weight -10
      eth2 weight 5 reverse
    }
    notify_master "/bin/notify master" nobody
  }
  vrrp_instance VI_2 {
    interface eth0
    version 2
    virtual_router_id 8
    authentication {
      auth_type PASS
      auth_pass 0123456789
    }
    virtual_ipaddress {
      10.0.0.8
    }
  }`);
  const [one, two] = units.map((u) => (u as Extract<Unit, { kind: "instance" }>).instance);
  assert.deepEqual(one, {
    name: "VI_1", interface: "eth0", virtual_router_id: 7, priority: 200, advert_int: 0.25,
    virtual_ipaddress: ["10.0.0.5/24", "10.0.0.7/24"],
    track_interface: [{ interface: "eth1", weight: -10 }, { interface: "eth2", weight: 5 }],
    notify_master: "/bin/notify master", version: 3, garp_master_delay: 2,
  });
  assert.deepEqual(two.authentication, { auth_type: "PASS", auth_pass: "01234567" });
  assert.equal(two.version, 2);
  const text = listed().join("\n");
  for (const re of [/k\.conf:4: global_defs: vrrp_strict has no/, /k\.conf:13: .*10\.0\.0\.6\/24 dev eth1: an address on another interface/, /k\.conf:14: .*label eth0:7 has no/, /k\.conf:18: .*reverse has no/, /k\.conf:20: vrrp_instance VI_1: notify_master: running it as user nobody/]) {
    assert.match(text, re);
  }
});

test("import translate: a block Fulcrum refuses is left out and listed; the rest passes Fulcrum's check", () => {
  const out = new Untranslatable();
  const text = `vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n10.0.0.1\n}\n}
vrrp_sync_group ALONE {\ngroup {\nVI_1\n}\n}
vrrp_instance VI_BAD {\ninterface eth0\nvirtual_router_id 300\nvirtual_ipaddress {\n10.0.0.2\n}\n}`;
  const translation = translate(statementsOf(text, "k.conf"), out, { tcpListeners: false });
  const emitted = emit(translation, "k.conf", out);
  assert.equal(emitted.units, 1);
  const listed = out.items.map(formatUntranslated).join("\n");
  assert.match(listed, /^k\.conf:8: vrrp_sync_group ALONE: Fulcrum refuses its translation \(vrrp\.sync_groups\.ALONE\.group: expected two or more instances/m);
  assert.match(listed, /^k\.conf:13: vrrp_instance VI_BAD: Fulcrum refuses its translation \(vrrp\.instances\[1\]\.virtual_router_id/m);
  const parsed = parseConfigText(emitted.yaml, "out.yaml");
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.message);
  assert.deepEqual(parsed.config.vrrp?.instances.map((i) => i.name), ["VI_1"]);
});

test("import translate: unbalanced braces are read errors with the line", () => {
  assert.throws(() => statementsOf("global_defs {\nrouter_id x\n", "k.conf"), (e: unknown) => e instanceof ReadError && /^k\.conf:1: the block of global_defs is not closed/.test(e.message));
  assert.throws(() => statementsOf("global_defs {\n}\n}", "k.conf"), (e: unknown) => e instanceof ReadError && /^k\.conf:3: '\}' without a block/.test(e.message));
  assert.throws(() => statementsOf("{\n}", "k.conf"), (e: unknown) => e instanceof ReadError && /^k\.conf:1: '\{' without a keyword/.test(e.message));
});

test("import translate: UDP_CHECK hex payloads as keepalived reads them", () => {
  assert.equal(asciiOfHex(["70696e67"]), "ping");
  assert.equal(asciiOfHex(["4", "1"]), null, "04 01: control bytes are not text");
  assert.equal(asciiOfHex(["4869"]), "Hi");
  assert.equal(asciiOfHex(["48x9"]), null, "wildcards are not text");
});

test("import translate: as keepalived, members of a sync group drop weighted trackers, and an instance its own interface", () => {
  const instance = (name: string, vrid: number) => `vrrp_instance ${name} {
    interface eth0
    virtual_router_id ${vrid}
    virtual_ipaddress {
      10.0.0.${vrid}
    }
    track_script {
      chk_weighted
      chk_plain
      chk_plain2 weight 5
    }
    track_interface {
      eth0
      eth1 weight -10
      eth2
    }
  }`;
  const scripts = `vrrp_script chk_weighted {\nscript /bin/true\nweight -20\n}\nvrrp_script chk_plain {\nscript /bin/true\n}\nvrrp_script chk_plain2 {\nscript /bin/true\n}`;
  const { units, listed } = run(`${scripts}\n${instance("VI_A", 1)}\n${instance("VI_B", 2)}\n${instance("VI_ALONE", 3)}\nvrrp_sync_group G {\ngroup {\nVI_A VI_B\n}\n}`);
  const byName = new Map(units.flatMap((u) => u.kind === "instance" ? [[u.instance.name, u.instance] as const] : []));
  for (const name of ["VI_A", "VI_B"]) {
    assert.deepEqual([byName.get(name)?.track_script, byName.get(name)?.track_interface], [["chk_plain"], ["eth2"]], name);
  }
  assert.deepEqual(byName.get("VI_ALONE")?.track_script, ["chk_weighted", "chk_plain", { script: "chk_plain2", weight: 5 }]);
  assert.deepEqual(byName.get("VI_ALONE")?.track_interface, [{ interface: "eth1", weight: -10 }, "eth2"]);
  assert.deepEqual(listed(), []);
});

test("import translate: a MISC_CHECK naming its server becomes one command over Fulcrum's server variables", () => {
  const misc = (host: string) => server(`${host} 8080`, `MISC_CHECK {\nmisc_path "/usr/lib/check_http -H ${host} -p 8080 -u http://${host}:8080/x"\n}\n${httpCheck()}`);
  const { units, listed } = run(`virtual_server 10.0.0.1 80 {\n${misc("10.0.1.1")}\n${misc("10.0.1.2")}\n}`);
  const [script] = pool(units).health as Yaml[];
  assert.equal(script.command, "/usr/lib/check_http -H $FULCRUM_SERVER_HOST -p 8080 -u http://$FULCRUM_SERVER_HOST:$FULCRUM_SERVER_PORT/x");
  assert.deepEqual(listed(), [], "the servers' checks are now alike");
});
