// The script runner with real processes: exit codes, bounded output, and a timeout that kills
// the command's whole process group.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScript } from "./script.ts";

test("script: exit code, environment and output are reported; output beyond the limit is dropped", async () => {
  const r = await runScript(["/bin/sh", "-c", 'echo "$GREETING"; head -c 100000 /dev/zero | tr "\\0" x >&2; exit 3'],
    { env: { GREETING: "hello" }, outputLimit: 1000 });
  assert.equal(r.code, 3);
  assert.equal(r.killed, false);
  assert.equal(r.startError, null);
  assert.equal(r.stdout, "hello\n");
  assert.equal(r.stderr, "x".repeat(1000), "the whole stderr was read (the command finished), 1000 characters kept");
});

test("script: a command that does not exist exits 127 with setsid's reason", async () => {
  const r = await runScript(["/nonexistent/fulcrum-test-command"]);
  assert.equal(r.code, 127);
  assert.match(r.stderr, /No such file/);
});

test("script: a timeout kills the command and what it started", async () => {
  // The shell starts a background job that would leave a file behind a second later, and waits.
  const dir = await mkdtemp(join(tmpdir(), "fulcrum-script-"));
  const flag = join(dir, "survived");
  try {
    const r = await runScript(["/bin/sh", "-c", `(sleep 1; touch ${flag}) & wait`], { timeoutMs: 300 });
    assert.equal(r.killed, true);
    assert.equal(r.code, 128 + 9, "SIGKILL");
    // Past the background job's second (with room for a loaded machine): no file, so it died too.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await assert.rejects(stat(flag), "the background job was killed with its group");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
