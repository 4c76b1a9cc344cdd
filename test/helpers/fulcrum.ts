// Starts the real `fulcrum` CLI as a child process, on the runtime running the tests.
import { runtime, type Child } from "../../src/runtime/index.ts";
import { getJson } from "./http.ts";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
let counter = 0;

export interface Running {
  child: Child;
  url: string;
  output: () => string;
  stop(): Promise<number>;
}

export interface Exited {
  code: number;
  stdout: string;
  stderr: string;
}

/** The argv that runs the fulcrum CLI here: the built binary if FULCRUM_BIN says so, else the source. */
export function fulcrumCommand(args: string[]): string[] {
  const bin = runtime.env("FULCRUM_BIN");
  return bin ? [bin, ...args] : [...runtime.scriptCommand(MAIN), ...args];
}

export async function writeTemp(text: string, ext = "yaml"): Promise<string> {
  const path = `/tmp/fulcrum-test-${runtime.name}-${Date.now()}-${counter++}.${ext}`;
  await runtime.writeTextFile(path, text);
  return path;
}

async function collect(stream: ReadableStream<Uint8Array>, sink: (s: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink(decoder.decode(chunk, { stream: true }));
}

/** Runs the CLI to completion (bounded by timeoutMs) and returns its exit code and output. */
export async function runCli(args: string[], timeoutMs = 20_000): Promise<Exited> {
  const child = runtime.spawn(fulcrumCommand(args));
  let stdout = "", stderr = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await Promise.all([collect(child.stdout, (s) => stdout += s), collect(child.stderr, (s) => stderr += s)]);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Starts `fulcrum run` on a config and waits until every listener is up. */
export async function startFulcrum(configText: string, listeners = 1, args: string[] = []): Promise<Running> {
  const file = await writeTemp(configText);
  return startCli(["run", "--config", file, ...args], listeners);
}

export interface StartOptions {
  /** Run this executable instead of the CLI source (the single binary). */
  bin?: string;
  cwd?: string;
  /** Variables added to the test's environment. */
  env?: Record<string, string>;
}

export async function startCli(args: string[], listeners = 1, options: StartOptions = {}): Promise<Running> {
  const argv = options.bin ? [options.bin, ...args] : fulcrumCommand(args);
  const child = runtime.spawn(argv, { cwd: options.cwd, env: options.env });
  let out = "";
  const urls: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    // Not up in time: end it, so a failed start leaves no process behind.
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`fulcrum did not start:\n${out}`)); }, 15_000);
    const onText = (s: string) => {
      out += s;
      for (const m of s.matchAll(/listening on ((?:https?|tcp|udp):\/\/\S+)/g)) urls.push(m[1]);
      if (urls.length >= listeners) { clearTimeout(timer); resolve(); }
    };
    collect(child.stdout, onText).catch(() => {});
    collect(child.stderr, (s) => out += s).catch(() => {});
    child.exited.then((code) => { clearTimeout(timer); if (urls.length < listeners) reject(new Error(`fulcrum exited ${code}:\n${out}`)); });
  });
  await ready;
  return {
    child,
    url: urls[0],
    output: () => out,
    async stop() {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      const code = await child.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The pids of the processes that move Fulcrum's traffic: with workers, each worker's (GET
 * /api/workers on the admin API at `adminUrl`), else the one process's. */
export async function servingPids(running: Running, adminUrl: string): Promise<number[]> {
  const { workers } = await getJson<{ workers: { pid: number }[] | null }>(`${adminUrl}/api/workers`);
  return workers ? workers.map((w) => w.pid) : [running.child.pid];
}
