// libc through FFI works on both runtimes.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { getpid, interfaceIndex } from "../src/ffi/libc.ts";

test("ffi: getpid matches the process id", () => {
  assert.equal(getpid(), process.pid);
});

test("ffi: if_nametoindex finds loopback and reports a missing interface as null", () => {
  const lo = interfaceIndex("lo");
  assert.ok(lo !== null && lo > 0);
  assert.equal(interfaceIndex("fulcrum-none0"), null);
});
