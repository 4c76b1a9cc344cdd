// VRRP from the command line, end to end: `fulcrum check` accepts a vrrp-only file and `fulcrum run`
// refuses a missing interface. The pure parts are tested beside them: src/vrrp/packet.test.ts
// (codec), machine.test.ts (state machine), config.test.ts, ip.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli, writeTemp } from "./helpers/fulcrum.ts";

const MINIMAL = `vrrp:
  instances:
    - name: VI_1
      interface: eth0
      virtual_router_id: 51
      virtual_ipaddress: [10.200.1.100/24]
`;

test("vrrp: fulcrum check accepts a vrrp-only file; fulcrum run names a missing interface and exits 1", async () => {
  const file = await writeTemp(MINIMAL.replace("interface: eth0", "interface: fvr-none0"));
  const check = await runCli(["check", "--config", file]);
  assert.equal(check.code, 0, check.stderr);
  const run = await runCli(["run", "--config", file]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /fulcrum: cannot start: VI_1: interface fvr-none0 does not exist/);
});
