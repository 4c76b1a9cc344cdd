// Runtime adapter for Deno.
import http from "node:http";
import { Readable } from "node:stream";
import { UpstreamError, type Child, type FfiSymbol, type FfiLibrary, type Runtime, type ServeOptions } from "./types.ts";

declare const Deno: any; // deno-lint-ignore no-explicit-any

const FFI_TYPES: Record<string, string> = {
  i32: "i32", u32: "u32", i64: "i64", u64: "u64", buffer: "buffer", void: "void",
};
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// Deno's fetch() drops a caller's Host header and decodes compressed bodies, so upstream
// requests go through node:http, which does neither (and measured faster here).
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function upstream(r: Parameters<Runtime["upstream"]>[0]): ReturnType<Runtime["upstream"]> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = {};
    r.headers.forEach((v, k) => { headers[k] = v; });
    const req = http.request({ host: r.host, port: r.port, method: r.method, path: r.path, headers, agent });
    const fail = (e: Error & { code?: string }) =>
      reject(new UpstreamError(e.code === "ECONNREFUSED" ? "refused" : "failed", e.message));
    req.on("error", fail);
    r.signal.addEventListener("abort", () => req.destroy(new Error("aborted")), { once: true });
    req.on("response", (res) => {
      const out = new Headers();
      for (let i = 0; i < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
      const bodyless = r.method === "HEAD" || res.statusCode === 204 || res.statusCode === 304;
      if (bodyless) res.resume();
      resolve({
        status: res.statusCode ?? 502,
        headers: out,
        body: bodyless ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>),
      });
    });
    if (!r.body) { req.end(); return; }
    (async () => {
      const reader = r.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!req.write(value)) await new Promise((ok) => req.once("drain", ok));
      }
      req.end();
    })().catch((e) => req.destroy(e));
  });
}

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
  upstream,
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
