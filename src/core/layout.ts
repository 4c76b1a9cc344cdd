// The data-plane layout, from the one file the WASM module is built with.
export * from "../../wasm/assembly/layout.ts";
