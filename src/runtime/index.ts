// Picks the host runtime's adapter. The Bun adapter is only imported on Bun (it imports bun:ffi
// and embeds the WASM file), and `bun build --compile` still bundles it from this literal import.
import type { Runtime } from "./types.ts";

const adapter: { runtime: Runtime } = "Bun" in globalThis
  ? await import("./bun.ts")
  : await import("./deno.ts");

export const runtime: Runtime = adapter.runtime;
export { ListenError, UpstreamError } from "./types.ts";
export type { Child, HttpServer, Runtime, TcpSocket } from "./types.ts";
