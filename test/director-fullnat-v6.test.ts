// The packet director in FULLNAT mode with an IPv6 VIP, end to end in a lab of network namespaces
// (as director-fullnat.test.ts for IPv4): a client, the director (`fulcrum run` as a process) and
// three nginx on an IPv6 network of their own whose only IPv6 route leads to the local addresses'
// /64: they cannot reach the client, so every reply must come back through the director, to the
// local address:port it gave the connection.
//
//   client fd00:201:68::2 ── eth1 [director fd00:201:68::1, VIP ::100,      ] eth0 ── bridge ── s1 s2 s3
//                               [local addresses fd00:202:68::50-54, fd00:200:68::1]    fd00:200:68::2-4 :8080
//   s1-s3: `ip -6 route add fd00:202:68::/64 via fd00:200:68::1`, no default route.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Capture, exec, Lab, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { tempDir } from "./helpers/l4.ts";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { needs } from "./helpers/peers.ts";
import type { Child } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "wrk", "tcpdump", "tshark");
const noDns = noLab || needs("dnsmasq", "dig");

const SUBNET = 68;
const VIP = `fd00:201:${SUBNET}::100`;
const CLIENT = `fd00:201:${SUBNET}::2`;
const LOCAL_NET = `fd00:202:${SUBNET}::`;
const LOCALS = [`${LOCAL_NET}50`, `${LOCAL_NET}51`];
const DNS_LOCAL = `${LOCAL_NET}53`;
const CLOSED_LOCAL = `${LOCAL_NET}54`;
const SERVERS = ["s1", "s2", "s3"];
let lab: Lab;
const nginx = new Map<string, Child>();
const running = new Set<Peer>();

before(async () => {
  if (noLab) return;
  lab = await Lab.create("fnat6", ["director", ...SERVERS], SUBNET);
  await lab.addRoutedNode("client", "director", "eth1", SUBNET);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "-6", "route", "add", `${LOCAL_NET}/64`, "via", lab.node("director").ipv6]);
    const dir = tempDir(`director-fullnat-v6-${s}`);
    nginx.set(s, spawnLabNginx(lab, s, dir, `    listen [${lab.node(s).ipv6}]:8080;
    location / { return 200 "${s} $remote_addr\\n"; }`));
    const url = `http://[${lab.node(s).ipv6}]:8080/`;
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-g", "-s", "-m", "1", url])).code === 0, 10_000, 100);
  }
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of nginx.values()) child.kill("SIGKILL");
  await lab?.destroy();
});

/** `udp`: two udp virtual servers too, [VIP]:53 to dnsmasq on the servers' port 5353 and
 * [VIP]:54 to a port nothing listens on. */
function config(udp = false): string {
  const servers = (port: number) => SERVERS.map((s) => `"[${lab.node(s).ipv6}]:${port}"`).join(", ");
  const vs = (name: string, port: number, protocol: string, locals: string[]) => `  - name: ${name}
    address: "[${VIP}]:${port}"
    protocol: ${protocol}
    lb_kind: fullnat
    interface: eth1
    pool: ${name}
    local_addresses: [${locals.map((a) => `"${a}"`).join(", ")}]
`;
  return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web:
    scheduler: rr
    servers: [${servers(8080)}]
    health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }
${udp ? `  dns: { scheduler: rr, servers: [${servers(5353)}] }\n  closed: { scheduler: rr, servers: [${servers(5399)}] }\n` : ""}virtual_servers:
${vs("web", 80, "tcp", LOCALS)}${udp ? vs("dns", 53, "udp", [DNS_LOCAL]) + vs("closed", 54, "udp", [CLOSED_LOCAL]) : ""}`;
}

async function startDirector(udp = false): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(udp), udp ? 3 : 1, /directing (tcp|udp):\/\//g);
  running.add(peer);
  return peer;
}
async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

/** n requests through [VIP]:80, each a new connection: the words of each body. */
async function requests(n: number): Promise<string[][]> {
  const out: string[][] = [];
  for (let i = 0; i < n; i++) {
    const r = await lab.exec("client", ["curl", "-g", "-6", "-s", "-m", "3", "-w", "%{http_code}", `http://[${VIP}]:80/`]);
    assert.equal(r.code, 0, `curl ${i} through [${VIP}]:80: exit ${r.code} ${r.stderr}`);
    const m = /^(.*)\n(\d+)$/.exec(r.stdout);
    assert.ok(m, `curl ${i}: unexpected answer ${JSON.stringify(r.stdout)}`);
    assert.equal(m[2], "200");
    out.push(m[1].split(" "));
  }
  return out;
}

const PREFS = ["-o", "tcp.check_checksum:TRUE"];

/** Every packet's TCP checksum status as tshark verifies it, and its warnings and errors. */
async function checksums(file: string): Promise<{ statuses: string[]; expert: string[] }> {
  const fields = await exec(["tshark", "-n", "-r", file, ...PREFS, "-T", "fields", "-e", "tcp.checksum.status"]);
  assert.equal(fields.code, 0, fields.stderr);
  const expert = await exec(["tshark", "-n", "-r", file, ...PREFS, "-q", "-z", "expert,warn"]);
  assert.equal(expert.code, 0, expert.stderr);
  return {
    statuses: fields.stdout.split("\n").filter((l) => l.trim() !== ""),
    // The table's rows (a severity group header, then "  count  group  protocol  summary").
    expert: expert.stdout.split("\n").filter((l) => /^\s*\d+\s+\S+\s+\S+/.test(l)),
  };
}

test("director fullnat IPv6: the servers cannot reach the client; curl -6 through [VIP]:80 reaches all three nginx in rr order, each sees a local address (both in use) as the source; tshark finds every rewritten packet's TCP checksum valid with no warnings", { skip: noLab }, async () => {
  const noRoute = await lab.exec("s1", ["ip", "-6", "route", "get", CLIENT]);
  assert.notEqual(noRoute.code, 0, `s1 has no route to the client: ${noRoute.stdout}`);
  const dir = tempDir("director-fullnat-v6-capture");
  const s1 = lab.node("s1").ipv6;
  const toServer = await Capture.start(lab, "s1", `tcp and dst host ${s1} and dst port 8080 and not src host ${lab.node("director").ipv6}`, `${dir}/to-server.pcap`);
  const toClient = await Capture.start(lab, "client", `tcp and src host ${VIP} and src port 80`, `${dir}/to-client.pcap`);
  const director = await startDirector();
  try {
    for (const a of LOCALS) assert.ok(await lab.hasAddress("director", a, "eth1"), `the director holds local address ${a}`);
    const answers = await requests(6);
    const names = answers.map((a) => a[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
    const sources = answers.map((a) => a[1]);
    for (const s of sources) assert.ok(LOCALS.includes(s), `the server saw a local address, not the client: ${s}`);
    assert.deepEqual([...new Set(sources)].sort(), LOCALS, `the connections spread over both local addresses: ${sources.join(", ")}`);
    // s1 served two of the six connections; the client saw the VIP close all six.
    await toServer.waitFor(/Flags \[F\.\]/, 2, 5000);
    await toClient.waitFor(/Flags \[F\.\]/, 6, 5000);
  } finally {
    await toServer.stop();
    await toClient.stop();
    await stopDirector(director);
  }
  for (const file of [`${dir}/to-server.pcap`, `${dir}/to-client.pcap`]) {
    const { statuses, expert } = await checksums(file);
    assert.ok(statuses.length >= 10, `${file}: ${statuses.length} packets`);
    // tcp.checksum.status: 1 is "Good" (0 bad, 2 unverified).
    assert.deepEqual(statuses.filter((s) => s !== "1"), [], `${file}: every packet's TCP checksum verified good`);
    assert.deepEqual(expert, [], `${file}: no expert warnings or errors`);
  }
});

test("director fullnat IPv6: a short wrk -6 run through [VIP]:80 gets only 200s, no socket errors, no local port refused", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    const r = await lab.exec("client", ["wrk", "-t1", "-c8", "-d2s", "--timeout", "2s", `http://[${VIP}]:80/`], 20_000);
    assert.equal(r.code, 0, r.stderr);
    const total = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
    assert.ok(total > 100, `wrk completed requests: ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /Socket errors|Non-2xx/, r.stdout);
    const metrics = (await lab.exec("director", ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/metrics"])).stdout;
    const sample = (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN);
    assert.equal(sample('fulcrum_director_dropped_packets_total{reason="no_local_port"}'), 0);
    assert.ok(sample('fulcrum_director_forwarded_packets_total{reason="forward_out"}') >= total, "replies came back through the director");
  } finally {
    await stopDirector(director);
  }
});

test("director fullnat IPv6: on stop, Fulcrum removes the VIP, the local addresses, its TUN and the ingress filters on both interfaces", { skip: noLab }, async () => {
  const director = await startDirector();
  const tun = /through (\S+)\)/.exec(director.output())![1];
  const filters = async (dev: string) => (await lab.exec("director", ["tc", "filter", "show", "dev", dev, "ingress"])).stdout.split("\n").filter((l) => l.includes(tun)).length;
  const show = async () => ({
    addresses: (await lab.addresses("director", "eth1")).filter((a) => a === VIP || a.startsWith(LOCAL_NET)).sort(),
    tun: (await lab.exec("director", ["ip", "link", "show", tun])).code === 0,
    vipFilters: await filters("eth1"),
    replyFilters: await filters("eth0"),
  });
  try {
    // eth1: the VIP:port filter and the ICMPv6 errors' one; eth0: per local address, TCP and ICMPv6 errors.
    assert.deepEqual(await show(), { addresses: [VIP, ...LOCALS].sort(), tun: true, vipFilters: 2, replyFilters: 4 });
  } finally {
    assert.equal(await stopDirector(director), 0);
  }
  assert.deepEqual(await show(), { addresses: [], tun: false, vipFilters: 0, replyFilters: 0 });
  const after = await lab.exec("client", ["curl", "-g", "-6", "-s", "-m", "1", `http://[${VIP}]/`]);
  assert.notEqual(after.code, 0, "nothing answers on the VIP once the director stopped");
});

test("director fullnat IPv6: udp: dig through [VIP]:53 reaches the three dnsmasq in rr order; a datagram to [VIP]:54, whose servers' port is closed, comes back to the client as ICMPv6 port unreachable from the VIP, checksums valid", { skip: noDns }, async () => {
  const dns: Child[] = [];
  for (const s of SERVERS) {
    const dir = tempDir(`director-fullnat-v6-dns-${s}`);
    dns.push(lab.spawn(s, [
      "dnsmasq", "--no-daemon", "--port=5353", `--listen-address=${lab.node(s).ipv6}`, "--bind-interfaces", "--no-resolv",
      "--no-hosts", `--txt-record=who.lab,${s}`, `--pid-file=${dir}/pid`, "--user=root", "--cache-size=0",
    ]));
  }
  const dir = tempDir("director-fullnat-v6-icmp");
  try {
    for (const s of SERVERS) {
      const at = lab.node(s).ipv6;
      await waitFor(`dnsmasq on ${s}`, async () => (await lab.exec(s, ["dig", `@${at}`, "-p", "5353", "who.lab", "TXT", "+short", "+tries=1", "+time=1"])).stdout.includes(s), 10_000, 100);
    }
    const icmp = await Capture.start(lab, "client", "icmp6 and ip6[40] == 1", `${dir}/icmp.pcap`);
    const director = await startDirector(true);
    try {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await lab.exec("client", ["dig", "-6", `@${VIP}`, "-p", "53", "who.lab", "TXT", "+short", "+tries=1", "+time=2"]);
        names.push(r.code === 0 ? r.stdout.trim().replace(/"/g, "") : `dig exit ${r.code}: ${r.stdout}${r.stderr}`);
      }
      assert.deepEqual([...new Set(names)].sort(), SERVERS, `every dnsmasq answered: ${names.join(", ")}`);
      assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
      await lab.exec("client", ["bash", "-c", `echo hello > /dev/udp/${VIP}/54`]);
      await icmp.waitFor(new RegExp(`${VIP} > ${CLIENT}: ICMP6, destination unreachable, unreachable port, ${VIP} udp port 54`), 1, 5000);
    } finally {
      await icmp.stop();
      await stopDirector(director);
    }
    const r = await exec(["tshark", "-n", "-r", `${dir}/icmp.pcap`, "-o", "udp.check_checksum:TRUE", "-T", "fields", "-e", "icmpv6.checksum.status", "-e", "udp.checksum.status"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => l.trim() !== "");
    assert.ok(rows.length >= 1, "the ICMPv6 error was captured");
    // The ICMPv6 message and the quoted UDP header: 1 is "Good".
    for (const row of rows) assert.deepEqual(row.split(/[\t,]/).filter((v) => v !== "1"), [], `every checksum good: ${row}`);
  } finally {
    for (const c of dns) c.kill("SIGKILL");
  }
});
