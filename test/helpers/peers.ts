// Which real peers a test needs, as the value of node:test's `skip` option:
//
//   const lab = needs("root", "ip", "ping");
//   before(async () => { if (lab) return; ... });      // hooks run even when every test skips
//   test("vrrp: ...", { skip: lab }, async () => { ... });
//
// false when every peer is present, else the reason (a string), which both runtimes take as a
// skip and count: Bun's "N skip", Deno's "N ignored". Neither prints the reason, so needs()
// prints it once per call, under the file it is in. Put it on test(), not describe(): Bun drops
// the tests of a skipped describe (options or describe.skip) without counting them. t.skip()
// inside a test does not work either: Deno counts such a test as passed.
//
// Under CI=true a missing peer is a failure: needs() returns false, so the tests run (and fail on
// the missing command), and registers a failing test carrying the reason.
// The packages behind the commands, and installing them, are scripts/provision.ts.
import { test } from "node:test";
import process from "node:process";
import { findCommand, isRoot, packageOf, type PeerCommand } from "../../scripts/provision.ts";

/** A command from the peer table, or "root": network namespaces, raw sockets, capabilities. */
export type Need = PeerCommand | "root";

/** The reason the tests needing these cannot run here, or null when they can. */
export function missing(...what: Need[]): string | null {
  const absent: string[] = [];
  for (const w of what) {
    if (w === "root") { if (!isRoot()) absent.push("root (network namespaces, raw sockets)"); }
    else if (findCommand(w) === null) absent.push(`${w} (Debian package ${packageOf(w).pkg}, not on PATH${packageOf(w).dirs ? ` nor in ${packageOf(w).dirs!.join(", ")}` : ""})`);
  }
  return absent.length ? `needs ${absent.join(", ")}` : null;
}

export function needs(...what: Need[]): string | false {
  const reason = missing(...what);
  if (reason === null) return false;
  if (process.env.CI === "true") {
    test(`peers: ${reason}: CI=true requires every peer`, () => { throw new Error(`${reason}; npm test as root installs the packages`); });
    return false;
  }
  console.error(`skip: ${reason}; npm test as root installs the packages`);
  return reason;
}
