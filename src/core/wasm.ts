// Loads the data-plane module through the runtime adapter and builds a DataPlane on it.
import { runtime } from "../runtime/index.ts";
import { DataPlane, type DataPlaneOptions } from "./dataplane.ts";

let bytes: Uint8Array | null = null;
let compiled: WebAssembly.Module | null = null;

export async function wasmBytes(): Promise<Uint8Array> {
  bytes ??= await runtime.wasmBytes();
  return bytes;
}

export async function createDataPlane(options: Omit<DataPlaneOptions, "wasm"> = {}): Promise<DataPlane> {
  if (options.impl === "ts") return new DataPlane(options);
  // Compiled once: every generation (each reload) instantiates the same module. Compiling it again
  // cost Bun tens of ms of CPU per reload.
  compiled ??= new WebAssembly.Module(await wasmBytes() as BufferSource);
  return new DataPlane({ ...options, wasm: compiled });
}
