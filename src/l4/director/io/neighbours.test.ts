// The dr director's IPv6 neighbour table: `ip -6 -j neigh` output read into address -> MAC (the
// labs in test/director-v6.test.ts read it from the kernel).
import { test } from "node:test";
import assert from "node:assert/strict";
import { neighbourKey, parseNeighbours6 } from "./neighbours.ts";

test("parseNeighbours6 keeps entries with a link-layer address that are not failed, under formatIP's spelling", () => {
  const text = JSON.stringify([
    { dst: "fd00:200:64:0::3", dev: "eth0", lladdr: "d2:c5:fe:4b:0e:37", state: ["REACHABLE"] },
    { dst: "fd00:200:64::4", dev: "eth0", lladdr: "c6:be:d3:40:48:cc", state: ["STALE"] },
    { dst: "fd00:200:64::5", dev: "eth0", state: ["INCOMPLETE"] },
    { dst: "fd00:200:64::6", dev: "eth0", lladdr: "42:af:19:be:60:de", state: ["FAILED"] },
    { dst: "FD00:200:64::7", dev: "eth0", lladdr: "42:af:19:be:60:df", state: ["PERMANENT"] },
  ]);
  assert.deepEqual(parseNeighbours6(text), [
    ["fd00:200:64::3", "d2:c5:fe:4b:0e:37"],
    ["fd00:200:64::4", "c6:be:d3:40:48:cc"],
    ["fd00:200:64::7", "42:af:19:be:60:df"],
  ]);
  assert.equal(neighbourKey("FD00:200:64:0:0::7"), "fd00:200:64::7");
  assert.equal(neighbourKey("10.0.0.1"), "10.0.0.1");
});

test("parseNeighbours6 reads broken or empty output as no entries", () => {
  assert.deepEqual(parseNeighbours6(""), []);
  assert.deepEqual(parseNeighbours6("{not json"), []);
  assert.deepEqual(parseNeighbours6('{"dst": "fd00::1"}'), []);
  assert.deepEqual(parseNeighbours6('[null, 3, {"dst": 1, "lladdr": "x"}]'), []);
});
