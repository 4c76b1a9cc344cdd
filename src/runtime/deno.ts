// Runtime adapter for Deno.
import type { Child, FfiSymbol, FfiLibrary, Runtime, ServeOptions } from "./types.ts";

declare const Deno: any; // deno-lint-ignore no-explicit-any

const FFI_TYPES: Record<string, string> = {
  i32: "i32", u32: "u32", i64: "i64", u64: "u64", buffer: "buffer", void: "void",
};
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export const runtime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  args: [...Deno.args],
  scriptCommand: (script) => [Deno.execPath(), "run", "-A", "--no-check", script],
  env: (name) => Deno.env.get(name),
  exit: (code) => Deno.exit(code),
  cwd: () => Deno.cwd(),
  readTextFile: (path) => Deno.readTextFile(path),
  writeTextFile: (path, text) => Deno.writeTextFile(path, text),
  async exists(path) {
    try { await Deno.stat(path); return true; } catch { return false; }
  },
  wasmBytes: () => Deno.readFile(new URL("../../build/fulcrum.wasm", import.meta.url)),
  serveHttp(o: ServeOptions) {
    return new Promise((resolve) => {
      const server = Deno.serve({
        hostname: o.hostname,
        port: o.port,
        onListen: (addr: { hostname: string; port: number }) =>
          resolve({ hostname: addr.hostname, port: addr.port, stop: () => server.shutdown() }),
      }, (req: Request, info: { remoteAddr: { hostname: string; port: number } }) =>
        o.fetch(req, { address: info.remoteAddr.hostname, port: info.remoteAddr.port }));
    });
  },
  onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
  spawn(cmd, options = {}): Child {
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: options.env,
      cwd: options.cwd,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    return {
      pid: child.pid,
      exited: child.status.then((s: { code: number; signal: string | null }) =>
        s.signal ? 128 + (SIGNALS[s.signal] ?? 0) : s.code),
      stdout: child.stdout,
      stderr: child.stderr,
      kill: (signal = "SIGTERM") => { try { child.kill(signal); } catch { /* already gone */ } },
    };
  },
  dlopen<S extends Record<string, FfiSymbol>>(path: string, symbols: S): FfiLibrary<S> {
    const mapped: Record<string, { parameters: string[]; result: string }> = {};
    for (const [name, s] of Object.entries(symbols)) {
      mapped[name] = { parameters: s.args.map((t) => FFI_TYPES[t]), result: FFI_TYPES[s.returns] };
    }
    return Deno.dlopen(path, mapped).symbols as FfiLibrary<S>;
  },
};

export const isCompiled = false;
