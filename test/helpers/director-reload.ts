// A download through a director's VIP while the director reloads: what the nat, tun and fullnat
// labs each check when the virtual servers are unchanged (the table, ports and steering carried
// over). The server sends /big (1 MiB) slowly enough that the reload falls inside it.
import assert from "node:assert/strict";
import type { Lab } from "./netns.ts";
import type { Peer } from "./vrrp.ts";

/** curl of `url` from the lab's client while `director` takes SIGHUP: the download finishes whole
 * in one connection, the reload happened while it was in flight, and the new generation says it
 * carried `carried` virtual servers over. */
export async function downloadAcrossReload(lab: Lab, director: Peer, url: string, carried: number): Promise<void> {
  const download = lab.spawn("client", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "-m", "30", url]);
  let result = "";
  const reader = (async () => { for await (const c of download.stdout) result += new TextDecoder().decode(c); })();
  let downloadEnded = 0;
  const ended = download.exited.then((code) => { downloadEnded = Date.now(); return code; });
  director.child.kill("SIGHUP");
  await director.waitForLine(/generation 2 serving/, 15_000);
  const reloadedAt = Date.now();
  assert.equal(await ended, 0, "the download through the director finished");
  await reader;
  assert.equal(result, `200 ${1 << 20}`, "all of it, in one connection");
  assert.ok(reloadedAt < downloadEnded, "the reload happened while the download was in flight");
  await director.waitForLine(new RegExp(`connection table, ports and steering carried over \\(${carried} virtual servers\\)`), 1000);
}
