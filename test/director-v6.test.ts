// The packet director with IPv6 virtual servers, end to end in two labs of network namespaces,
// each with an IPv4 virtual server beside the IPv6 one (the same pools' nginx, other addresses).
//
// nat (as director-nat.test.ts): the client sits behind the director, the servers on their own
// segment route back through it.
//   client fd00:201:63::2 ── eth1 [director ::1, VIP fd00:201:63::100] eth0 ── bridge ── s1 s2 s3
//                                     fd00:200:63::1                          fd00:200:63::2-4 :8080
// dr (as director-dr.test.ts): one segment; each server holds the VIP on lo, which IPv6 never
// answers neighbour solicitations for on eth0, so the network resolves the VIP to the director.
//   bridge fd00:200:64::/64: director ::1 (VIP ::100 on eth0), client ::2, s1 ::3, s2 ::4, s3 ::5 (VIP on lo)
// Each lab also has a far client behind its client, over a 1280-byte hop (addFarClient), where
// the servers' full-sized segments draw an ICMPv6 packet too big to the VIP.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Capture, exec, Lab, run, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { tempDir } from "./helpers/l4.ts";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { needs } from "./helpers/peers.ts";
import type { Child } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "tcpdump", "tshark");
const noDns = noLab || needs("dnsmasq", "dig");

const NAT = 63, DR = 64;
const NAT_VIP = `fd00:201:${NAT}::100`, NAT_VIP4 = `10.201.${NAT}.100`;
const DR_VIP = `fd00:200:${DR}::100`, DR_VIP4 = `10.200.${DR}.100`;
const SERVERS = ["s1", "s2", "s3"];
let nat: Lab;
let dr: Lab;
const nginx = new Map<string, Child>();
const running = new Set<Peer>();
const esc = (s: string) => s.replace(/[.[\]]/g, "\\$&");

/** The far client's body: big enough that the server sends full-sized segments. */
const BIG = 256 * 1024;

/** nginx on a lab node answering "<name> <client address> <address it was reached at>" (and BIG bytes at /big). */
function startNginx(lab: Lab, server: string, listen: string[]): Child {
  const dir = tempDir(`director-v6-${lab.prefix}${server}`);
  writeFileSync(`${dir}/big`, new Uint8Array(BIG).fill(0x61));
  const child = spawnLabNginx(lab, server, dir, `${listen.map((l) => `    listen ${l};`).join("\n")}
    location / { return 200 "${server} $remote_addr $server_addr\\n"; }
    location = /big { alias ${dir}/big; }`);
  nginx.set(`${lab.prefix}${server}`, child);
  return child;
}

const natListen = (s: string) => [`[${nat.node(s).ipv6}]:8080`, `${nat.node(s).ipv4}:8080`];
const drListen = ["[::]:80 ipv6only=on", "80"];

/** A client two hops out, behind the lab's client acting as a router whose link toward it has an
 * MTU of 1280 while its own interface says 1500: it offers an MSS the path cannot carry, so a
 * server's full-sized segments meet a router that answers with an ICMPv6 packet too big to their
 * source, the VIP. `routed`: the nodes that reach the far subnet through the lab's client.
 *   far fd00:202:S::2 (mtu 1500) ── eth1 [client fd00:202:S::1, mtu 1280, forwarding] eth0 ── the lab */
async function addFarClient(lab: Lab, subnet: number, routed: string[]): Promise<void> {
  const ns = `${lab.prefix}far`, router = lab.node("client").ns;
  await run(["ip", "netns", "add", ns]);
  await run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", router]);
  for (const [where, address] of [[ns, `fd00:202:${subnet}::2`], [router, `fd00:202:${subnet}::1`]]) {
    const dev = where === ns ? "eth0" : "eth1";
    await run(["ip", "netns", "exec", where, "sysctl", "-q", "-w", `net.ipv6.conf.${dev}.accept_dad=0`]);
    await run(["ip", "-n", where, "addr", "add", `${address}/64`, "dev", dev, "nodad"]);
    await run(["ip", "-n", where, "link", "set", dev, "up"]);
  }
  await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
  await run(["ip", "-n", router, "link", "set", "eth1", "mtu", "1280"]);
  await run(["ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
  await run(["ip", "-n", ns, "-6", "route", "add", "default", "via", `fd00:202:${subnet}::1`]);
  for (const node of routed) await run(["ip", "-n", lab.node(node).ns, "-6", "route", "add", `fd00:202:${subnet}::/64`, "via", lab.node("client").ipv6]);
  const link = JSON.parse(await run(["ip", "-j", "-n", ns, "link", "show", "eth0"]))[0];
  lab.nodes.set("far", { name: "far", ns, ipv4: "", ipv6: `fd00:202:${subnet}::2`, port: "", mac: link.address });
}

/** At every server, the packets too big that reach it (one of them serves the download), also in `dir`/<server>.pcap. */
function captureTooBig(lab: Lab, dir: string): Promise<Capture[]> {
  return Promise.all(SERVERS.map((s) => Capture.start(lab, s, "icmp6 and ip6[40] == 2", `${dir}/${s}.pcap`)));
}

/** The far client downloads BIG bytes through the VIP, all of them. */
async function downloadFar(lab: Lab, vip: string): Promise<void> {
  const r = await lab.exec("far", ["curl", "-g", "-6", "-s", "-o", "/dev/null", "-m", "10", "-w", "%{http_code} %{size_download}", `http://[${vip}]/big`], 15_000);
  assert.equal(r.stdout, `200 ${BIG}`, `the download through the 1280-byte hop: exit ${r.code} ${r.stdout} ${r.stderr}`);
}

/** The packets too big the captures saw, by server (at least one: tcpdump prints as it captures,
 * so its line may come just after the download ended). */
async function tooBigAt(captures: Capture[]): Promise<{ server: string; text: string }[]> {
  return (await waitFor("a packet too big at a server", () => {
    const found = captures.flatMap((c, i) => c.matching(/ICMP6, packet too big/).map((p) => ({ server: SERVERS[i], text: p.text })));
    return found.length > 0 ? found : null;
  }, 5000, 20))!; // waitFor returns only a truthy value
}

async function serverUp(lab: Lab, s: string, url: string): Promise<void> {
  await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-g", "-s", "-m", "1", url])).code === 0, 10_000, 100);
}

before(async () => {
  if (noLab) return;
  nat = await Lab.create("v6nat", ["director", ...SERVERS], NAT);
  await nat.addRoutedNode("client", "director", "eth1", NAT);
  await addFarClient(nat, NAT, ["director"]);
  for (const s of SERVERS) {
    await nat.exec(s, ["ip", "route", "add", "default", "via", nat.node("director").ipv4]);
    await nat.exec(s, ["ip", "-6", "route", "add", "default", "via", nat.node("director").ipv6]);
    startNginx(nat, s, natListen(s));
    await serverUp(nat, s, `http://[${nat.node(s).ipv6}]:8080/`);
  }
  dr = await Lab.create("v6dr", ["director", "client", ...SERVERS], DR);
  for (const s of SERVERS) {
    await dr.exec(s, ["ip", "addr", "add", `${DR_VIP}/128`, "dev", "lo"]);
    await dr.exec(s, ["ip", "addr", "add", `${DR_VIP4}/32`, "dev", "lo"]);
    for (const dev of ["all", "eth0"]) {
      await dr.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_ignore=1`]);
      await dr.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_announce=2`]);
    }
    startNginx(dr, s, drListen);
    await serverUp(dr, s, `http://[${dr.node(s).ipv6}]/`);
  }
  await addFarClient(dr, DR, SERVERS);
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of nginx.values()) child.kill("SIGKILL");
  await nat?.destroy();
  await dr?.destroy();
});

/** Fulcrum directing an IPv6 and an IPv4 virtual server of `kind`, each with its own pool of the
 * three servers; `dns`: and a udp one on [VIP]:53 to their dnsmasq on port 5353. */
function config(lab: Lab, kind: "nat" | "dr", dns = false): string {
  const port = kind === "nat" ? 8080 : 80;
  const pool = (family: 4 | 6, port: number) => SERVERS.map((s) => family === 6 ? `"[${lab.node(s).ipv6}]:${port}"` : `${lab.node(s).ipv4}:${port}`).join(", ");
  const vip6 = kind === "nat" ? NAT_VIP : DR_VIP, vip4 = kind === "nat" ? NAT_VIP4 : DR_VIP4;
  const iface = kind === "nat" ? "eth1" : "eth0";
  const health = "health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }";
  return `
pools:
  web6: { scheduler: rr, servers: [${pool(6, port)}], ${health} }
  web4: { scheduler: rr, servers: [${pool(4, port)}], ${health} }
${dns ? `  dns6: { scheduler: rr, servers: [${pool(6, 5353)}] }\n` : ""}virtual_servers:
  - { name: web6, address: "[${vip6}]:80", protocol: tcp, lb_kind: ${kind}, interface: ${iface}, pool: web6 }
  - { name: web4, address: "${vip4}:80", protocol: tcp, lb_kind: ${kind}, interface: ${iface}, pool: web4 }
${dns ? `  - { name: dns6, address: "[${vip6}]:53", protocol: udp, lb_kind: ${kind}, interface: ${iface}, pool: dns6 }\n` : ""}`;
}

async function startDirector(lab: Lab, kind: "nat" | "dr", dns = false): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(lab, kind, dns), dns ? 3 : 2, /directing (tcp|udp):\/\//g);
  running.add(peer);
  try {
    if (kind === "dr") {
      // A dr server is down until its MAC is known: from the IPv6 neighbour table for web6.
      for (const s of SERVERS) {
        await peer.waitForLine(new RegExp(`director: web6: real server \\[${esc(lab.node(s).ipv6)}\\]:80 is at ${lab.node(s).mac}`), 5000);
        await peer.waitForLine(new RegExp(`director: web4: real server ${esc(lab.node(s).ipv4)}:80 is at ${lab.node(s).mac}`), 5000);
      }
    }
  } catch (e) {
    // Its TUNs would keep the next test's director from starting.
    await stopDirector(peer);
    throw e;
  }
  return peer;
}

async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

/** n requests through a VIP from the lab's client, each a new connection; the bodies split into
 * [server, client address seen, address reached]. */
async function requests(lab: Lab, vip: string, n: number): Promise<string[][]> {
  const url = vip.includes(":") ? `http://[${vip}]/` : `http://${vip}/`;
  const bodies: string[][] = [];
  for (let i = 0; i < n; i++) {
    const r = await lab.exec("client", ["curl", "-g", vip.includes(":") ? "-6" : "-4", "-s", "-m", "3", "-w", " %{http_code}", url]);
    assert.equal(r.code, 0, `curl ${i} through ${url}: exit ${r.code} ${r.stderr}`);
    const m = /^(\S+) (\S+) (\S+)\n (\d+)$/.exec(r.stdout);
    assert.ok(m, `curl ${i}: unexpected answer ${JSON.stringify(r.stdout)}`);
    assert.equal(m[4], "200");
    bodies.push([m[1], m[2], m[3]]);
  }
  return bodies;
}

/** rr: the servers in the pool's order from wherever it started, twice. */
function assertPoolOrder(names: string[]): void {
  const start = SERVERS.indexOf(names[0]);
  const order = names.map((_, i) => SERVERS[(start + i) % SERVERS.length]);
  assert.deepEqual(names, order, `rr in pool order: ${names.join(", ")}`);
}

/** Every TCP segment's checksum status as tshark verifies it (IPv6 has no header checksum: TCP's
 * covers the pseudo-header with both addresses, so a rewrite that got it wrong shows here), and
 * tshark's expert warnings and errors. */
async function verify(file: string): Promise<{ statuses: string[]; warnings: string[] }> {
  const prefs = ["-o", "tcp.check_checksum:TRUE"];
  const fields = await exec(["tshark", "-n", "-r", file, ...prefs, "-T", "fields", "-e", "ipv6.src", "-e", "tcp.checksum.status"]);
  assert.equal(fields.code, 0, fields.stderr);
  const expert = await exec(["tshark", "-n", "-r", file, ...prefs, "-q", "-z", "expert,warn"]);
  assert.equal(expert.code, 0, expert.stderr);
  return {
    statuses: fields.stdout.split("\n").filter((l) => l.trim() !== ""),
    // At this level the tables hold warnings and errors only; each row is a frequency, a group,
    // a protocol and a summary ("1   Checksum   TCP  Bad checksum [should be 0xd99e]").
    warnings: expert.stdout.split("\n").filter((l) => /^\s*\d+\s+\S+\s+\S+\s/.test(l)),
  };
}

async function assertValid(file: string, min: number): Promise<void> {
  const { statuses, warnings } = await verify(file);
  assert.ok(statuses.length >= min, `${file}: ${statuses.length} packets`);
  // tcp.checksum.status 1 is "Good" (0 bad, 2 unverified); every packet is IPv6 (ipv6.src set).
  assert.deepEqual(statuses.filter((s) => !/^[0-9a-f:]+\t1$/.test(s)), [], `${file}: every packet IPv6 with its TCP checksum verified good`);
  assert.deepEqual(warnings, [], `${file}: no expert warnings`);
}

test("director v6 nat: curl -6 through [VIP]:80 reaches the three nginx in pool order, each sees the client's own IPv6 address, tshark finds every rewritten segment's checksum good; the IPv4 VIP beside it serves too; on stop the VIP, filter and reply rules go", { skip: noLab }, async () => {
  const dir = tempDir("director-v6-nat-capture");
  const client = nat.node("client").ipv6, s1 = nat.node("s1").ipv6;
  const toServer = await Capture.start(nat, "s1", `ip6 and tcp and src host ${client} and dst host ${s1} and dst port 8080`, `${dir}/to-server.pcap`);
  const toClient = await Capture.start(nat, "client", `ip6 and tcp and src host ${NAT_VIP} and src port 80`, `${dir}/to-client.pcap`);
  const director = await startDirector(nat, "nat");
  const kernel = async () => ({
    vip: await nat.hasAddress("director", NAT_VIP, "eth1"),
    // IPv6 classifier entries: the VIP:port one and the ICMPv6 errors one.
    filters: (await nat.exec("director", ["tc", "filter", "show", "dev", "eth1", "ingress"])).stdout.split("\n")
      .filter((l) => /^filter protocol ipv6 .* fh [0-9a-f]+::[0-9a-f]+ /.test(l)).length,
    rules: (await nat.exec("director", ["ip", "-6", "rule", "show"])).stdout.split("\n").filter((l) => /ipproto tcp sport 8080/.test(l)).length,
  });
  try {
    assert.deepEqual(await kernel(), { vip: true, filters: 2, rules: 3 }, "the VIP on eth1, the two ingress filters and an IPv6 reply rule per server");
    const bodies = await requests(nat, NAT_VIP, 6);
    assertPoolOrder(bodies.map((b) => b[0]));
    for (const [name, seen, reached] of bodies) {
      assert.equal(seen, client, "the server saw the client's own address");
      assert.equal(reached, nat.node(name).ipv6, "the VIP was rewritten to the server's own address");
    }
    await toServer.waitFor(new RegExp(`${esc(client)}\\.\\d+ > ${esc(s1)}\\.8080: Flags \\[S\\]`), 2, 5000);
    await toClient.waitFor(new RegExp(`${esc(NAT_VIP)}\\.80 > ${esc(client)}\\.\\d+: Flags \\[S\\.\\]`), 6, 5000);
    const four = await requests(nat, NAT_VIP4, 3);
    assert.deepEqual(four.map((b) => b[0]).sort(), SERVERS, "the IPv4 virtual server beside it reaches every server");
    for (const [, seen] of four) assert.equal(seen, nat.node("client").ipv4);
  } finally {
    await toServer.stop();
    await toClient.stop();
    assert.equal(await stopDirector(director), 0);
  }
  assert.deepEqual(await kernel(), { vip: false, filters: 0, rules: 0 }, "all of it removed on stop");
  // Two connections to s1, six from the VIP: handshake, request, response, close.
  await assertValid(`${dir}/to-server.pcap`, 10);
  await assertValid(`${dir}/to-client.pcap`, 20);
});

test("director v6 nat: a server stopped by its PID gets no new connections once its health check fails; the others take them", { skip: noLab }, async () => {
  const director = await startDirector(nat, "nat");
  const s2 = nat.node("s2").ipv6;
  try {
    assert.deepEqual((await requests(nat, NAT_VIP, 3)).map((b) => b[0]).sort(), SERVERS);
    const child = nginx.get(`${nat.prefix}s2`)!;
    child.kill("SIGKILL");
    await child.exited;
    await director.waitForLine(new RegExp(`web6/\\[${esc(s2)}\\]:8080 DOWN`), 5000);
    await director.waitForLine(new RegExp(`director: web6: real server \\[${esc(s2)}\\]:8080 down`), 5000);
    const names = (await requests(nat, NAT_VIP, 6)).map((b) => b[0]);
    assert.ok(!names.includes("s2"), `s2 took no new connection: ${names.join(", ")}`);
    assert.deepEqual([...new Set(names)].sort(), ["s1", "s3"], `s1 and s3 took them: ${names.join(", ")}`);
  } finally {
    await stopDirector(director);
    startNginx(nat, "s2", natListen("s2"));
    await serverUp(nat, "s2", `http://[${s2}]:8080/`);
  }
});

test("director v6 nat: a udp virtual server on [VIP]:53: dig -6 reaches the three dnsmasq on port 5353 in pool order, each answer from the VIP", { skip: noDns }, async () => {
  const dns: Child[] = [];
  for (const s of SERVERS) {
    const dir = tempDir(`director-v6-dns-${s}`);
    dns.push(nat.spawn(s, [
      "dnsmasq", "--no-daemon", "--port=5353", `--listen-address=${nat.node(s).ipv6}`, "--bind-interfaces", "--no-resolv",
      "--no-hosts", `--txt-record=who.lab,${s}`, `--pid-file=${dir}/pid`, "--user=root", "--cache-size=0",
    ]));
  }
  // dig checks the answer came from the address it asked: an answer it took is one from the VIP.
  const ask = async (node: string, at: string, port: number) => {
    const r = await nat.exec(node, ["dig", "-6", `@${at}`, "-p", String(port), "who.lab", "TXT", "+short", "+tries=1", "+time=2"]);
    return r.code === 0 ? r.stdout.trim().replace(/"/g, "") : `dig exit ${r.code}: ${r.stdout}${r.stderr}`;
  };
  try {
    for (const s of SERVERS) await waitFor(`dnsmasq on ${s}`, async () => (await ask(s, nat.node(s).ipv6, 5353)) === s, 10_000, 100);
    const director = await startDirector(nat, "nat", true);
    try {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) names.push(await ask("client", NAT_VIP, 53));
      assertPoolOrder(names);
      const rules = (await nat.exec("director", ["ip", "-6", "rule", "show"])).stdout;
      assert.equal(rules.split("\n").filter((l) => /ipproto udp sport 5353/.test(l)).length, 3, `a udp reply rule per server:\n${rules}`);
    } finally {
      await stopDirector(director);
    }
  } finally {
    for (const c of dns) c.kill("SIGKILL");
  }
});

test("director v6 nat: a router on a client's path answers a server's full-sized segments with an ICMPv6 packet too big to the VIP; the director hands it to the server translated (its checksum good), and the download completes", { skip: noLab }, async () => {
  const dir = tempDir("director-v6-ptb-capture");
  const router = nat.node("client").ipv6, far = nat.node("far").ipv6;
  const captures = await captureTooBig(nat, dir);
  const director = await startDirector(nat, "nat");
  try {
    await downloadFar(nat, NAT_VIP);
    const errors = await tooBigAt(captures);
    for (const e of errors) assert.match(e.text, new RegExp(`${esc(router)} > ${esc(nat.node(e.server).ipv6)}: ICMP6, packet too big, mtu 1280`), "from the router, to the server's own address");
  } finally {
    for (const c of captures) await c.stop();
    await stopDirector(director);
  }
  for (const s of SERVERS) {
    const fields = await exec(["tshark", "-n", "-r", `${dir}/${s}.pcap`, "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "icmpv6.checksum.status", "-e", "ipv6.dst", "-e", "tcp.srcport", "-e", "ipv6.src"]);
    assert.equal(fields.code, 0, fields.stderr);
    for (const line of fields.stdout.split("\n").filter((l) => l.trim() !== "")) {
      // The quoted packet is the server's own segment as it sent it: from its address and port 8080 to the far client.
      const [status, dsts, sport, srcs] = line.split("\t");
      assert.equal(status, "1", `${s}: the translated error's ICMPv6 checksum is good: ${line}`);
      assert.deepEqual([dsts.split(",")[1], sport, srcs.split(",")[1]], [far, "8080", nat.node(s).ipv6], `${s}: the quote translated: ${line}`);
    }
  }
});

test("director v6 dr: curl -6 through [VIP]:80 reaches the three nginx in pool order at the VIP itself, each sees the client's own IPv6 address; the director only swaps MACs (learnt from the IPv6 neighbour table), the servers answer directly, and tshark finds the frames' checksums good; the IPv4 VIP beside it serves too", { skip: noLab }, async () => {
  const dir = tempDir("director-v6-dr-capture");
  const client = dr.node("client"), s1 = dr.node("s1"), director = dr.node("director");
  const toServer = await Capture.start(dr, "s1", `ip6 and tcp and dst host ${DR_VIP} and dst port 80`, `${dir}/to-server.pcap`);
  const toClient = await Capture.start(dr, "client", `ip6 and tcp and src host ${DR_VIP} and src port 80`);
  const peer = await startDirector(dr, "dr");
  try {
    assert.ok(await dr.hasAddress("director", DR_VIP), "the director holds the VIP on its interface");
    const bodies = await requests(dr, DR_VIP, 6);
    assertPoolOrder(bodies.map((b) => b[0]));
    for (const [, seen, reached] of bodies) {
      assert.equal(seen, client.ipv6, "the server saw the client's own address");
      assert.equal(reached, DR_VIP, "the server was reached at the VIP (no address rewritten)");
    }
    const frames = await toServer.waitFor(new RegExp(`^${director.mac} > ${s1.mac}, .*${esc(client.ipv6)}\\.\\d+ > ${esc(DR_VIP)}\\.80: Flags \\[S\\]`), 2, 5000);
    assert.equal(frames.length, 2, "two connections reached s1, in frames from the director's MAC to s1's");
    const serverMacs = SERVERS.map((s) => dr.node(s).mac);
    const answers = await toClient.waitFor(/Flags \[S\.\]/, 6, 5000);
    for (const a of answers) assert.ok(serverMacs.includes(a.text.split(" ")[0]), `answered straight from a server: ${a.text}`);
    assert.equal(toClient.matching(new RegExp(`^${director.mac} `)).length, 0, "nothing from the VIP came through the director");
    const four = await requests(dr, DR_VIP4, 3);
    assert.deepEqual(four.map((b) => b[0]).sort(), SERVERS, "the IPv4 virtual server beside it reaches every server");
  } finally {
    await toServer.stop();
    await toClient.stop();
    assert.equal(await stopDirector(peer), 0);
  }
  assert.ok(!(await dr.hasAddress("director", DR_VIP)), "the VIP is removed on stop");
  await assertValid(`${dir}/to-server.pcap`, 8);
});

test("director v6 dr: a server stopped by its PID gets no new connections once its health check fails", { skip: noLab }, async () => {
  const peer = await startDirector(dr, "dr");
  const s3 = dr.node("s3").ipv6;
  try {
    const child = nginx.get(`${dr.prefix}s3`)!;
    child.kill("SIGKILL");
    await child.exited;
    await peer.waitForLine(new RegExp(`web6/\\[${esc(s3)}\\]:80 DOWN`), 5000);
    await peer.waitForLine(new RegExp(`director: web6: real server \\[${esc(s3)}\\]:80 down`), 5000);
    const names = (await requests(dr, DR_VIP, 6)).map((b) => b[0]);
    assert.ok(!names.includes("s3"), `s3 took no new connection: ${names.join(", ")}`);
    assert.deepEqual([...new Set(names)].sort(), ["s1", "s2"], `s1 and s2 took them: ${names.join(", ")}`);
  } finally {
    await stopDirector(peer);
    startNginx(dr, "s3", drListen);
    await serverUp(dr, "s3", `http://[${s3}]/`);
  }
});

test("director v6 dr: a router on a client's path answers a server's full-sized segments (from the VIP) with an ICMPv6 packet too big; the director forwards it to that server by MAC, unchanged, and the download completes", { skip: noLab }, async () => {
  const dir = tempDir("director-v6-dr-ptb-capture");
  const router = dr.node("client").ipv6, director = dr.node("director");
  const captures = await captureTooBig(dr, dir);
  const peer = await startDirector(dr, "dr");
  try {
    await downloadFar(dr, DR_VIP);
    const errors = await tooBigAt(captures);
    for (const e of errors) {
      assert.match(e.text, new RegExp(`^${director.mac} > ${dr.node(e.server).mac}, .*${esc(router)} > ${esc(DR_VIP)}: ICMP6, packet too big, mtu 1280`), "from the router to the VIP, in a frame from the director's MAC to the server's");
    }
  } finally {
    for (const c of captures) await c.stop();
    await stopDirector(peer);
  }
  for (const s of SERVERS) {
    const fields = await exec(["tshark", "-n", "-r", `${dir}/${s}.pcap`, "-T", "fields", "-e", "icmpv6.checksum.status"]);
    assert.equal(fields.code, 0, fields.stderr);
    assert.deepEqual(fields.stdout.split("\n").filter((l) => l.trim() !== "" && l !== "1"), [], `${s}: every error's ICMPv6 checksum is good`);
  }
});
