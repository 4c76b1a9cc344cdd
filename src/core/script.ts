// The one way Fulcrum runs an operator's command: health `script` checks, VRRP track scripts and
// notify hooks. The command leads a process group of its own (setsid), so a timeout or kill()
// ends what it started too (a `sleep` under `sh -c` would otherwise outlive it and hold its pipes
// open). Both pipes are read to their end, so a chatty command never blocks on a full pipe, and
// only their first `outputLimit` characters are kept.
import process from "node:process";
import { type Child, runtime } from "../runtime/index.ts";
import { type TimerEntry, timers } from "./timer.ts";

export interface ScriptOptions {
  /** Added to the process's environment. */
  env?: Record<string, string>;
  /** Killed after this long (0 or absent: only by kill()). */
  timeoutMs?: number;
  /** Characters of stdout and of stderr kept; 4096 by default. */
  outputLimit?: number;
}

export interface ScriptResult {
  /** Exit code (128 + signal number for a signal death); null when it did not start. */
  code: number | null;
  /** Why it did not start, or null. */
  startError: string | null;
  /** It was killed: its timeout ran out, or kill() was called. */
  killed: boolean;
  stdout: string;
  stderr: string;
}

export interface RunningScript {
  /** Process id, also its process group's (0 when it did not start). */
  readonly pid: number;
  /** Kills its whole process group with SIGKILL. */
  kill(): void;
  readonly result: Promise<ScriptResult>;
}

/** Starts `argv` (argv[0] is looked up on PATH) in a process group of its own. */
export function startScript(argv: string[], options: ScriptOptions = {}): RunningScript {
  const limit = options.outputLimit ?? 4096;
  let child: Child;
  try {
    // -w: should setsid have to fork, it still waits and passes the exit code on.
    child = runtime.spawn(["setsid", "-w", ...argv], { env: options.env });
  } catch (e) {
    const result = { code: null, startError: (e as Error).message, killed: false, stdout: "", stderr: "" };
    return { pid: 0, kill() {}, result: Promise.resolve(result) };
  }
  let killed = false;
  let timeout: TimerEntry | null = null;
  const kill = () => {
    if (killed) return;
    killed = true;
    timers.cancel(timeout);
    try { process.kill(-child.pid, "SIGKILL"); } catch { child.kill("SIGKILL"); }
  };
  if (options.timeoutMs) timeout = timers.at(timers.now() + options.timeoutMs, kill);
  const result = Promise.all([firstChars(child.stdout, limit), firstChars(child.stderr, limit), child.exited])
    .then(([stdout, stderr, code]): ScriptResult => {
      timers.cancel(timeout);
      return { code, startError: null, killed, stdout, stderr };
    });
  return { pid: child.pid, kill, result };
}

/** Runs `argv` to its end (or its timeout). */
export function runScript(argv: string[], options: ScriptOptions = {}): Promise<ScriptResult> {
  return startScript(argv, options).result;
}

/** Reads a stream to its end, keeping the first `limit` characters. */
async function firstChars(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  try {
    for await (const chunk of stream) if (text.length < limit) text += decoder.decode(chunk, { stream: true });
  } catch { /* the child was killed mid-write */ }
  return text.length > limit ? text.slice(0, limit) : text;
}

/** The first line of a command's output, trimmed to `max` characters: what a log line shows. */
export function firstLine(text: string, max = 200): string {
  return text.trim().split("\n")[0]?.slice(0, max) ?? "";
}
