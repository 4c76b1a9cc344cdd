// Script check (keepalived MISC_CHECK): run a command; exit 0 is up. With `dynamic` (misc_dynamic)
// the exit code also sets the weight: 0 up as it is, 1 down, 2..255 up with weight code - 2.
// The command learns which server it checks from FULCRUM_SERVER_HOST and FULCRUM_SERVER_PORT.
import process from "node:process";
import { runtime, type Child } from "../../runtime/index.ts";
import type { HostPort } from "../../config/address.ts";
import type { CheckConfig } from "../config.ts";
import { fail, pass, type Probe } from "../result.ts";

type ScriptCheck = Extract<CheckConfig, { type: "script" }>;

const MAX_OUTPUT = 4096;

export function scriptProbe(check: ScriptCheck, address: HostPort): Probe {
  const env = { FULCRUM_SERVER_HOST: address.host, FULCRUM_SERVER_PORT: String(address.port) };
  const name = check.command[0] === "/bin/sh" && check.command[1] === "-c" ? "script" : `script ${check.command[0]}`;
  // setsid: the script leads a process group of its own, so a timeout kills what it started too
  // (a `sleep` under `sh -c` would otherwise outlive it and hold its pipes open).
  const argv = ["setsid", ...check.command];
  return (deadline) => new Promise((resolve) => {
    let child: Child;
    try {
      child = runtime.spawn(argv, { env });
    } catch (e) {
      resolve(fail(`${name} could not start: ${(e as Error).message}`));
      return;
    }
    deadline.onExpire(() => {
      try { process.kill(-child.pid, "SIGKILL"); } catch { child.kill("SIGKILL"); }
      resolve(fail(`${name} timed out ${deadline.reason} (killed)`));
    });
    Promise.all([firstBytes(child.stdout), firstBytes(child.stderr), child.exited]).then(([out, err, code]) => {
      deadline.onExpire(null);
      if (deadline.expired) return;
      const said = firstLine(err) || firstLine(out);
      const detail = `${name} exit ${code}${said ? `: ${said}` : ""}`;
      if (code === 0) resolve(pass(detail));
      else if (check.dynamic && code >= 2 && code <= 255) resolve(pass(detail, { absolute: Math.min(code - 2, 256) }));
      else if (code === 127 && /setsid|No such file|not found/.test(said)) resolve(fail(`${name} could not start: ${said}`));
      else resolve(fail(detail));
    });
  });
}

/** Reads a stream to its end (so the child never blocks on a full pipe), keeping the first bytes. */
async function firstBytes(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) if (text.length < MAX_OUTPUT) text += decoder.decode(chunk, { stream: true });
  } catch { /* the child was killed mid-write */ }
  return text;
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.slice(0, 200) ?? "";
}
