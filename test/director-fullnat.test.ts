// The packet director in FULLNAT mode, end to end in a lab of network namespaces: a client, the
// director (`fulcrum run` as a process) and three nginx real servers on a network of their own
// whose only route leads to the local addresses' subnet: they cannot reach the client, so every
// reply must come back through the director, to the local address:port it gave the connection.
//
//   client 10.201.65.2 ── eth1 [director 10.201.65.1, VIP 10.201.65.100,    ] eth0 ── bridge ── s1 s2 s3
//                              [local addresses 10.202.65.50-52, 10.200.65.1]        10.200.65.2-4:8080
//   s1-s3: `ip route add 10.202.65.0/24 via 10.200.65.1`, no default route.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Capture, exec, Lab, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { downloadAcrossReload } from "./helpers/director-reload.ts";
import { tempDir } from "./helpers/l4.ts";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { needs } from "./helpers/peers.ts";
import { type Child, runtime } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "wrk", "tcpdump", "tshark");
const noDns = noLab || needs("dnsmasq", "dig");

const SUBNET = 65;
const VIP = `10.201.${SUBNET}.100`;
const CLIENT = `10.201.${SUBNET}.2`;
const LOCALS = [`10.202.${SUBNET}.50`, `10.202.${SUBNET}.51`];
const PROXY_LOCAL = `10.202.${SUBNET}.52`;
const DNS_LOCAL = `10.202.${SUBNET}.53`;
const CLOSED_LOCAL = `10.202.${SUBNET}.54`;
const SERVERS = ["s1", "s2", "s3"];
let lab: Lab;
const nginx = new Map<string, Child>();
const logs = new Map<string, string>();
const running = new Set<Peer>();

// Port 8080 plain, 8081 behind PROXY protocol v2 (the one TCP header nginx then expects first);
// /up reads a whole request body (proxied to itself, which buffers it) and answers its length.
function startNginx(server: string): Child {
  const dir = tempDir(`director-fullnat-${server}`);
  const address = lab.node(server).ipv4;
  writeFileSync(`${dir}/big`, new Uint8Array(1 << 20).fill(0x61));
  logs.set(server, `${dir}/access.log`);
  const child = spawnLabNginx(lab, server, dir, `    listen ${address}:8080;
    listen ${address}:8081 proxy_protocol;
    listen 127.0.0.1:8082;
    access_log ${dir}/access.log seen;
    location / { return 200 "${server} $remote_addr $proxy_protocol_addr $proxy_protocol_port\\n"; }
    location = /big { alias ${dir}/big; limit_rate 200k; }
    location = /up { client_max_body_size 4m; proxy_pass http://127.0.0.1:8082/length; }
    location = /length { return 200 "$http_content_length\\n"; }`, { http: `  log_format seen '$server_port $remote_addr $proxy_protocol_addr:$proxy_protocol_port $request';\n` });
  nginx.set(server, child);
  return child;
}

before(async () => {
  if (noLab) return;
  lab = await Lab.create("fnat", ["director", ...SERVERS], SUBNET);
  await lab.addRoutedNode("client", "director", "eth1", SUBNET);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "route", "add", `10.202.${SUBNET}.0/24`, "via", lab.node("director").ipv4]);
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

/** `udp`: two udp virtual servers too, VIP:53 to dnsmasq on the servers' port 5353 and VIP:54 to
 * a port nothing listens on. */
function config(udp = false): string {
  const servers = (port: number) => SERVERS.map((s) => `${lab.node(s).ipv4}:${port}`).join(", ");
  const vs = (name: string, port: number, protocol: string, local: string, extra = "") => `  - name: ${name}
    address: ${VIP}:${port}
    protocol: ${protocol}
    lb_kind: fullnat
    interface: eth1
    pool: ${name}
    local_addresses: [${local}]
${extra}`;
  return `
admin: { bind: 127.0.0.1:9901 }
pools:
  web:
    scheduler: rr
    servers: [${servers(8080)}]
    health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }
  proxied:
    scheduler: rr
    servers: [${servers(8081)}]
${udp ? `  dns:\n    scheduler: rr\n    servers: [${servers(5353)}]\n  closed:\n    scheduler: rr\n    servers: [${servers(5399)}]\n` : ""}virtual_servers:
${vs("web", 80, "tcp", LOCALS.join(", "), "    toa: true\n")}${vs("proxied", 81, "tcp", PROXY_LOCAL, "    proxy_protocol: v2\n")}${udp ? vs("dns", 53, "udp", DNS_LOCAL) + vs("closed", 54, "udp", CLOSED_LOCAL) : ""}`;
}

async function startDirector(udp = false): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(udp), udp ? 4 : 2, /directing (tcp|udp):\/\//g);
  running.add(peer);
  return peer;
}
async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

/** n requests through VIP:port, each a new connection: the words of each body and curl's local port. */
async function requests(n: number, port = 80): Promise<{ words: string[]; clientPort: number }[]> {
  const out: { words: string[]; clientPort: number }[] = [];
  for (let i = 0; i < n; i++) {
    const r = await lab.exec("client", ["curl", "-s", "-m", "3", "-w", "%{http_code} %{local_port}", `http://${VIP}:${port}/`]);
    assert.equal(r.code, 0, `curl ${i} through ${VIP}:${port}: exit ${r.code} ${r.stderr}`);
    const m = /^(.*)\n(\d+) (\d+)$/.exec(r.stdout);
    assert.ok(m, `curl ${i}: unexpected answer ${JSON.stringify(r.stdout)}`);
    assert.equal(m[2], "200");
    out.push({ words: m[1].split(" "), clientPort: Number(m[3]) });
  }
  return out;
}

const PREFS = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];

/** Every packet's IP and TCP checksum status as tshark verifies them, and its warnings and errors. */
async function checksums(file: string): Promise<{ statuses: string[]; expert: string[] }> {
  const fields = await exec(["tshark", "-n", "-r", file, ...PREFS, "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status"]);
  assert.equal(fields.code, 0, fields.stderr);
  const expert = await exec(["tshark", "-n", "-r", file, ...PREFS, "-q", "-z", "expert,warn"]);
  assert.equal(expert.code, 0, expert.stderr);
  return {
    statuses: fields.stdout.split("\n").filter((l) => l.trim() !== ""),
    // The table's rows (a severity group header, then "  count  group  protocol  summary").
    expert: expert.stdout.split("\n").filter((l) => /^\s*\d+\s+\S+\s+\S+/.test(l)),
  };
}

/** The TCP options tshark decoded per packet: flags (hex) and each option as [kind, bytes]. */
async function tcpOptions(file: string): Promise<{ flags: number; options: [number, Buffer][] }[]> {
  const r = await exec(["tshark", "-n", "-r", file, ...PREFS, "-T", "fields", "-e", "tcp.flags", "-e", "tcp.options"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter((l) => l.trim() !== "").map((line) => {
    const [flags, hex = ""] = line.split("\t");
    const b = Buffer.from(hex.replace(/:/g, ""), "hex");
    const options: [number, Buffer][] = [];
    for (let i = 0; i < b.length;) {
      if (b[i] === 0 || b[i] === 1) { options.push([b[i], Buffer.alloc(0)]); i++; continue; }
      options.push([b[i], b.subarray(i + 2, i + b[i + 1])]);
      i += Math.max(2, b[i + 1]);
    }
    return { flags: parseInt(flags, 16), options };
  });
}

const SYN = 0x02, ACK = 0x10;

test("director fullnat: the servers cannot reach the client; curl through the VIP reaches all three nginx in rr order, each sees a local address (both in use) as the source", { skip: noLab }, async () => {
  const noRoute = await lab.exec("s1", ["ip", "route", "get", CLIENT]);
  assert.notEqual(noRoute.code, 0, `s1 has no route to the client: ${noRoute.stdout}`);
  const director = await startDirector();
  try {
    for (const a of [...LOCALS, PROXY_LOCAL]) assert.ok(await lab.hasAddress("director", a, "eth1"), `the director holds local address ${a}`);
    const answers = await requests(6);
    const names = answers.map((a) => a.words[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
    const sources = answers.map((a) => a.words[1]);
    for (const s of sources) assert.ok(LOCALS.includes(s), `the server saw a local address, not the client: ${s}`);
    assert.deepEqual([...new Set(sources)].sort(), LOCALS, `the connections spread over both local addresses: ${sources.join(", ")}`);
  } finally {
    await stopDirector(director);
  }
});

test("director fullnat: TOA (option 254) carries the client's port and address on the SYN and the handshake-completing ACK only, and tshark finds every rewritten packet's checksums valid with no warnings", { skip: noLab }, async () => {
  const dir = tempDir("director-fullnat-capture");
  const s1 = lab.node("s1").ipv4;
  const toServer = await Capture.start(lab, "s1", `tcp and dst host ${s1} and dst port 8080 and not src host ${lab.node("director").ipv4}`, `${dir}/to-server.pcap`);
  const toClient = await Capture.start(lab, "client", `tcp and src host ${VIP} and src port 80`, `${dir}/to-client.pcap`);
  const director = await startDirector();
  let toS1: { words: string[]; clientPort: number }[];
  try {
    const answers = await requests(3);
    toS1 = answers.filter((a) => a.words[0] === "s1");
    assert.equal(toS1.length, 1, "rr: one of three connections went to s1");
    await toServer.waitFor(/Flags \[F\.\]/, 1, 5000);
    await toClient.waitFor(/Flags \[F\.\]/, 3, 5000);
  } finally {
    await toServer.stop();
    await toClient.stop();
    await stopDirector(director);
  }
  const packets = await tcpOptions(`${dir}/to-server.pcap`);
  const toa = (p: { options: [number, Buffer][] }) => p.options.filter(([kind]) => kind === 254).map(([, b]) => b);
  const withToa = packets.filter((p) => toa(p).length > 0);
  assert.equal(withToa.length, 2, `two packets carry TOA: ${JSON.stringify(packets.map((p) => [p.flags, p.options.map(([k]) => k)]))}`);
  assert.equal(withToa[0].flags & (SYN | ACK), SYN, "the first is the SYN");
  assert.equal(withToa[1].flags & (SYN | ACK), ACK, "the second the ACK that completes the handshake");
  assert.equal(packets.indexOf(withToa[1]), 1, "right after the SYN");
  const expected = Buffer.concat([Buffer.from([toS1[0].clientPort >> 8, toS1[0].clientPort & 0xff]), Buffer.from(CLIENT.split(".").map(Number))]);
  for (const p of withToa) assert.deepEqual(toa(p)[0], expected, "TOA: the client's port and address");
  for (const file of [`${dir}/to-server.pcap`, `${dir}/to-client.pcap`]) {
    const { statuses, expert } = await checksums(file);
    assert.ok(statuses.length >= 5, `${file}: ${statuses.length} packets`);
    // ip.checksum.status and tcp.checksum.status: 1 is "Good" (0 bad, 2 unverified).
    assert.deepEqual(statuses.filter((s) => s !== "1\t1"), [], `${file}: every packet's IP and TCP checksums verified good`);
    assert.deepEqual(expert, [], `${file}: no expert warnings or errors`);
  }
});

test("director fullnat: proxy_protocol v2: nginx (listen ... proxy_protocol) logs the client's own address and port as $proxy_protocol_addr; a 1 MiB upload after the header arrives whole; tshark finds valid checksums and no warnings but those of loss and flow control", { skip: noLab }, async () => {
  const dir = tempDir("director-fullnat-upload");
  writeFileSync(`${dir}/body`, new Uint8Array(1 << 20).fill(0x62));
  const captures = [
    ...await Promise.all(SERVERS.map((s) => Capture.start(lab, s, `tcp and src host ${PROXY_LOCAL} and dst port 8081`, `${dir}/${s}.pcap`))),
    await Capture.start(lab, "client", `tcp and src host ${VIP} and src port 81`, `${dir}/client.pcap`),
  ];
  const director = await startDirector();
  try {
    const answers = await requests(3, 81);
    assert.deepEqual(answers.map((a) => a.words[0]).sort(), SERVERS, "every server answered");
    for (const a of answers) {
      assert.equal(a.words[1], PROXY_LOCAL, `the connection comes from the local address: ${a.words.join(" ")}`);
      assert.equal(a.words[2], CLIENT, `$proxy_protocol_addr is the client: ${a.words.join(" ")}`);
      assert.equal(Number(a.words[3]), a.clientPort, `$proxy_protocol_port is the client's port: ${a.words.join(" ")}`);
    }
    for (const s of SERVERS) {
      const log = await waitFor(`${s}'s access log line`, async () => {
        const text = await runtime.readTextFile(logs.get(s)!).catch(() => "");
        return text.split("\n").filter((l) => l.startsWith("8081 ")).at(-1) ?? null;
      }, 3000);
      const port = answers.find((a) => a.words[0] === s)!.clientPort;
      assert.equal(log, `8081 ${PROXY_LOCAL} ${CLIENT}:${port} GET / HTTP/1.1`, `${s} logged the client's address`);
    }
    const up = await lab.exec("client", ["curl", "-s", "-m", "20", "-w", " %{http_code} %{size_upload}", "--data-binary", `@${dir}/body`, `http://${VIP}:81/up`], 25_000);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stdout, `${1 << 20}\n 200 ${1 << 20}`, "nginx read the whole body after the header");
    // The four connections' closes, so the captures hold them whole (bounded: 15 s).
    const fins = () => captures[3].matching(/Flags \[F\.?\]/);
    await waitFor("the server's FIN of each of the four connections", () => fins().length >= 4, 15_000, 50)
      .catch((e) => { throw new Error(`${(e as Error).message}: ${fins().map((p) => p.text).join("\n")}`); });
  } finally {
    for (const c of captures) await c.stop();
    await stopDirector(director);
  }
  for (const file of [...SERVERS.map((s) => `${dir}/${s}.pcap`), `${dir}/client.pcap`]) {
    const { statuses, expert } = await checksums(file);
    assert.ok(statuses.length >= 5, `${file}: ${statuses.length} packets`);
    assert.deepEqual(statuses.filter((st) => st !== "1\t1"), [], `${file}: every packet's IP and TCP checksums verified good`);
    // The upload's burst may overflow the TUN's queue while the director is not scheduled (a
    // loaded 2-core machine), and nginx may close its window while it buffers the body: a gap
    // and the retransmission filling it, or a zero window, are loss and flow control, not
    // numbering. Acknowledgements shifted wrong show as ACKs of data never sent ("ACKed segment
    // that wasn't captured"), which stays refused with every other warning.
    const loss = /Previous segment\(s\) not captured|Out-Of-Order|retransmission|Zero Window|Window is full/i;
    const unexplained = expert.filter((l) => !loss.test(l));
    assert.deepEqual(unexplained, [], `${file}: no expert warnings or errors but those of loss and flow control`);
  }
  // The SYN reached a server without SACK-permitted; its SYN-ACK reached the client with the MSS less 28.
  const syns = (await tcpOptions(`${dir}/s1.pcap`)).filter((p) => (p.flags & (SYN | ACK)) === SYN);
  assert.ok(syns.length >= 1 && syns.every((p) => !p.options.some(([kind]) => kind === 4)), "no SACK-permitted toward the servers");
  const synAcks = (await tcpOptions(`${dir}/client.pcap`)).filter((p) => (p.flags & (SYN | ACK)) === (SYN | ACK));
  for (const p of synAcks) assert.deepEqual(p.options.find(([kind]) => kind === 2)?.[1], Buffer.from([(1460 - 28) >> 8, (1460 - 28) & 0xff]), "MSS 1432");
});

test("director fullnat: a short wrk run through the VIP gets only 200s, no socket errors, no local port refused", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    const r = await lab.exec("client", ["wrk", "-t1", "-c8", "-d2s", "--timeout", "2s", `http://${VIP}/`], 20_000);
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

test("director fullnat: a server stopped by its PID gets no new connections once its health check fails; the others take them", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    assert.deepEqual([...new Set((await requests(3)).map((a) => a.words[0]))].sort(), SERVERS);
    const s2 = lab.node("s2").ipv4.replace(/\./g, "\\.");
    nginx.get("s2")!.kill("SIGKILL");
    await nginx.get("s2")!.exited;
    await director.waitForLine(new RegExp(`director: web: real server ${s2}:8080 down`), 5000);
    const names = (await requests(6)).map((a) => a.words[0]);
    assert.ok(!names.includes("s2"), `s2 took no new connection: ${names.join(", ")}`);
    assert.deepEqual([...new Set(names)].sort(), ["s1", "s3"], `s1 and s3 took them: ${names.join(", ")}`);
  } finally {
    await stopDirector(director);
    startNginx("s2");
    await waitFor("nginx on s2 again", async () => (await lab.exec("s2", ["curl", "-s", "-m", "1", `http://${lab.node("s2").ipv4}:8080/`])).code === 0, 10_000, 100);
  }
});

test("director fullnat: a reload with the same virtual servers carries the table over: a 1 MiB download in flight finishes", { skip: noLab }, async () => {
  const director = await startDirector();
  try {
    await downloadAcrossReload(lab, director, `http://${VIP}/big`, 2);
    // Generation 2's health checks may not have passed for every server yet: any of them may answer.
    for (const a of await requests(3)) assert.ok(SERVERS.includes(a.words[0]) && LOCALS.includes(a.words[1]), `generation 2 directs: ${a.words.join(" ")}`);
  } finally {
    await stopDirector(director);
  }
});

test("director fullnat: on stop, Fulcrum removes the VIP, the local addresses, its TUN, the ingress filters on both interfaces and adds no rules", { skip: noLab }, async () => {
  const director = await startDirector();
  const tun = /through (\S+)\)/.exec(director.output())![1];
  const filters = async (dev: string) => (await lab.exec("director", ["tc", "filter", "show", "dev", dev, "ingress"])).stdout.split("\n").filter((l) => l.includes(tun)).length;
  const show = async () => ({
    addresses: (await lab.addresses("director", "eth1")).filter((a) => a === VIP || a.startsWith(`10.202.${SUBNET}.`)).sort(),
    tun: (await lab.exec("director", ["ip", "link", "show", tun])).code === 0,
    vipFilters: await filters("eth1"),
    replyFilters: await filters("eth0"),
    rules: (await lab.exec("director", ["ip", "rule", "show"])).stdout.split("\n").filter((l) => /lookup 2\d{4}/.test(l)).length,
  });
  try {
    // On eth1, per virtual server: its VIP:port filter and one per ICMPv4 error type (3, 11, 12).
    assert.deepEqual(await show(), { addresses: [VIP, ...LOCALS, PROXY_LOCAL].sort(), tun: true, vipFilters: 8, replyFilters: 6, rules: 0 });
  } finally {
    assert.equal(await stopDirector(director), 0);
  }
  assert.deepEqual(await show(), { addresses: [], tun: false, vipFilters: 0, replyFilters: 0, rules: 0 });
  const after = await lab.exec("client", ["curl", "-s", "-m", "1", `http://${VIP}/`]);
  assert.notEqual(after.code, 0, "nothing answers on the VIP once the director stopped");
});

test("director fullnat: udp: dig through VIP:53 reaches the three dnsmasq in rr order; a datagram to VIP:54, whose servers' port is closed, comes back to the client as ICMP port unreachable from the VIP, checksums valid", { skip: noDns }, async () => {
  const dns: Child[] = [];
  for (const s of SERVERS) {
    const dir = tempDir(`director-fullnat-dns-${s}`);
    dns.push(lab.spawn(s, [
      "dnsmasq", "--no-daemon", "--port=5353", `--listen-address=${lab.node(s).ipv4}`, "--bind-interfaces", "--no-resolv",
      "--no-hosts", `--txt-record=who.lab,${s}`, `--pid-file=${dir}/pid`, "--user=root", "--cache-size=0",
    ]));
  }
  const dir = tempDir("director-fullnat-icmp");
  try {
    for (const s of SERVERS) {
      const at = lab.node(s).ipv4;
      await waitFor(`dnsmasq on ${s}`, async () => (await lab.exec(s, ["dig", `@${at}`, "-p", "5353", "who.lab", "TXT", "+short", "+tries=1", "+time=1"])).stdout.includes(s), 10_000, 100);
    }
    const icmp = await Capture.start(lab, "client", "icmp", `${dir}/icmp.pcap`);
    const director = await startDirector(true);
    try {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await lab.exec("client", ["dig", `@${VIP}`, "-p", "53", "who.lab", "TXT", "+short", "+tries=1", "+time=2"]);
        names.push(r.code === 0 ? r.stdout.trim().replace(/"/g, "") : `dig exit ${r.code}: ${r.stdout}${r.stderr}`);
      }
      assert.deepEqual([...new Set(names)].sort(), SERVERS, `every dnsmasq answered: ${names.join(", ")}`);
      assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
      await lab.exec("client", ["bash", "-c", `echo hello > /dev/udp/${VIP}/54`]);
      await icmp.waitFor(new RegExp(`${VIP.replaceAll(".", "\\.")} > ${CLIENT.replaceAll(".", "\\.")}: ICMP ${VIP.replaceAll(".", "\\.")} udp port 54 unreachable`), 1, 5000);
    } finally {
      await icmp.stop();
      await stopDirector(director);
    }
    const r = await exec(["tshark", "-n", "-r", `${dir}/icmp.pcap`, ...PREFS, "-o", "udp.check_checksum:TRUE", "-T", "fields", "-e", "ip.checksum.status", "-e", "icmp.checksum.status", "-e", "udp.checksum.status"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => l.trim() !== "");
    assert.ok(rows.length >= 1, "the ICMP error was captured");
    // The outer and quoted IP headers, the ICMP message, and the quoted UDP header: 1 is "Good".
    for (const row of rows) assert.deepEqual(row.split(/[\t,]/).filter((v) => v !== "" && v !== "1"), [], `every checksum good: ${row}`);
  } finally {
    for (const c of dns) c.kill("SIGKILL");
  }
});
