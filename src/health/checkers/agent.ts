// Agent check (HAProxy agent-check): connect to the agent's port, read one line, and act on its
// words: "up", "down"/"failed"/"stopped"/"maint" (fail), "drain" (weight 0), "ready" (configured
// weight), "75%" (a share of the configured weight), "weight:N" (an absolute weight). Anything
// after "#" is the agent's description and goes into the reason.
import net from "node:net";
import type { CheckConfig } from "../config.ts";
import { fail, pass, socketErrorText, type CheckResult, type CheckTarget, type Probe, type WeightRequest } from "../result.ts";

type AgentCheck = Extract<CheckConfig, { type: "agent" }>;

const MAX_LINE = 1024;

export function agentProbe(check: AgentCheck, target: CheckTarget): Probe {
  return (deadline) => new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    let text = "";
    let finished = false;
    const done = (r: CheckResult) => {
      if (finished) return;
      finished = true;
      deadline.onExpire(null);
      socket.destroy();
      resolve(r);
    };
    deadline.onExpire(() => done(fail(`agent timed out ${deadline.reason}${text ? "" : " waiting for its answer"}`)));
    socket.once("connect", () => { if (check.send !== null) socket.write(check.send); });
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      text += chunk;
      const nl = text.indexOf("\n");
      if (nl >= 0) done(parseAgentReply(text.slice(0, nl)));
      else if (text.length > MAX_LINE) done(fail("agent answer longer than 1 KiB without a newline"));
    });
    socket.once("end", () => done(text.trim() ? parseAgentReply(text) : fail("agent closed without an answer")));
    socket.once("error", (e) => done(fail(`agent ${text ? "" : "connect "}${socketErrorText(e)}`)));
  });
}

/** One agent line as a result. Unknown words are ignored, as HAProxy does. */
export function parseAgentReply(line: string): CheckResult {
  const hash = line.indexOf("#");
  const description = hash >= 0 ? line.slice(hash + 1).trim() : "";
  const words = (hash >= 0 ? line.slice(0, hash) : line).trim().toLowerCase().split(/[\s,]+/).filter(Boolean);
  let down: string | null = null;
  let weight: WeightRequest | undefined;
  for (const word of words) {
    if (word === "down" || word === "failed" || word === "stopped" || word === "maint") down = word;
    else if (word === "up") down = null;
    else if (word === "drain") weight = { absolute: 0 };
    else if (word === "ready") weight = "configured";
    else if (/^\d+%$/.test(word)) weight = { percent: Number(word.slice(0, -1)) };
    else if (/^weight:\d+$/.test(word)) weight = { absolute: Math.min(256, Number(word.slice(7))) };
  }
  const said = words.join(" ") || "(empty)";
  const detail = `agent says ${said}${description ? ` (${description})` : ""}`;
  return down !== null ? fail(detail, weight) : pass(detail, weight);
}
