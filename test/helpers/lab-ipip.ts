// A lab node as an IPIP tunnel's far end (LVS-TUN's real server) on a kernel with no ipip device:
// ipip-decap.ts runs in its namespace, its TUN up and taking inner packets from any source.
import type { Child } from "../../src/runtime/index.ts";
import { runtime } from "../../src/runtime/index.ts";
import { type Lab, waitFor } from "./netns.ts";

const HELPER = new URL("./ipip-decap.ts", import.meta.url).pathname;

export interface IpipDecap {
  child: Child;
  /** What the helper printed so far (its last line on SIGTERM: "decapsulated N, refused M"). */
  output(): string;
}

/** Starts the decapsulation on `node` into a TUN named `tun`, once it is ready; `family` 6:
 * IPv6 in IPv6 (protocol 41) instead of IPv4 in IPv4. */
export async function startIpipDecap(lab: Lab, node: string, tun: string, family: 4 | 6 = 4): Promise<IpipDecap> {
  const child = lab.spawn(node, [...runtime.scriptCommand(HELPER), tun, String(family)]);
  let out = "";
  void (async () => { for await (const c of child.stdout) out += new TextDecoder().decode(c); })().catch(() => {});
  try {
    await waitFor(`ipip-decap on ${node}`, () => out.includes(`ready on ${tun}`), 10_000, 20);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  await lab.exec(node, ["ip", "link", "set", "dev", tun, "up"]);
  // The inner packets come from clients, whose route is eth0: no reverse-path check on the TUN.
  for (const dev of ["all", tun, "eth0"]) await lab.exec(node, ["sysctl", "-q", "-w", `net.ipv4.conf.${dev}.rp_filter=0`]);
  return { child, output: () => out };
}
