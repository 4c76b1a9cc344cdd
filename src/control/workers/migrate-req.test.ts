import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enableMigrateReq } from "./migrate-req.ts";

test("tcp_migrate_req: 0 is turned on and said; 1 is left alone; no such setting says nothing", () => {
  const dir = mkdtempSync(join(tmpdir(), "migrate-req-"));
  try {
    const file = join(dir, "tcp_migrate_req");
    writeFileSync(file, "0\n");
    assert.match(enableMigrateReq(file) ?? "", /set net\.ipv4\.tcp_migrate_req=1 \(was 0\)/);
    assert.equal(readFileSync(file, "utf8").trim(), "1");
    assert.equal(enableMigrateReq(file), null, "on already");
    assert.equal(enableMigrateReq(join(dir, "absent")), null, "an older kernel");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
