// Picks the host runtime's adapter. The Bun adapter is only imported on Bun (it imports bun:ffi
// and embeds the WASM file), and `bun build --compile` still bundles it from this literal import.
import type { Runtime } from "./types.ts";

const adapter: { runtime: Runtime; isCompiled: boolean } = "Bun" in globalThis
  ? await import("./bun.ts")
  : await import("./deno.ts");

export const runtime: Runtime = adapter.runtime;
export const isCompiled: boolean = adapter.isCompiled;
export { ListenError, UpstreamError } from "./types.ts";
export type { Child, HttpServer, PeerInfo, Runtime, TcpSocket, UpstreamResponse } from "./types.ts";
