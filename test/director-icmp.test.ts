// The packet director in NAT mode with ICMP errors, end to end in a lab of network namespaces
// (as director-nat.test.ts), with a far client behind the client acting as a router whose link
// toward it has an MTU of 1280:
//   far 10.202.S.2 ── eth1 [client 10.202.S.1, mtu 1280, forwarding] eth0 10.201.S.2 ── eth1 [director, VIP 10.201.S.100] eth0 ── bridge ── s1 s2 s3
// The servers' full-sized segments toward the far client draw an ICMP "fragmentation needed" to
// their source, the VIP, which the director hands to the server translated. The other way, a
// udp virtual server (IPv4 and IPv6) whose servers have nothing on the port: their port
// unreachable reaches the client translated.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Capture, exec, Lab, run, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { tempDir } from "./helpers/l4.ts";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { needs } from "./helpers/peers.ts";
import type { Child } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "tcpdump", "tshark", "ping", "dig");

const SUBNET = 66;
const VIP = `10.201.${SUBNET}.100`;
const VIP6 = `fd00:201:${SUBNET}::100`;
const SERVERS = ["s1", "s2", "s3"];
/** The download: big enough that the server sends full-sized segments. */
const BIG = 256 * 1024;
/** A udp port nothing listens on at the servers. */
const CLOSED_PORT = 5399;
let lab: Lab;
const nginx: Child[] = [];
const running = new Set<Peer>();
const esc = (s: string) => s.replace(/[.[\]]/g, "\\$&");

/** A client two hops out, behind the lab's client acting as a router whose link toward it has an
 * MTU of 1280 while the far client's own says 1500: it offers an MSS the path cannot carry. */
async function addFarClient4(): Promise<void> {
  const ns = `${lab.prefix}far`, router = lab.node("client").ns;
  const far = `10.202.${SUBNET}.2`, hop = `10.202.${SUBNET}.1`;
  await run(["ip", "netns", "add", ns]);
  await run(["ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", router]);
  await run(["ip", "-n", ns, "addr", "add", `${far}/24`, "dev", "eth0"]);
  await run(["ip", "-n", router, "addr", "add", `${hop}/24`, "dev", "eth1"]);
  for (const [where, dev] of [[ns, "eth0"], [ns, "lo"], [router, "eth1"]]) await run(["ip", "-n", where, "link", "set", dev, "up"]);
  await run(["ip", "-n", router, "link", "set", "eth1", "mtu", "1280"]);
  await run(["ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
  await run(["ip", "-n", ns, "route", "add", "default", "via", hop]);
  await run(["ip", "-n", lab.node("director").ns, "route", "add", `10.202.${SUBNET}.0/24`, "via", lab.node("client").ipv4]);
  lab.nodes.set("far", { name: "far", ns, ipv4: far, ipv6: "", port: "", mac: "" });
}

before(async () => {
  if (noLab) return;
  lab = await Lab.create("ic4", ["director", ...SERVERS], SUBNET);
  await lab.addRoutedNode("client", "director", "eth1", SUBNET);
  await addFarClient4();
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "route", "add", "default", "via", lab.node("director").ipv4]);
    await lab.exec(s, ["ip", "-6", "route", "add", "default", "via", lab.node("director").ipv6]);
    const dir = tempDir(`director-icmp4-${s}`);
    writeFileSync(`${dir}/big`, new Uint8Array(BIG).fill(0x61));
    nginx.push(spawnLabNginx(lab, s, dir, `    listen ${lab.node(s).ipv4}:8080;
    location / { return 200 "${s}\\n"; }
    location = /big { alias ${dir}/big; }`));
    const url = `http://${lab.node(s).ipv4}:8080/`;
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", url])).code === 0, 10_000, 100);
  }
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of nginx) child.kill("SIGKILL");
  await lab?.destroy();
});

function config(): string {
  const pool = (port: number) => SERVERS.map((s) => `${lab.node(s).ipv4}:${port}`).join(", ");
  const pool6 = (port: number) => SERVERS.map((s) => `"[${lab.node(s).ipv6}]:${port}"`).join(", ");
  return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web: { scheduler: rr, servers: [${pool(8080)}], health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 } }
  closed: { scheduler: rr, servers: [${pool(CLOSED_PORT)}] }
  closed6: { scheduler: rr, servers: [${pool6(CLOSED_PORT)}] }
virtual_servers:
  - { name: web, address: "${VIP}:80", protocol: tcp, lb_kind: nat, interface: eth1, pool: web }
  - { name: closed, address: "${VIP}:53", protocol: udp, lb_kind: nat, interface: eth1, pool: closed }
  - { name: closed6, address: "[${VIP6}]:53", protocol: udp, lb_kind: nat, interface: eth1, pool: closed6 }
`;
}

async function startDirector(): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(), 3, /directing (tcp|udp):\/\//g);
  running.add(peer);
  return peer;
}

async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

/** tshark's fields of every packet in a capture, one array per packet. */
async function fields(file: string, names: string[]): Promise<string[][]> {
  const prefs = ["-o", "ip.check_checksum:TRUE"];
  const r = await exec(["tshark", "-n", "-r", file, ...prefs, "-T", "fields", ...names.flatMap((n) => ["-e", n])]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => l.split("\t"));
}

test("director nat: a router on a client's path answers a server's full-sized segments with an ICMP fragmentation needed to the VIP; the director hands it to the server translated (its checksums good), the download completes, and ping VIP is still the kernel's", { skip: noLab }, async () => {
  const dir = tempDir("director-icmp4-capture");
  const router = lab.node("client").ipv4, far = lab.node("far").ipv4;
  const captures = await Promise.all(SERVERS.map((s) => Capture.start(lab, s, "icmp and icmp[0] == 3 and icmp[1] == 4", `${dir}/${s}.pcap`)));
  const director = await startDirector();
  try {
    const r = await lab.exec("far", ["curl", "-s", "-o", "/dev/null", "-m", "10", "-w", "%{http_code} %{size_download}", `http://${VIP}/big`], 15_000);
    assert.equal(r.stdout, `200 ${BIG}`, `the download through the 1280-byte hop: exit ${r.code} ${r.stdout} ${r.stderr}`);
    // At least one server got one (tcpdump prints as it captures, so its line may come just after the download ended).
    const errors = (await waitFor("a fragmentation needed at a server", () => {
      const found = captures.flatMap((c, i) => c.matching(/need to frag/).map((p) => ({ server: SERVERS[i], text: p.text })));
      return found.length > 0 ? found : null;
    }, 5000, 20))!;
    for (const e of errors) {
      assert.match(e.text, new RegExp(`${esc(router)} > ${esc(lab.node(e.server).ipv4)}: ICMP ${esc(far)} unreachable - need to frag \\(mtu 1280\\)`), `from the router, to the server's own address: ${e.text}`);
    }
    // The echo request is not steered: the director's kernel answers it from the VIP.
    const ping = await lab.exec("client", ["ping", "-c", "1", "-W", "2", VIP]);
    assert.equal(ping.code, 0, `ping VIP: ${ping.stdout}${ping.stderr}`);
    assert.match(ping.stdout, new RegExp(`from ${esc(VIP)}: icmp_seq=1`));
  } finally {
    for (const c of captures) await c.stop();
    await stopDirector(director);
  }
  let seen = 0;
  for (const s of SERVERS) {
    for (const [ipStatus, icmpStatus, srcs, dsts, sport] of await fields(`${dir}/${s}.pcap`, ["ip.checksum.status", "icmp.checksum.status", "ip.src", "ip.dst", "tcp.srcport"])) {
      seen++;
      // 1 is "Good". The quoted packet is the server's own segment as it sent it: from its address and port 8080 to the far client.
      assert.equal(ipStatus.split(",")[0], "1", `${s}: the error's IP header checksum is good`);
      assert.equal(icmpStatus, "1", `${s}: the translated error's ICMP checksum is good`);
      assert.deepEqual([srcs.split(",")[1], dsts.split(",")[1], sport], [lab.node(s).ipv4, far, "8080"], `${s}: the quote translated`);
    }
  }
  assert.ok(seen > 0, "the captures hold the errors");
});

for (const family of [4, 6] as const) {
  const vip = family === 4 ? VIP : VIP6;
  test(`director nat, IPv${family}: a udp virtual server whose server has nothing on the port: the server's port unreachable reaches the client from the VIP, quoting the client's own datagram (checksums good), so dig reports refused; the cost: a client's ping to a server's own address goes unanswered (icmp_not_error)`, { skip: noLab }, async () => {
    const dir = tempDir(`director-icmp${family}-unreach`);
    const address = (node: string) => family === 4 ? lab.node(node).ipv4 : lab.node(node).ipv6;
    const client = address("client"), s1 = address("s1");
    const ping = (to: string) => lab.exec("client", ["ping", `-${family}`, "-c", "1", "-W", "2", to]);
    const unreachable = family === 4 ? "icmp and icmp[0] == 3" : "icmp6 and ip6[40] == 1";
    const toClient = await Capture.start(lab, "client", unreachable, `${dir}/client.pcap`);
    const director = await startDirector();
    try {
      const dig = await lab.exec("client", ["dig", `-${family}`, `@${vip}`, "-p", "53", "who.lab", "TXT", "+tries=1", "+time=3"]);
      assert.match(dig.stdout + dig.stderr, new RegExp(`${esc(vip)}#53: connection refused`), `dig through the VIP: exit ${dig.code} ${dig.stdout}${dig.stderr}`);
      const line = family === 4 ? `${esc(VIP)} > ${esc(client)}: ICMP ${esc(VIP)} udp port 53 unreachable` : `${esc(VIP6)} > ${esc(client)}: ICMP6, destination unreachable, unreachable port, ${esc(VIP6)} udp port 53`;
      await toClient.waitFor(new RegExp(line), 1, 5000);
      // The echo reply from s1 is steered in with its errors and dropped (answered again once the director stops, below).
      const lost = await ping(s1);
      assert.notEqual(lost.code, 0, `ping ${s1} through the director: ${lost.stdout}`);
      const metrics = (await lab.exec("director", ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/metrics"])).stdout;
      const notError = Number(/^fulcrum_director_dropped_packets_total\{reason="icmp_not_error"\} (\S+)$/m.exec(metrics)?.[1] ?? NaN);
      assert.ok(notError >= 1, `icmp_not_error counted: ${notError}`);
    } finally {
      await toClient.stop();
      await stopDirector(director);
    }
    const answered = await ping(s1);
    assert.equal(answered.code, 0, `ping ${s1} once the director stopped (its rules gone): ${answered.stdout}`);
    const ip = family === 4 ? "ip" : "ipv6", icmp = family === 4 ? "icmp" : "icmpv6";
    const errors = await fields(`${dir}/client.pcap`, [`${icmp}.checksum.status`, `${ip}.src`, `${ip}.dst`, "udp.dstport", ...(family === 4 ? ["ip.checksum.status"] : [])]);
    assert.ok(errors.length > 0, "the capture holds the error");
    for (const [icmpStatus, srcs, dsts, dport, ipStatus = "1"] of errors) {
      // 1 is "Good" (IPv6 has no header checksum). From the VIP, quoting the client's datagram to VIP:53 as it sent it.
      assert.deepEqual([ipStatus.split(",")[0], icmpStatus], ["1", "1"], "the error's IP and ICMP checksums are good");
      assert.deepEqual([srcs, dsts, dport], [`${vip},${client}`, `${client},${vip}`, "53"], "from the VIP, the quote translated");
    }
  });
}
