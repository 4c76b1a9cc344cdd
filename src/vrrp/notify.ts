// Notify hooks as keepalived runs them: notify_master / notify_backup / notify_fault /
// notify_stop as given, then `notify` with four arguments: INSTANCE|GROUP, name, state,
// priority. A hook that fails or hangs is logged and never affects the election.
import { runScript } from "../core/script.ts";
import type { NotifyCommands } from "./config.ts";

export type NotifyState = "MASTER" | "BACKUP" | "FAULT" | "STOP";

/** A hook still running after this long is killed. */
const HOOK_TIMEOUT_MS = 30_000;

export function notify(
  commands: NotifyCommands, kind: "INSTANCE" | "GROUP", name: string, state: NotifyState, priority: number,
  log: (line: string) => void,
): Promise<void> {
  const specific = { MASTER: commands.master, BACKUP: commands.backup, FAULT: commands.fault, STOP: commands.stop }[state];
  const runs: Promise<void>[] = [];
  if (specific !== null) runs.push(runHook(specific, [], log));
  // `sh -c 'CMD "$@"' sh ARGS…` appends the arguments to the configured command line.
  if (commands.any !== null) runs.push(runHook(`${commands.any} "$@"`, [kind, name, state, String(priority)], log));
  return Promise.all(runs).then(() => {});
}

async function runHook(command: string, args: string[], log: (line: string) => void): Promise<void> {
  const shown = args.length > 0 ? `${command.replace(/ "\$@"$/, "")} ${args.join(" ")}` : command;
  const { code, startError, stderr } = await runScript(["/bin/sh", "-c", command, "sh", ...args], { timeoutMs: HOOK_TIMEOUT_MS, outputLimit: 500 });
  if (startError !== null) log(`vrrp: notify "${shown}" could not start: ${startError}`);
  else if (code !== 0) log(`vrrp: notify "${shown}" failed with exit ${code}${stderr.trim() ? `: ${stderr.trim().slice(0, 200)}` : ""}`);
}
