// The packet director in NAT mode, end to end in a lab of network namespaces: a client, the
// director (Fulcrum spawned as a process, `fulcrum run`) and three real servers running nginx,
// each answering with its own name and the address it saw. The servers sit on their own segment
// and route back through the director, so NAT is real: the director rewrites VIP:80 to a server's
// address and port on the way in and the server's address back to the VIP on the way out.
//
//   client 10.201.61.2 ── eth1 [director 10.201.61.1, VIP 10.201.61.100] eth0 ── bridge ── s1 s2 s3
//                                           10.200.61.1                          10.200.61.2-4:8080
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Capture, exec, Lab, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { downloadAcrossReload } from "./helpers/director-reload.ts";
import { tempDir } from "./helpers/l4.ts";
import { fulcrumCommand, writeTemp } from "./helpers/fulcrum.ts";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { needs } from "./helpers/peers.ts";
import { type Child, runtime } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "tcpdump", "tshark");
const noDns = noLab || needs("dnsmasq", "dig");

const SUBNET = 61;
const VIP = `10.201.${SUBNET}.100`;
const CLIENT = `10.201.${SUBNET}.2`;
const SERVERS = ["s1", "s2", "s3"];
let lab: Lab;
const nginx = new Map<string, Child>();
const running = new Set<Peer>();

function startNginx(server: string): Child {
  const dir = tempDir(`director-${server}`);
  const address = lab.node(server).ipv4;
  writeFileSync(`${dir}/big`, new Uint8Array(1 << 20).fill(0x61));
  const child = spawnLabNginx(lab, server, dir, `    listen ${address}:8080;
    location / { return 200 "${server} $remote_addr\\n"; }
    location = /big { alias ${dir}/big; limit_rate 100k; }`);
  nginx.set(server, child);
  return child;
}

before(async () => {
  if (noLab) return;
  lab = await Lab.create("dnat", ["director", ...SERVERS], SUBNET);
  await lab.addRoutedNode("client", "director", "eth1", SUBNET);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "route", "add", "default", "via", lab.node("director").ipv4]);
    startNginx(s);
    const url = `http://${lab.node(s).ipv4}:8080/`;
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", url])).code === 0, 10_000, 100);
  }
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of nginx.values()) child.kill("SIGKILL");
  await lab?.destroy();
});

function config(dns = false, weights?: number[]): string {
  const servers = SERVERS.map((s, i) => weights ? `{ address: "${lab.node(s).ipv4}:8080", weight: ${weights[i]} }` : `${lab.node(s).ipv4}:8080`).join(", ");
  const dnsServers = SERVERS.map((s) => `${lab.node(s).ipv4}:5353`).join(", ");
  return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web:
    scheduler: ${weights ? "wrr" : "rr"}
    servers: [${servers}]
    health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }
${dns ? `  dns:\n    scheduler: rr\n    servers: [${dnsServers}]\n` : ""}virtual_servers:
  - name: web
    address: ${VIP}:80
    protocol: tcp
    lb_kind: nat
    interface: eth1
    pool: web
${dns ? `  - name: dns\n    address: ${VIP}:53\n    protocol: udp\n    lb_kind: nat\n    interface: eth1\n    pool: dns\n` : ""}`;
}

async function startDirector(dns = false, weights?: number[]): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(dns, weights), dns ? 2 : 1, /directing (tcp|udp):\/\//g);
  running.add(peer);
  return peer;
}

async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

/** A real server's active and inactive counts in a GET /api/l4 view. */
const countsOf = (vs: { real_servers: { active: number; inactive: number }[] }, i: number) => [vs.real_servers[i].active, vs.real_servers[i].inactive];

/** n requests through the VIP, each a new connection; the bodies ("s2 10.201.61.2"). */
async function requests(n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await lab.exec("client", ["curl", "-s", "-m", "3", "-w", " %{http_code}", `http://${VIP}/`]);
    assert.equal(r.code, 0, `curl ${i} through the VIP: exit ${r.code} ${r.stderr}`);
    const m = /^(\S+) (\S+)\n (\d+)$/.exec(r.stdout);
    assert.ok(m, `curl ${i}: unexpected answer ${JSON.stringify(r.stdout)}`);
    assert.equal(m[3], "200");
    bodies.push(`${m[1]} ${m[2]}`);
  }
  return bodies;
}

/** Every packet's IP and TCP checksum status as tshark verifies them, and its checksum expert notes. */
async function checksums(file: string): Promise<{ statuses: string[]; expert: string[] }> {
  const prefs = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];
  const fields = await exec(["tshark", "-n", "-r", file, ...prefs, "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status"]);
  assert.equal(fields.code, 0, fields.stderr);
  const expert = await exec(["tshark", "-n", "-r", file, ...prefs, "-q", "-z", "expert,note"]);
  assert.equal(expert.code, 0, expert.stderr);
  return {
    statuses: fields.stdout.split("\n").filter((l) => l.trim() !== ""),
    expert: expert.stdout.split("\n").filter((l) => /checksum/i.test(l)),
  };
}

test("director nat: curl through the VIP reaches all three nginx in rr order, each sees the client's own address, and tshark finds every rewritten packet's checksums valid", { skip: noLab }, async () => {
  const dir = tempDir("director-capture");
  const toServer = await Capture.start(lab, "s1", `tcp and src host ${CLIENT} and dst host ${lab.node("s1").ipv4} and dst port 8080`, `${dir}/to-server.pcap`);
  const toClient = await Capture.start(lab, "client", `tcp and src host ${VIP} and src port 80`, `${dir}/to-client.pcap`);
  const director = await startDirector();
  try {
    assert.ok(await lab.hasAddress("director", VIP, "eth1"), "the director holds the VIP on its interface (no VRRP instance manages it)");
    const bodies = await requests(6);
    const names = bodies.map((b) => b.split(" ")[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    // rr: the same order twice.
    assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
    for (const b of bodies) assert.equal(b.split(" ")[1], CLIENT, `the server saw the client's address: ${b}`);
    await toServer.waitFor(/> 10\.200\.61\.2\.8080: Flags \[S\]/, 2, 5000);
    await toClient.waitFor(/10\.201\.61\.100\.80 > 10\.201\.61\.2\.\d+: Flags \[S\.\]/, 6, 5000);
  } finally {
    await toServer.stop();
    await toClient.stop();
    await stopDirector(director);
  }
  for (const file of [`${dir}/to-server.pcap`, `${dir}/to-client.pcap`]) {
    const { statuses, expert } = await checksums(file);
    // Two connections to s1, six from the VIP: handshake, request, response, close.
    assert.ok(statuses.length >= 10, `${file}: ${statuses.length} packets`);
    // ip.checksum.status and tcp.checksum.status: 1 is "Good" (0 bad, 2 unverified).
    assert.deepEqual(statuses.filter((s) => s !== "1\t1"), [], `${file}: every packet's IP and TCP checksums verified good`);
    assert.deepEqual(expert, [], `${file}: no checksum expert notes`);
  }
});

test("director nat: a server stopped by its PID gets no new connections once its health check fails; the others take them", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    assert.deepEqual([...new Set((await requests(3)).map((b) => b.split(" ")[0]))].sort(), SERVERS);
    const s2 = lab.node("s2").ipv4;
    nginx.get("s2")!.kill("SIGKILL");
    await nginx.get("s2")!.exited;
    await director.waitForLine(new RegExp(`web/${s2.replace(/\./g, "\\.")}:8080 DOWN`), 5000);
    await director.waitForLine(new RegExp(`director: web: real server ${s2.replace(/\./g, "\\.")}:8080 down`), 5000);
    const names = (await requests(6)).map((b) => b.split(" ")[0]);
    assert.ok(!names.includes("s2"), `s2 took no new connection: ${names.join(", ")}`);
    assert.deepEqual([...new Set(names)].sort(), ["s1", "s3"], `s1 and s3 took them: ${names.join(", ")}`);
  } finally {
    await stopDirector(director);
    startNginx("s2");
    await waitFor("nginx on s2 again", async () => (await lab.exec("s2", ["curl", "-s", "-m", "1", `http://${lab.node("s2").ipv4}:8080/`])).code === 0, 10_000, 100);
  }
});

test("director nat: on stop, Fulcrum removes the VIP, its TUN, the ingress filter and the reply rules", { skip: noLab }, async () => {
  const director = await startDirector();
  const tun = /through (\S+)\)/.exec(director.output())![1];
  const show = async () => ({
    vip: await lab.hasAddress("director", VIP, "eth1"),
    tun: (await lab.exec("director", ["ip", "link", "show", tun])).code === 0,
    filter: (await lab.exec("director", ["tc", "filter", "show", "dev", "eth1", "ingress"])).stdout.includes(tun),
    rules: (await lab.exec("director", ["ip", "rule", "show"])).stdout.split("\n").filter((l) => /ipproto tcp sport 8080/.test(l)).length,
  });
  try {
    assert.deepEqual(await show(), { vip: true, tun: true, filter: true, rules: 3 });
  } finally {
    assert.equal(await stopDirector(director), 0);
  }
  assert.deepEqual(await show(), { vip: false, tun: false, filter: false, rules: 0 });
  const after = await lab.exec("client", ["curl", "-s", "-m", "1", `http://${VIP}/`]);
  assert.notEqual(after.code, 0, "nothing answers on the VIP once the director stopped");
});

test("director nat: a reload with the same virtual servers carries the connection table over (a download in flight finishes); one that changes them (persistence) starts a new director and the VIP stays", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    const cmdline = await runtime.readTextFile(`/proc/${director.pid}/cmdline`);
    const args = cmdline.split("\0");
    const file = args[args.indexOf("--config") + 1];
    await downloadAcrossReload(lab, director, `http://${VIP}/big`, 1);
    // A changed virtual server: a new director beside the old one, then the old one goes.
    await runtime.writeTextFile(file, config().replace("    pool: web\n", "    pool: web\n    persistence_timeout: 30s\n"));
    director.child.kill("SIGHUP");
    await director.waitForLine(/generation 3 serving/, 15_000);
    await director.waitForLine(/directing tcp:\/\/\S+ \(web, nat on eth1 through fulcrum-l4-3\)/, 1000);
    await waitFor("the old director's TUN to go", async () => (await lab.exec("director", ["ip", "link", "show", "fulcrum-l4-1"])).code !== 0, 10_000, 100);
    assert.ok(await lab.hasAddress("director", VIP, "eth1"), "the VIP stays through the reload");
    // Its virtual server now has persistence: the client stays on one server.
    const names = (await requests(3)).map((b) => b.split(" ")[0]);
    assert.ok(SERVERS.includes(names[0]) && names.every((n) => n === names[0]), `generation 3 directs, persistent: ${names.join(", ")}`);
  } finally {
    await stopDirector(director);
  }
  assert.ok(!(await lab.hasAddress("director", VIP, "eth1")), "the VIP goes when the last generation stops");
});

test("director nat: a reload whose start fails after the director was carried over (a VRRP interface missing) gives the director back: the old generation goes on directing", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    const args = (await runtime.readTextFile(`/proc/${director.pid}/cmdline`)).split("\0");
    const file = args[args.indexOf("--config") + 1];
    await runtime.writeTextFile(file, `${config()}vrrp:
  instances:
    - name: VI_1
      interface: nope0
      virtual_router_id: 51
      priority: 100
      virtual_ipaddress: [10.201.${SUBNET}.200/24]
`);
    director.child.kill("SIGHUP");
    await director.waitForLine(/reload: cannot start the new configuration: .*nope0/, 15_000);
    assert.ok(await lab.hasAddress("director", VIP, "eth1"), "the VIP stays");
    const names = (await requests(3)).map((b) => b.split(" ")[0]);
    assert.deepEqual([...names].sort(), SERVERS, `generation 1 directs on: ${names.join(", ")}`);
  } finally {
    await stopDirector(director);
  }
  assert.ok(!(await lab.hasAddress("director", VIP, "eth1")), "the VIP goes on stop");
});

test("director nat: the pool's scheduler and weights decide: wrr 2:1:1 sends 4, 2 and 2 of 8 new connections; GET /api/l4 and fulcrum ctl l4 list them by real server as ipvsadm -Ln, and /metrics counts the packets and table entries", { skip: noLab }, async () => {
  const director = await startDirector(false, [2, 1, 1]);
  try {
    const names = (await requests(8)).map((b) => b.split(" ")[0]);
    const count = (n: string) => names.filter((x) => x === n).length;
    assert.deepEqual([count("s1"), count("s2"), count("s3")], [4, 2, 2], `wrr 2:1:1: ${names.join(", ")}`);
    // GET /api/l4 (the admin listener on the director's loopback) shows the running director's
    // table as ipvsadm -Ln would: the 8 connections, closed or closing, by real server.
    const api = await lab.exec("director", ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/api/l4"]);
    const view = JSON.parse(api.stdout) as {
      director: { running: boolean; text: string };
      virtual_servers: { served: boolean; forward: string; real_servers: { address: string; weight: number; active: number; inactive: number }[] }[];
    };
    assert.equal(view.director.running, true, api.stdout);
    const vs = view.virtual_servers[0];
    assert.equal(vs.served, true);
    assert.equal(vs.forward, "Masq");
    const tracked = vs.real_servers.map((r) => r.active + r.inactive);
    assert.deepEqual(tracked, [4, 2, 2], `connections per real server: ${api.stdout}`);
    assert.deepEqual(vs.real_servers.map((r) => r.weight), [2, 1, 1]);
    assert.match(view.director.text, /Masq/);
    // /metrics counts the director's packets and table events.
    const metrics = (await lab.exec("director", ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/metrics"])).stdout;
    const sample = (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN);
    assert.ok(sample('fulcrum_director_forwarded_packets_total{reason="forward_in"}') >= 8 * 3, `client packets forwarded: ${metrics.split("\n").filter((l) => l.startsWith("fulcrum_director")).join("; ")}`);
    assert.ok(sample('fulcrum_director_forwarded_packets_total{reason="forward_out"}') >= 8 * 2, "replies forwarded");
    assert.equal(sample('fulcrum_director_connection_events_total{event="created"}'), 8);
    assert.equal(sample("fulcrum_director_connections"), 8);
    assert.equal(sample('fulcrum_director_dropped_packets_total{reason="no_server"}'), 0);
    // fulcrum ctl l4 prints the same as ipvsadm -Ln would.
    const ctl = await lab.exec("director", fulcrumCommand(["ctl", "--config", await writeTemp(config(false, [2, 1, 1])), "l4"]));
    assert.equal(ctl.code, 0, ctl.stderr);
    assert.match(ctl.stdout, new RegExp(`^TCP  ${VIP.replaceAll(".", "\\.")}:80 wrr$`, "m"), ctl.stdout);
    const lines = ctl.stdout.split("\n").filter((l) => l.startsWith("  -> ") && !l.includes("RemoteAddress"));
    assert.deepEqual(lines.map((l) => l.trim().split(/\s+/).slice(3).map(Number)), [[2, ...countsOf(vs, 0)], [1, ...countsOf(vs, 1)], [1, ...countsOf(vs, 2)]], ctl.stdout);
    // GET /api/l4/connections and fulcrum ctl l4-connections list the entries as ipvsadm -Lnc.
    const listed = async (query: string) => {
      const r = await lab.exec("director", ["curl", "-s", "-m", "3", "-w", "\n%{http_code}", `http://127.0.0.1:9901/api/l4/connections${query}`]);
      const [body, code] = [r.stdout.slice(0, r.stdout.lastIndexOf("\n")), r.stdout.slice(r.stdout.lastIndexOf("\n") + 1)];
      return { code, body: JSON.parse(body) as { truncated: boolean; error?: string; connections: { protocol: string; client: string; virtual: string; server: string }[] } };
    };
    const all = await listed("");
    assert.equal(all.body.connections.length, 8, JSON.stringify(all.body));
    assert.equal(all.body.truncated, false);
    const client = lab.node("client").ipv4;
    for (const c of all.body.connections) {
      assert.equal(c.protocol, "TCP");
      assert.equal(c.virtual, `${VIP}:80`);
      assert.ok(c.client.startsWith(`${client}:`), `the client's own address: ${c.client}`);
    }
    const perServer = vs.real_servers.map((r) => all.body.connections.filter((c) => c.server === r.address).length);
    assert.deepEqual(perServer, [4, 2, 2], `entries per real server: ${JSON.stringify(all.body.connections)}`);
    const first = await listed("?limit=5");
    assert.deepEqual([first.body.connections.length, first.body.truncated], [5, true]);
    const bad = await listed("?limit=0");
    assert.equal(bad.code, "400");
    assert.match(bad.body.error ?? "", /limit: expected an integer 1\.\.100000/);
    const lnc = await lab.exec("director", fulcrumCommand(["ctl", "--config", await writeTemp(config(false, [2, 1, 1])), "l4-connections"]));
    assert.equal(lnc.code, 0, lnc.stderr);
    assert.match(lnc.stdout, /^pro\s+expire\s+state\s+source\s+virtual\s+destination$/m, lnc.stdout);
    assert.equal(lnc.stdout.split("\n").filter((l) => new RegExp(`^TCP\\s+\\d\\d:\\d\\d\\s+\\S+\\s+${client.replaceAll(".", "\\.")}:\\d+\\s+${VIP.replaceAll(".", "\\.")}:80\\s`).test(l)).length, 8, lnc.stdout);
  } finally {
    await stopDirector(director);
  }
});

test("director nat: a udp virtual server beside the tcp one: dig through VIP:53 reaches the three dnsmasq on port 5353 in rr order, and curl still reaches nginx", { skip: noDns }, async () => {
  const dns: Child[] = [];
  for (const s of SERVERS) {
    const dir = tempDir(`director-dns-${s}`);
    dns.push(lab.spawn(s, [
      "dnsmasq", "--no-daemon", "--port=5353", `--listen-address=${lab.node(s).ipv4}`, "--bind-interfaces", "--no-resolv",
      "--no-hosts", `--txt-record=who.lab,${s}`, `--pid-file=${dir}/pid`, "--user=root", "--cache-size=0",
    ]));
  }
  const ask = async (at: string, port: number) => {
    const r = await lab.exec("client", ["dig", `@${at}`, "-p", String(port), "who.lab", "TXT", "+short", "+tries=1", "+time=2"]);
    return r.code === 0 ? r.stdout.trim().replace(/"/g, "") : `dig exit ${r.code}: ${r.stdout}${r.stderr}`;
  };
  try {
    for (const s of SERVERS) {
      const at = lab.node(s).ipv4;
      await waitFor(`dnsmasq on ${s}`, async () => (await lab.exec(s, ["dig", `@${at}`, "-p", "5353", "who.lab", "TXT", "+short", "+tries=1", "+time=1"])).stdout.includes(s), 10_000, 100);
    }
    const director = await startDirector(true);
    try {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) names.push(await ask(VIP, 53));
      assert.deepEqual([...new Set(names)].sort(), SERVERS, `every dnsmasq answered: ${names.join(", ")}`);
      assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
      assert.match((await requests(1))[0], /^s\d 10\.201\.61\.2$/);
    } finally {
      await stopDirector(director);
    }
  } finally {
    for (const c of dns) c.kill("SIGKILL");
  }
});
