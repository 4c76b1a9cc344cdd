// UDP check (keepalived UDP_CHECK): send a payload. With a reply required (or `expect` set) the
// server is up when a reply arrives, and matches `expect`, within the timeout; without, it is up
// unless the host answers with an ICMP error (port unreachable) before the timeout.
import dgram from "node:dgram";
import net from "node:net";
import type { CheckConfig } from "../config.ts";
import { fail, pass, socketErrorText, type CheckResult, type CheckTarget, type Probe } from "../result.ts";

type UdpCheck = Extract<CheckConfig, { type: "udp" }>;

export function udpProbe(check: UdpCheck, target: CheckTarget): Probe {
  const payload = new TextEncoder().encode(check.send);
  const expect = check.expect === null ? null : new RegExp(check.expect);
  return (deadline) => new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(target.host) ? "udp6" : "udp4");
    let finished = false;
    const done = (r: CheckResult) => {
      if (finished) return;
      finished = true;
      deadline.onExpire(null);
      try { socket.close(); } catch { /* already closed */ }
      resolve(r);
    };
    // Without a required reply, silence until the timeout is the passing answer.
    deadline.onExpire(() => done(check.requireReply ? fail(`UDP no reply ${deadline.reason}`) : pass("UDP sent, no ICMP error")));
    socket.on("error", (e) => done(fail(`UDP ${socketErrorText(e) === "refused" ? "port unreachable" : socketErrorText(e)}`)));
    socket.on("message", (reply: Uint8Array) => {
      if (!check.requireReply) return;
      const text = new TextDecoder().decode(reply);
      if (expect && !expect.test(text)) done(fail(`UDP reply ${JSON.stringify(text.slice(0, 40))} does not match /${check.expect}/`));
      else done(pass("UDP reply ok"));
    });
    socket.connect(target.port, target.host, () => {
      socket.send(payload, (e) => { if (e) done(fail(`UDP send failed: ${socketErrorText(e)}`)); });
    });
  });
}
