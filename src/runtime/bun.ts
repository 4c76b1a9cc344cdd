// Runtime adapter for Bun.
import { dlopen as bunDlopen } from "bun:ffi";
import wasmPath from "../../build/fulcrum.wasm" with { type: "file" };
import { UpstreamError, type Child, type FfiSymbol, type FfiLibrary, type Runtime, type ServeOptions } from "./types.ts";

declare const Bun: any; // deno-lint-ignore no-explicit-any

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// In a compiled binary argv[1] is the embedded entry under /$bunfs; under `bun script.ts` it is
// the script. Either way the arguments start at argv[2].
const argv: string[] = Bun.argv;
const compiled = argv.length > 1 && argv[1].startsWith("/$bunfs");

export const runtime: Runtime = {
  name: "bun",
  version: Bun.version,
  args: argv.slice(2),
  scriptCommand: (script) => [process.execPath, script],
  env: (name) => process.env[name],
  exit: (code) => process.exit(code),
  cwd: () => process.cwd(),
  readTextFile: (path) => Bun.file(path).text(),
  writeTextFile: async (path, text) => { await Bun.write(path, text); },
  exists: (path) => Bun.file(path).exists(),
  wasmBytes: () => Bun.file(wasmPath).bytes(),
  async serveHttp(o: ServeOptions) {
    const server = Bun.serve({
      hostname: o.hostname,
      port: o.port,
      idleTimeout: o.idleTimeout ?? 120,
      fetch(req: Request, srv: any) {
        const ip = srv.requestIP(req);
        return o.fetch(req, { address: ip?.address ?? "", port: ip?.port ?? 0 });
      },
    });
    return {
      hostname: server.hostname,
      port: server.port,
      stop: () => server.stop(true),
    };
  },
  async upstream(r) {
    try {
      const res = await fetch(`http://${r.host.includes(":") ? `[${r.host}]` : r.host}:${r.port}${r.path}`, {
        method: r.method,
        headers: r.headers,
        body: r.body,
        signal: r.signal,
        redirect: "manual",
        decompress: false,
        duplex: "half",
      } as RequestInit);
      return { status: res.status, headers: res.headers, body: res.body };
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new UpstreamError(code === "ECONNREFUSED" || code === "ConnectionRefused" ? "refused" : "failed", String((e as Error).message ?? e));
    }
  },
  onSignal: (signal, handler) => { process.on(signal, handler); },
  spawn(cmd, options = {}): Child {
    const proc = Bun.spawn(cmd, {
      env: options.env ? { ...process.env, ...options.env } : undefined,
      cwd: options.cwd,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    return {
      pid: proc.pid,
      exited: proc.exited.then((code: number | null) =>
        code ?? 128 + (SIGNALS[proc.signalCode ?? ""] ?? 0)),
      stdout: proc.stdout,
      stderr: proc.stderr,
      kill: (signal = "SIGTERM") => proc.kill(signal),
    };
  },
  dlopen<S extends Record<string, FfiSymbol>>(path: string, symbols: S): FfiLibrary<S> {
    const mapped: Record<string, { args: string[]; returns: string }> = {};
    for (const [name, s] of Object.entries(symbols)) mapped[name] = { args: s.args, returns: s.returns };
    return bunDlopen(path, mapped).symbols as FfiLibrary<S>;
  },
};

export const isCompiled = compiled;
