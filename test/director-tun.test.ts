// The packet director in TUN mode (LVS-TUN, IPIP), end to end in a lab of network namespaces: the
// client, the director (`fulcrum run`, spawned) and three nginx real servers share one segment.
// The director encapsulates each client packet in an outer IPv4 header from its own address to a
// real server's (protocol 4) and writes it back into its TUN for the kernel to route. Each server
// holds the VIP on lo (arp_ignore=1, arp_announce=2, so the VIP resolves to the director) and, as
// this kernel has no ipip device, decapsulates with test/helpers/ipip-decap.ts (a raw socket for
// protocol 4 writing the inner packets into a TUN); it answers the client directly, from the VIP.
// The same for an IPv6 VIP: IPv6 in IPv6 (next header 41) from the director's own IPv6 address,
// each server decapsulating with the helper's IPv6 raw socket for protocol 41 into a second TUN.
//
//   bridge 10.200.67.0/24: director .1 (VIP .100 on eth0), client .2, s1 .3, s2 .4, s3 .5 (VIP on lo)
//   and fd00:200:67::/64:  director ::1 (VIP ::100 on eth0), client ::2, s1 ::3, s2 ::4, s3 ::5 (VIP on lo)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { type IpipDecap, startIpipDecap } from "./helpers/lab-ipip.ts";
import { Capture, exec, Lab, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { downloadAcrossReload } from "./helpers/director-reload.ts";
import { tempDir } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";
import type { Child } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "tcpdump", "tshark");

const SUBNET = 67;
const VIP = `10.200.${SUBNET}.100`;
const VIP6 = `fd00:200:${SUBNET}::100`;
const SERVERS = ["s1", "s2", "s3"];
/** The servers' decapsulating TUNs: IPv4 in IPv4, IPv6 in IPv6. */
const DECAP = "ipip0", DECAP6 = "ip6ip0";
let lab: Lab;
const nginx = new Map<string, Child>();
const dirs = new Map<string, string>();
const decap = new Map<string, IpipDecap>();
const decap6 = new Map<string, IpipDecap>();
const running = new Set<Peer>();
const esc = (s: string) => s.replace(/[.[\]]/g, "\\$&");

function startNginx(server: string): Child {
  const dir = dirs.get(server) ?? tempDir(`director-tun-${server}`);
  dirs.set(server, dir);
  mkdirSync(`${dir}/upload`, { recursive: true });
  writeFileSync(`${dir}/big`, new Uint8Array(1 << 20).fill(0x61));
  // Port 80 on every address: the VIP (the inner packets' destination) and the server's own (the
  // health check). /big is 1 MiB at 200 KiB/s (a download in flight through a reload); PUT
  // /upload/NAME stores the body (the large upload), answering 201 once all of it arrived.
  const child = spawnLabNginx(lab, server, dir, `    listen 80;
    listen [::]:80 ipv6only=on;
    access_log ${dir}/access.log;
    location / { return 200 "${server} $remote_addr $server_addr\\n"; }
    location = /big { alias ${dir}/big; limit_rate 200k; }
    location /upload/ { root ${dir}; dav_methods PUT; client_max_body_size 4m; client_body_temp_path ${dir}/body; }`);
  nginx.set(server, child);
  return child;
}

before(async () => {
  if (noLab) return;
  lab = await Lab.create("dtun", ["director", "client", ...SERVERS], SUBNET);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "addr", "add", `${VIP}/32`, "dev", "lo"]);
    await lab.exec(s, ["ip", "addr", "add", `${VIP6}/128`, "dev", "lo"]);
    for (const dev of ["all", "eth0"]) {
      await lab.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_ignore=1`]);
      await lab.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_announce=2`]);
    }
    decap.set(s, await startIpipDecap(lab, s, DECAP));
    decap6.set(s, await startIpipDecap(lab, s, DECAP6, 6));
    startNginx(s);
    const url = `http://${lab.node(s).ipv4}/`;
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", url])).code === 0, 10_000, 100);
  }
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of [...nginx.values(), ...[...decap.values(), ...decap6.values()].map((d) => d.child)]) child.kill("SIGKILL");
  await lab?.destroy();
});

/** `mtu`: the virtual server's own (else the interface's); `weights`: wrr with these; `family` 6:
 * the IPv6 VIP and the servers' IPv6 addresses. */
function config(mtu?: number, weights?: number[], family: 4 | 6 = 4): string {
  const at = (s: string) => family === 6 ? `"[${lab.node(s).ipv6}]:80"` : `${lab.node(s).ipv4}:80`;
  const servers = SERVERS.map((s, i) => weights ? `{ address: ${at(s)}, weight: ${weights[i]} }` : at(s)).join(", ");
  return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web:
    scheduler: ${weights ? "wrr" : "rr"}
    servers: [${servers}]
    health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }
virtual_servers:
  - name: web
    address: ${family === 6 ? `"[${VIP6}]:80"` : `${VIP}:80`}
    protocol: tcp
    lb_kind: tun
    interface: eth0
    pool: web
${mtu ? `    mtu: ${mtu}\n` : ""}`;
}

async function startDirector(mtu?: number, weights?: number[], family: 4 | 6 = 4): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(mtu, weights, family), 1, /directing tcp:\/\//g);
  running.add(peer);
  return peer;
}

async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

interface L4View {
  director: { counters: Record<string, number>; ports: Record<string, { received: number; sent: number }> };
  virtual_servers: { forward: string; real_servers: { weight: number; active: number; inactive: number }[] }[];
}

async function l4View(): Promise<L4View> {
  const api = await lab.exec("director", ["curl", "-s", "-m", "3", "http://127.0.0.1:9901/api/l4"]);
  assert.equal(api.code, 0, api.stderr);
  return JSON.parse(api.stdout) as L4View;
}

/** n requests through the VIP (`family` 6: the IPv6 one), each a new connection; the bodies
 * ("s2 10.200.67.2 10.200.67.100"). */
async function requests(n: number, family: 4 | 6 = 4): Promise<string[]> {
  const bodies: string[] = [];
  const url = family === 6 ? `http://[${VIP6}]/` : `http://${VIP}/`;
  for (let i = 0; i < n; i++) {
    const r = await lab.exec("client", ["curl", "-g", `-${family}`, "-s", "-m", "3", "-w", " %{http_code}", url]);
    assert.equal(r.code, 0, `curl ${i} through the VIP: exit ${r.code} ${r.stderr}`);
    const m = /^(\S+ \S+ \S+)\n (\d+)$/.exec(r.stdout);
    assert.ok(m, `curl ${i}: unexpected answer ${JSON.stringify(r.stdout)}`);
    assert.equal(m[2], "200");
    bodies.push(m[1]);
  }
  return bodies;
}

/** tshark over a capture: one row of `fields` per packet, and the expert infos of `severity` and up. */
async function tshark(file: string, fields: string[], severity = "warn"): Promise<{ rows: string[][]; expert: string[] }> {
  const prefs = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];
  const out = await exec(["tshark", "-n", "-r", file, ...prefs, "-T", "fields", ...fields.flatMap((f) => ["-e", f])]);
  assert.equal(out.code, 0, out.stderr);
  const expert = await exec(["tshark", "-n", "-r", file, ...prefs, "-q", "-z", `expert,${severity}`]);
  assert.equal(expert.code, 0, expert.stderr);
  return {
    rows: out.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => l.split("\t")),
    // The report's entries are the lines under a severity heading ("Warns (N)") that name a group.
    expert: expert.stdout.split("\n").filter((l) => /^\s+\d+\s+\S+/.test(l)),
  };
}

test("director tun: curl through the VIP reaches all three nginx round robin in the pool's order at the VIP, each logging the client's own address; the director sends IPIP from its own address (tshark: valid inner IP/TCP checksums, no expert warnings) and the servers answer the client directly", { skip: noLab }, async () => {
  const dir = tempDir("director-tun-capture");
  const client = lab.node("client"), director = lab.node("director");
  const tunnelled = await Capture.start(lab, "director", "ip proto 4", `${dir}/ipip.pcap`);
  const toClient = await Capture.start(lab, "client", `tcp and src host ${VIP} and src port 80`);
  const logged = new Map(SERVERS.map((s) => [s, readLog(s).length]));
  const peer = await startDirector();
  try {
    assert.match(peer.output(), new RegExp(`directing tcp://${esc(VIP)}:80 \\(web, tun on eth0 through \\S+, IPIP from ${esc(director.ipv4)} mtu 1500\\)`));
    assert.ok(await lab.hasAddress("director", VIP), "the director holds the VIP on its interface");
    const bodies = await requests(6);
    const names = bodies.map((b) => b.split(" ")[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    // rr in the pool's order, from wherever its cursor starts.
    const start = SERVERS.indexOf(names[0]);
    assert.deepEqual(names, names.map((_, k) => SERVERS[(start + k) % SERVERS.length]), `rr in the pool's order: ${names.join(", ")}`);
    for (const b of bodies) {
      const [, remote, local] = b.split(" ");
      assert.equal(remote, client.ipv4, `the server saw the client's address: ${b}`);
      assert.equal(local, VIP, `the server was reached at the VIP: ${b}`);
    }
    // Each nginx logged its two requests from the client's own address.
    for (const s of SERVERS) {
      const lines = readLog(s).slice(logged.get(s));
      assert.equal(lines.length, 2, `${s} logged ${lines.length} requests: ${lines.join("\n")}`);
      for (const l of lines) assert.ok(l.startsWith(`${client.ipv4} `), `${s} logged the client's address: ${l}`);
    }
    // At the client: every answer from the VIP in a frame from a server's MAC, never the director's.
    const serverMacs = SERVERS.map((s) => lab.node(s).mac);
    const answers = await toClient.waitFor(/Flags \[S\.\]/, 6, 5000);
    for (const a of answers) assert.ok(serverMacs.includes(a.text.split(" ")[0]), `answered straight from a server: ${a.text}`);
    assert.equal(toClient.matching(new RegExp(`^${director.mac} `)).length, 0, "nothing from the VIP came through the director");
    // The director's own count: client packets in, none out (no server-side key in tun).
    const view = await l4View();
    assert.equal(view.virtual_servers[0].forward, "Tunnel");
    assert.ok(view.director.counters.forward_in >= 6 * 3, `client packets tunnelled: ${JSON.stringify(view.director.counters)}`);
    assert.equal(view.director.counters.forward_out, 0, "no reply went through the director");
    // Six SYNs tunnelled from the director's address, the client's packet inside unchanged.
    await tunnelled.waitFor(new RegExp(`: ${esc(director.ipv4)} > 10\\.200\\.${SUBNET}\\.[345]: ${esc(client.ipv4)}\\.\\d+ > ${esc(VIP)}\\.80: Flags \\[S\\]`), 6, 5000);
  } finally {
    await tunnelled.stop();
    await toClient.stop();
    await stopDirector(peer);
  }
  const servers = SERVERS.map((s) => lab.node(s).ipv4);
  const { rows, expert } = await tshark(`${dir}/ipip.pcap`, ["ip.src", "ip.dst", "ip.proto", "ip.checksum.status", "tcp.checksum.status"]);
  assert.ok(rows.length >= 6 * 4, `${rows.length} IPIP packets captured on the director's eth0`);
  for (const [src, dst, proto, ipStatus, tcpStatus] of rows) {
    const [outerSrc, innerSrc] = src.split(","), [outerDst, innerDst] = dst.split(",");
    assert.equal(proto, "4,6", `IPv4 in IPv4 carrying TCP: ${src} ${dst} ${proto}`);
    assert.equal(outerSrc, director.ipv4, "the outer source is the director's own address");
    assert.ok(servers.includes(outerDst), `the outer destination is a real server: ${outerDst}`);
    assert.deepEqual([innerSrc, innerDst], [client.ipv4, VIP], "the inner packet is the client's, unchanged");
    // 1: "Good" (0 bad, 2 unverified), outer and inner IP header and the inner TCP segment.
    assert.deepEqual([ipStatus, tcpStatus], ["1,1", "1"], `checksums of ${src} > ${dst}`);
  }
  assert.deepEqual(expert, [], "no expert warnings or errors");
});

test("director tun: a 1 MiB upload with DF set completes: the director sends ICMP fragmentation needed (type 3 code 4, next-hop MTU 1480) for segments the tunnel cannot carry, counts it, and the client's path MTU adapts", { skip: noLab }, async () => {
  const dir = tempDir("director-tun-upload");
  const body = new Uint8Array(1 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 2654435761) >>> 24;
  writeFileSync(`${dir}/body`, body);
  const digest = createHash("sha256").update(body).digest("hex");
  const icmp = await Capture.start(lab, "client", "icmp", `${dir}/icmp.pcap`);
  const peer = await startDirector();
  try {
    // Learnt path MTUs from an earlier run of this namespace would hide the director's error.
    await lab.exec("client", ["ip", "route", "flush", "cache"]);
    const put = await lab.exec("client", ["curl", "-s", "-m", "20", "-H", "Expect:", "-T", `${dir}/body`, "-w", "%{http_code}", `http://${VIP}/upload/big`], 25_000);
    assert.equal(put.code, 0, `curl -T through the VIP: exit ${put.code} ${put.stderr}`);
    assert.match(put.stdout, /(201|204)$/, `stored: ${put.stdout}`);
    const stored = SERVERS.flatMap((s) => {
      try { return [readFileSync(`${dirs.get(s)}/upload/big`)]; } catch { return []; }
    });
    assert.equal(stored.length, 1, "one server stored the upload");
    assert.equal(createHash("sha256").update(stored[0]).digest("hex"), digest, "all of it, unchanged");
    const route = await lab.exec("client", ["ip", "route", "get", VIP]);
    assert.match(route.stdout, /mtu 1480/, `the client learnt the path MTU: ${route.stdout}`);
    const view = await l4View();
    assert.ok(view.director.counters.frag_needed_sent >= 1, `frag-needed counted: ${JSON.stringify(view.director.counters)}`);
    await icmp.waitFor(new RegExp(`${esc(VIP)} > ${esc(lab.node("client").ipv4)}: ICMP ${esc(VIP)} unreachable - need to frag \\(mtu 1480\\)`), 1, 5000);
  } finally {
    await icmp.stop();
    await stopDirector(peer);
  }
  const { rows } = await tshark(`${dir}/icmp.pcap`, ["icmp.type", "icmp.code", "icmp.mtu", "icmp.checksum.status", "ip.src"]);
  assert.ok(rows.length >= 1, "ICMP captured at the client");
  for (const [type, code, mtu, status, src] of rows) {
    assert.deepEqual([type, code, mtu, status], ["3", "4", "1480", "1"], `ICMP from ${src}: type ${type} code ${code} mtu ${mtu}, checksum ${status}`);
    assert.equal(src.split(",")[0], VIP, "sent from the VIP the client talked to");
  }
});

test("director tun, IPv6 VIP: curl -6 through [VIP]:80 reaches all three nginx round robin in the pool's order at the VIP, each seeing the client's own IPv6 address; the director sends IPv6 in IPv6 (next header 41) from its own IPv6 address (tshark: valid inner TCP checksums, no expert warnings)", { skip: noLab }, async () => {
  const dir = tempDir("director-tun6-capture");
  const client = lab.node("client"), director = lab.node("director");
  const tunnelled = await Capture.start(lab, "director", "ip6 proto 41", `${dir}/ip6ip6.pcap`);
  const peer = await startDirector(undefined, undefined, 6);
  try {
    assert.match(peer.output(), new RegExp(`directing tcp://${esc(`[${VIP6}]`)}:80 \\(web, tun on eth0 through \\S+, IPv6-in-IPv6 from ${esc(director.ipv6)} mtu 1500\\)`));
    const bodies = await requests(6, 6);
    const names = bodies.map((b) => b.split(" ")[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    const start = SERVERS.indexOf(names[0]);
    assert.deepEqual(names, names.map((_, k) => SERVERS[(start + k) % SERVERS.length]), `rr in the pool's order: ${names.join(", ")}`);
    for (const b of bodies) {
      const [, remote, local] = b.split(" ");
      assert.equal(remote, client.ipv6, `the server saw the client's address: ${b}`);
      assert.equal(local, VIP6, `the server was reached at the VIP: ${b}`);
    }
    const view = await l4View();
    assert.equal(view.virtual_servers[0].forward, "Tunnel");
    assert.equal(view.director.counters.forward_out, 0, "no reply went through the director");
    await tunnelled.waitFor(/Flags \[S\]/, 6, 5000);
  } finally {
    await tunnelled.stop();
    await stopDirector(peer);
  }
  const servers = SERVERS.map((s) => lab.node(s).ipv6);
  const { rows, expert } = await tshark(`${dir}/ip6ip6.pcap`, ["ipv6.src", "ipv6.dst", "ipv6.nxt", "tcp.checksum.status"]);
  assert.ok(rows.length >= 6 * 4, `${rows.length} IPv6-in-IPv6 packets captured on the director's eth0`);
  for (const [src, dst, next, tcpStatus] of rows) {
    const [outerSrc, innerSrc] = src.split(","), [outerDst, innerDst] = dst.split(",");
    assert.equal(next, "41,6", `IPv6 in IPv6 carrying TCP: ${src} ${dst} ${next}`);
    assert.equal(outerSrc, director.ipv6, "the outer source is the director's own address");
    assert.ok(servers.includes(outerDst), `the outer destination is a real server: ${outerDst}`);
    assert.deepEqual([innerSrc, innerDst], [client.ipv6, VIP6], "the inner packet is the client's, unchanged");
    assert.equal(tcpStatus, "1", `the inner TCP checksum of ${src} > ${dst} is good`);
  }
  assert.deepEqual(expert, [], "no expert warnings or errors");
});

test("director tun, IPv6 VIP: a 1 MiB upload completes: the director sends ICMPv6 packet too big (type 2, MTU 1460) from the VIP for segments the tunnel cannot carry, counts it, and the client's path MTU adapts", { skip: noLab }, async () => {
  const dir = tempDir("director-tun6-upload");
  const body = new Uint8Array(1 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 2654435761) >>> 24;
  writeFileSync(`${dir}/body`, body);
  const digest = createHash("sha256").update(body).digest("hex");
  const tooBig = await Capture.start(lab, "client", "icmp6 and ip6[40] == 2", `${dir}/icmp6.pcap`);
  const peer = await startDirector(undefined, undefined, 6);
  try {
    // Learnt path MTUs from an earlier run of this namespace would hide the director's error.
    await lab.exec("client", ["ip", "-6", "route", "flush", "cache"]);
    const put = await lab.exec("client", ["curl", "-g", "-6", "-s", "-m", "20", "-H", "Expect:", "-T", `${dir}/body`, "-w", "%{http_code}", `http://[${VIP6}]/upload/big6`], 25_000);
    assert.equal(put.code, 0, `curl -T through the VIP: exit ${put.code} ${put.stderr}`);
    assert.match(put.stdout, /(201|204)$/, `stored: ${put.stdout}`);
    const stored = SERVERS.flatMap((s) => {
      try { return [readFileSync(`${dirs.get(s)}/upload/big6`)]; } catch { return []; }
    });
    assert.equal(stored.length, 1, "one server stored the upload");
    assert.equal(createHash("sha256").update(stored[0]).digest("hex"), digest, "all of it, unchanged");
    const route = await lab.exec("client", ["ip", "-6", "route", "get", VIP6]);
    assert.match(route.stdout, /mtu 1460/, `the client learnt the path MTU: ${route.stdout}`);
    const view = await l4View();
    assert.ok(view.director.counters.frag_needed_sent >= 1, `packet too big counted: ${JSON.stringify(view.director.counters)}`);
    await tooBig.waitFor(/ICMP6, packet too big, mtu 1460/, 1, 5000);
  } finally {
    await tooBig.stop();
    await stopDirector(peer);
  }
  const { rows } = await tshark(`${dir}/icmp6.pcap`, ["icmpv6.type", "icmpv6.mtu", "icmpv6.checksum.status", "ipv6.src", "ipv6.dst"]);
  assert.ok(rows.length >= 1, "ICMPv6 captured at the client");
  for (const [type, mtu, status, src, dst] of rows) {
    assert.deepEqual([type, mtu, status], ["2", "1460", "1"], `ICMPv6 from ${src}: type ${type} mtu ${mtu}, checksum ${status}`);
    assert.deepEqual([src.split(",")[0], dst.split(",")[0]], [VIP6, lab.node("client").ipv6], "from the VIP the client talked to, to the client");
  }
});

test("director tun, IPv6 VIP: with the director's only global IPv6 address deprecated, fulcrum run refuses to start and says the tunnels need a source", { skip: noLab }, async () => {
  const own = `${lab.node("director").ipv6}/64`;
  await lab.exec("director", ["ip", "-6", "addr", "change", own, "dev", "eth0", "preferred_lft", "0"]);
  try {
    await assert.rejects(startDirector(undefined, undefined, 6), /tun needs a global IPv6 address \(not deprecated\) on eth0 besides the VIP, as the tunnels' source/);
  } finally {
    await lab.exec("director", ["ip", "-6", "addr", "change", own, "dev", "eth0", "preferred_lft", "forever"]);
  }
  // Preferred again, it is the tunnels' source.
  const peer = await startDirector(undefined, undefined, 6);
  try {
    assert.match(peer.output(), new RegExp(`IPv6-in-IPv6 from ${esc(lab.node("director").ipv6)} mtu 1500`));
  } finally {
    await stopDirector(peer);
  }
});

test("director tun: a virtual server's own mtu (1400) decides the tunnel's room over the interface's: the client learns a path MTU of 1380", { skip: noLab }, async () => {
  const dir = tempDir("director-tun-mtu");
  writeFileSync(`${dir}/body`, new Uint8Array(64 << 10).fill(0x62));
  const peer = await startDirector(1400);
  try {
    assert.match(peer.output(), /IPIP from \S+ mtu 1400\)/);
    await lab.exec("client", ["ip", "route", "flush", "cache"]);
    const put = await lab.exec("client", ["curl", "-s", "-m", "20", "-H", "Expect:", "-T", `${dir}/body`, "-w", "%{http_code}", `http://${VIP}/upload/mtu`], 25_000);
    assert.equal(put.code, 0, `curl -T through the VIP: exit ${put.code} ${put.stderr}`);
    assert.match(put.stdout, /(201|204)$/, `stored: ${put.stdout}`);
    const route = await lab.exec("client", ["ip", "route", "get", VIP]);
    assert.match(route.stdout, /mtu 1380/, `the client learnt the path MTU: ${route.stdout}`);
  } finally {
    await stopDirector(peer);
  }
});

test("director tun: the pool's weights decide: wrr 2:1:1 sends 4, 2 and 2 of 8 new connections, and GET /api/l4 lists them by real server as Tunnel", { skip: noLab }, async () => {
  const peer = await startDirector(undefined, [2, 1, 1]);
  try {
    const names = (await requests(8)).map((b) => b.split(" ")[0]);
    const count = (n: string) => names.filter((x) => x === n).length;
    assert.deepEqual(SERVERS.map(count), [4, 2, 2], `wrr 2:1:1: ${names.join(", ")}`);
    const vs = (await l4View()).virtual_servers[0];
    assert.equal(vs.forward, "Tunnel");
    assert.deepEqual(vs.real_servers.map((r) => r.weight), [2, 1, 1]);
    assert.deepEqual(vs.real_servers.map((r) => r.active + r.inactive), [4, 2, 2], "connections tracked per real server");
  } finally {
    await stopDirector(peer);
  }
});

test("director tun: a server stopped by its PID gets no new connections once its health check fails", { skip: noLab }, async () => {
  const peer = await startDirector();
  try {
    const s3 = lab.node("s3").ipv4;
    nginx.get("s3")!.kill("SIGKILL");
    await nginx.get("s3")!.exited;
    await peer.waitForLine(new RegExp(`web/${esc(s3)}:80 DOWN`), 5000);
    await peer.waitForLine(new RegExp(`director: web: real server ${esc(s3)}:80 down`), 5000);
    const names = (await requests(6)).map((b) => b.split(" ")[0]);
    assert.ok(!names.includes("s3"), `s3 took no new connection: ${names.join(", ")}`);
    assert.deepEqual([...new Set(names)].sort(), ["s1", "s2"], `s1 and s2 took them: ${names.join(", ")}`);
  } finally {
    await stopDirector(peer);
    startNginx("s3");
    await waitFor("nginx on s3 again", async () => (await lab.exec("s3", ["curl", "-s", "-m", "1", `http://${lab.node("s3").ipv4}/`])).code === 0, 10_000, 100);
  }
});

test("director tun: on stop, Fulcrum removes the VIP, its TUN and the ingress filter", { skip: noLab }, async () => {
  const peer = await startDirector();
  const tun = /through (\S+),/.exec(peer.output())![1];
  const show = async () => ({
    vip: await lab.hasAddress("director", VIP),
    tun: (await lab.exec("director", ["ip", "link", "show", tun])).code === 0,
    filter: (await lab.exec("director", ["tc", "filter", "show", "dev", "eth0", "ingress"])).stdout.includes(tun),
  });
  try {
    assert.deepEqual(await show(), { vip: true, tun: true, filter: true });
  } finally {
    assert.equal(await stopDirector(peer), 0);
  }
  assert.deepEqual(await show(), { vip: false, tun: false, filter: false });
  const after = await lab.exec("client", ["curl", "-s", "-m", "1", `http://${VIP}/`]);
  assert.notEqual(after.code, 0, "nothing answers on the VIP once the director stopped");
});

test("director tun: a reload with the same virtual servers carries the connection table over: a download in flight (its ACKs tunnelled) finishes", { skip: noLab }, async () => {
  const peer = await startDirector();
  try {
    await downloadAcrossReload(lab, peer, `http://${VIP}/big`, 1);
    // Generation 2 names the tunnel it carried over as generation 1 did.
    const lines = peer.output().match(/directing tcp:\/\/\S+ \(web, tun on eth0 through \S+, IPIP from \S+ mtu 1500\)/g) ?? [];
    assert.equal(lines.length, 2, peer.output());
    const names = (await requests(3)).map((b) => b.split(" ")[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `generation 2 directs to every server: ${names.join(", ")}`);
  } finally {
    await stopDirector(peer);
  }
  assert.ok(!(await lab.hasAddress("director", VIP)), "the VIP goes when the last generation stops");
});

function readLog(server: string): string[] {
  try {
    return readFileSync(`${dirs.get(server)}/access.log`, "utf8").split("\n").filter((l) => l !== "");
  } catch {
    return [];
  }
}
