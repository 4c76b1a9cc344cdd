// The packet director in DR mode, end to end in a lab of network namespaces: the client, the
// director (`fulcrum run`, spawned) and three nginx real servers share one L2 segment. Each
// server holds the VIP on lo and neither answers nor announces ARP for it (arp_ignore=1,
// arp_announce=2), so the network resolves the VIP to the director, which only rewrites the
// frame's destination MAC (AF_PACKET); the server answers the client directly, from the VIP.
//
//   bridge 10.200.62.0/24: director .1 (VIP .100 on eth0), client .2, s1 .3, s2 .4, s3 .5 (VIP on lo)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnLabNginx } from "./helpers/lab-nginx.ts";
import { Capture, exec, Lab, waitFor } from "./helpers/netns.ts";
import { type Peer, startFulcrum } from "./helpers/vrrp.ts";
import { tempDir } from "./helpers/l4.ts";
import { needs } from "./helpers/peers.ts";
import type { Child } from "../src/runtime/index.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl", "tcpdump", "tshark");

const SUBNET = 62;
const VIP = `10.200.${SUBNET}.100`;
const SERVERS = ["s1", "s2", "s3"];
let lab: Lab;
const nginx = new Map<string, Child>();
const running = new Set<Peer>();
const esc = (s: string) => s.replace(/\./g, "\\.");

function startNginx(server: string): Child {
  const dir = tempDir(`director-dr-${server}`);
  // Port 80 on every address: the VIP (what the director sends) and the server's own (the health check).
  const child = spawnLabNginx(lab, server, dir, `    listen 80;
    location / { return 200 "${server} $remote_addr $server_addr\\n"; }`);
  nginx.set(server, child);
  return child;
}

before(async () => {
  if (noLab) return;
  lab = await Lab.create("ddr", ["director", "client", ...SERVERS], SUBNET);
  for (const s of SERVERS) {
    await lab.exec(s, ["ip", "addr", "add", `${VIP}/32`, "dev", "lo"]);
    for (const dev of ["all", "eth0"]) {
      await lab.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_ignore=1`]);
      await lab.exec(s, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.arp_announce=2`]);
    }
    startNginx(s);
    const url = `http://${lab.node(s).ipv4}/`;
    await waitFor(`nginx on ${s}`, async () => (await lab.exec(s, ["curl", "-s", "-m", "1", url])).code === 0, 10_000, 100);
  }
});

after(async () => {
  for (const peer of running) await peer.stop();
  for (const child of nginx.values()) child.kill("SIGKILL");
  await lab?.destroy();
});

function config(): string {
  const servers = SERVERS.map((s) => `${lab.node(s).ipv4}:80`).join(", ");
  return `
pools:
  web:
    scheduler: rr
    servers: [${servers}]
    health: { type: tcp, interval: 200ms, timeout: 150ms, rise: 1, fall: 1 }
virtual_servers:
  - name: web
    address: ${VIP}:80
    protocol: tcp
    lb_kind: dr
    interface: eth0
    pool: web
`;
}

/** Fulcrum directing, once it knows every real server's MAC (a server is down until then). */
async function startDirector(env?: Record<string, string>): Promise<Peer> {
  const peer = await startFulcrum(lab, "director", config(), 1, /directing tcp:\/\//g, env);
  running.add(peer);
  for (const s of SERVERS) {
    await peer.waitForLine(new RegExp(`director: web: real server ${esc(lab.node(s).ipv4)}:80 is at ${lab.node(s).mac}`), 5000);
  }
  return peer;
}

async function stopDirector(peer: Peer): Promise<number> {
  const code = await peer.stop();
  running.delete(peer);
  return code;
}

/** n requests through the VIP, each a new connection; the bodies ("s2 10.200.62.2 10.200.62.100"). */
async function requests(n: number): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await lab.exec("client", ["curl", "-s", "-m", "3", "-w", " %{http_code}", `http://${VIP}/`]);
    assert.equal(r.code, 0, `curl ${i} through the VIP: exit ${r.code} ${r.stderr}`);
    const m = /^(\S+ \S+ \S+)\n (\d+)$/.exec(r.stdout);
    assert.ok(m, `curl ${i}: unexpected answer ${JSON.stringify(r.stdout)}`);
    assert.equal(m[2], "200");
    bodies.push(m[1]);
  }
  return bodies;
}

test("director dr: curl through the VIP reaches all three nginx in rr order at the VIP itself; the director only swaps MACs, the servers answer the client directly, and tshark finds the frames' checksums valid", { skip: noLab }, async () => {
  const dir = tempDir("director-dr-capture");
  const client = lab.node("client"), s1 = lab.node("s1"), director = lab.node("director");
  const toServer = await Capture.start(lab, "s1", `tcp and dst host ${VIP} and dst port 80`, `${dir}/to-server.pcap`);
  const toClient = await Capture.start(lab, "client", `tcp and src host ${VIP} and src port 80`);
  const peer = await startDirector();
  try {
    assert.ok(await lab.hasAddress("director", VIP), "the director holds the VIP on its interface");
    const bodies = await requests(6);
    const names = bodies.map((b) => b.split(" ")[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    assert.deepEqual(names.slice(3), names.slice(0, 3), `rr order: ${names.join(", ")}`);
    for (const b of bodies) {
      const [, remote, local] = b.split(" ");
      assert.equal(remote, client.ipv4, `the server saw the client's address: ${b}`);
      assert.equal(local, VIP, `the server was reached at the VIP (no address rewritten): ${b}`);
    }
    // At s1: the client's packets to the VIP, in frames from the director's MAC to s1's.
    const frames = await toServer.waitFor(new RegExp(`^${director.mac} > ${s1.mac}, .*${esc(client.ipv4)}\\.\\d+ > ${esc(VIP)}\\.80: Flags \\[S\\]`), 2, 5000);
    assert.equal(frames.length, 2, "two connections reached s1");
    // At the client: every answer from the VIP comes in a frame from a server's MAC, never the director's.
    const serverMacs = SERVERS.map((s) => lab.node(s).mac);
    const answers = await toClient.waitFor(/Flags \[S\.\]/, 6, 5000);
    for (const a of answers) assert.ok(serverMacs.includes(a.text.split(" ")[0]), `answered straight from a server: ${a.text}`);
    assert.equal(toClient.matching(new RegExp(`^${director.mac} `)).length, 0, "nothing from the VIP came through the director");
  } finally {
    await toServer.stop();
    await toClient.stop();
    await stopDirector(peer);
  }
  assert.ok(!(await lab.hasAddress("director", VIP)), "the VIP is removed on stop");
  const prefs = ["-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];
  const fields = await exec(["tshark", "-n", "-r", `${dir}/to-server.pcap`, ...prefs, "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status"]);
  assert.equal(fields.code, 0, fields.stderr);
  const statuses = fields.stdout.split("\n").filter((l) => l.trim() !== "");
  assert.ok(statuses.length >= 8, `${statuses.length} frames captured at s1`);
  assert.deepEqual(statuses.filter((s) => s !== "1\t1"), [], "every frame's IP and TCP checksums verified good (1)");
  const expert = await exec(["tshark", "-n", "-r", `${dir}/to-server.pcap`, ...prefs, "-q", "-z", "expert,note"]);
  assert.deepEqual(expert.stdout.split("\n").filter((l) => /checksum/i.test(l)), [], "no checksum expert notes");
});

test("director dr with FULCRUM_DR_TX=ring: frames sent through a PACKET_TX_RING reach all three nginx at the VIP, from the director's MAC", { skip: noLab }, async () => {
  const s1 = lab.node("s1"), director = lab.node("director"), client = lab.node("client");
  const toServer = await Capture.start(lab, "s1", `tcp and dst host ${VIP} and dst port 80`);
  const peer = await startDirector({ FULCRUM_DR_TX: "ring" });
  try {
    const names = (await requests(6)).map((b) => b.split(" ")[0]);
    assert.deepEqual([...new Set(names)].sort(), SERVERS, `every server answered: ${names.join(", ")}`);
    const frames = await toServer.waitFor(new RegExp(`^${director.mac} > ${s1.mac}, .*${esc(client.ipv4)}\\.\\d+ > ${esc(VIP)}\\.80: Flags \\[S\\]`), 2, 5000);
    assert.equal(frames.length, 2, "two connections reached s1 in frames from the director");
  } finally {
    await toServer.stop();
    await stopDirector(peer);
  }
});

test("director dr: a server stopped by its PID gets no new connections once its health check fails", { skip: noLab }, async () => {
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
  }
});
