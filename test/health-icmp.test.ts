// The ICMP check through a raw socket, against a host in a network namespace this file builds, and
// fulcrum run refusing ICMP checks without CAP_NET_RAW.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtime } from "../src/runtime/index.ts";
import { waitFor } from "./helpers/health-servers.ts";
import { freePort } from "./helpers/backends.ts";
import { fulcrumCommand, writeTemp } from "./helpers/fulcrum.ts";
import { harness, sh, stopHarnesses } from "./helpers/health.ts";
import { needs } from "./helpers/peers.ts";

// A namespace for ICMP: a veth pair whose far end is inside the namespace, its near end in the root namespace.
const NS = `fh${runtime.name[0]}${process.pid % 100000}`;
const SUBNET = 100 + (process.pid % 150);
const HOST_IP = `10.251.${SUBNET}.1`, NS_IP = `10.251.${SUBNET}.2`;

async function buildNamespace(): Promise<void> {
  await sh(["ip", "netns", "add", NS]);
  await sh(["ip", "link", "add", `${NS}h`, "type", "veth", "peer", "name", `${NS}n`]);
  await sh(["ip", "link", "set", `${NS}n`, "netns", NS]);
  await sh(["ip", "addr", "add", `${HOST_IP}/30`, "dev", `${NS}h`]);
  await sh(["ip", "link", "set", `${NS}h`, "up"]);
  await sh(["ip", "netns", "exec", NS, "ip", "addr", "add", `${NS_IP}/30`, "dev", `${NS}n`]);
  await sh(["ip", "netns", "exec", NS, "ip", "link", "set", `${NS}n`, "up"]);
  await sh(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"]);
}

/** Removes the veth (it takes its peer with it) and the namespace; harmless when they are gone. */
async function removeNamespace(): Promise<void> {
  await sh(["ip", "link", "del", `${NS}h`]).catch(() => {});
  await sh(["ip", "netns", "del", NS]).catch(() => {});
}

// Also here, for a run interrupted between building and the test's own finally.
after(async () => {
  stopHarnesses();
  await removeNamespace();
});

test("health: ICMP check through a raw socket: a host in a namespace answers, stops answering, answers again", { skip: needs("root", "ip", "sysctl") }, async () => {
  try {
    await buildNamespace();
    const h = await harness(`
pools:
  api:
    servers: ["${NS_IP}:80"]
    health: { type: icmp, interval: 100ms, timeout: 100ms, rise: 1, fall: 2 }`);
    const monitor = h.service.registry.all()[0];
    await waitFor("an echo reply", () => monitor.checks > 0, 3000);
    assert.match(monitor.state.lastResult!.detail, /^ICMP echo reply in \d+\.\d ms$/);
    assert.equal(monitor.up, true);
    await sh(["ip", "netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1"]);
    await waitFor("DOWN", () => h.lines.some((l) => l.includes("DOWN")), 100 * 2 + 100 + 2000);
    assert.ok(h.lines.includes(`api/${NS_IP}:80 DOWN: ICMP no echo reply after 100ms (2/2)`), h.lines.join("\n"));
    await sh(["ip", "netns", "exec", NS, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=0"]);
    await waitFor("UP", () => h.lines.some((l) => l.includes(" UP")), 100 + 100 + 2000);
    assert.match(h.lines.find((l) => l.includes(" UP"))!, /UP: ICMP echo reply in \d+\.\d ms \(1\/1\)$/);
  } finally {
    stopHarnesses();
    await removeNamespace();
  }
});

test("health: without CAP_NET_RAW, fulcrum run refuses ICMP checks with a clear error", { skip: needs("root") }, async () => {
  const port = await freePort();
  const file = await writeTemp(`
listeners: [{ bind: "127.0.0.1:${port}" }]
pools:
  api: { servers: ["127.0.0.1:80"], health: { type: icmp } }
`);
  try {
    const child = runtime.spawn(["setpriv", "--bounding-set", "-net_raw", ...fulcrumCommand(["run", "--config", file])]);
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    const code = await child.exited;
    clearTimeout(timer);
    assert.equal(code, 1, out + err);
    assert.match(err, /cannot start: ICMP checks need CAP_NET_RAW to open a raw socket, and this process does not have it/);
    assert.doesNotMatch(out, /listening/);
  } finally {
    await sh(["rm", "-f", file]);
  }
});
