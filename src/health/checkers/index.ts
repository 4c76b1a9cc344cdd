// The probe for a check definition: one module per kind of check, picked here.
import { formatHostPort, type HostPort } from "../../config/address.ts";
import type { CheckConfig } from "../config.ts";
import type { CheckTarget, Probe } from "../result.ts";
import { tcpProbe } from "./tcp.ts";
import { httpProbe } from "./http.ts";
import { icmpProbe } from "./icmp.ts";
import { udpProbe } from "./udp.ts";
import { scriptProbe } from "./script.ts";
import { agentProbe } from "./agent.ts";

export function probeFor(check: CheckConfig, address: HostPort): { target: CheckTarget; probe: Probe } {
  const port = "port" in check && check.port !== null ? check.port : address.port;
  const target = { host: address.host, port };
  switch (check.type) {
    case "tcp": return { target, probe: tcpProbe(target) };
    case "http": case "https": return { target, probe: httpProbe(check, target, formatHostPort(address)) };
    case "icmp": return { target, probe: icmpProbe(address.host) };
    case "udp": return { target, probe: udpProbe(check, target) };
    case "script": return { target, probe: scriptProbe(check, address) };
    case "agent": return { target, probe: agentProbe(check, target) };
  }
}
