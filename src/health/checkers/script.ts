// Script check (keepalived MISC_CHECK): run a command; exit 0 is up. With `dynamic` (misc_dynamic)
// the exit code also sets the weight: 0 up as it is, 1 down, 2..255 up with weight code - 2.
// The command learns which server it checks from FULCRUM_SERVER_HOST and FULCRUM_SERVER_PORT.
import type { HostPort } from "../../config/address.ts";
import { firstLine, startScript } from "../../core/script.ts";
import type { CheckConfig } from "../config.ts";
import { fail, pass, type Probe } from "../result.ts";

type ScriptCheck = Extract<CheckConfig, { type: "script" }>;

export function scriptProbe(check: ScriptCheck, address: HostPort): Probe {
  const env = { FULCRUM_SERVER_HOST: address.host, FULCRUM_SERVER_PORT: String(address.port) };
  const name = check.command[0] === "/bin/sh" && check.command[1] === "-c" ? "script" : `script ${check.command[0]}`;
  return (deadline) => new Promise((resolve) => {
    // The monitor's deadline is the timeout: on expiry the script's process group is killed.
    const running = startScript(check.command, { env });
    deadline.onExpire(() => {
      running.kill();
      resolve(fail(`${name} timed out ${deadline.reason} (killed)`));
    });
    running.result.then(({ code: exit, startError, stdout, stderr }) => {
      deadline.onExpire(null);
      if (deadline.expired) return;
      if (startError !== null || exit === null) return resolve(fail(`${name} could not start: ${startError}`));
      const code = exit;
      const said = firstLine(stderr) || firstLine(stdout);
      const detail = `${name} exit ${code}${said ? `: ${said}` : ""}`;
      if (code === 0) resolve(pass(detail));
      else if (check.dynamic && code >= 2 && code <= 255) resolve(pass(detail, { absolute: Math.min(code - 2, 256) }));
      else if (code === 127 && /setsid|No such file|not found/.test(said)) resolve(fail(`${name} could not start: ${said}`));
      else resolve(fail(detail));
    });
  });
}
