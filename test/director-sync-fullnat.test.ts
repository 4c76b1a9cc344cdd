// Connection sync between two directors in FULLNAT mode, in the lab of
// test/helpers/director-sync-lab.ts built with kind "fullnat": two `fulcrum run` directors, Fulcrum
// to Fulcrum VRRP holding the VIP outside and the local addresses inside (a sync group, so they
// move together), three nginx whose only route is to the local addresses' subnet. A synced entry
// carries the connection's local address and port, so the new master sends the client's segments
// on from the same source the server knows, and takes the server's replies to it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { complete, SIZE, SyncLab } from "./helpers/director-sync-lab.ts";
import { needs } from "./helpers/peers.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl");
/** Downloads in flight at the failover (each a connection through the VIP). */
const DOWNLOADS = 6;
let lab: SyncLab;

before(async () => {
  if (noLab) return;
  lab = await SyncLab.create("dsyncfn", 77, "fullnat");
});

after(async () => {
  await lab?.destroy();
});

test("director sync, fullnat: downloads through the VIP survive SIGKILL of the master with director_sync (all bytes; the servers saw only the local addresses, which moved with the VIP); without it every one breaks", { skip: noLab }, async () => {
  const client = lab.lab.node("client").ipv4;
  const noRoute = await lab.lab.exec("s1", ["ip", "route", "get", client]);
  assert.notEqual(noRoute.code, 0, `s1 has no route to the client: ${noRoute.stdout}`);

  const withSync = await lab.failover("multicast", DOWNLOADS, (c) => c.sync_records_imported >= DOWNLOADS);
  const broken = withSync.outcomes.filter((o) => !complete(o));
  assert.deepEqual(broken, [], `with sync every download finished with all ${SIZE} bytes: ${JSON.stringify(withSync.outcomes)}`);
  assert.ok(withSync.after.sync_records_imported >= DOWNLOADS, `d2 applied the master's entries: ${withSync.after.sync_records_imported}`);
  assert.equal(withSync.after.sync_records_rejected_no_local_address, 0, "d2 knew every synced local address");
  assert.equal(withSync.after.not_syn, 0, "d2 had an entry for every segment after the failover");
  assert.ok(withSync.after.forward_in > 0 && withSync.after.forward_out > 0, "d2 forwarded both ways after the failover");
  for (const a of lab.localAddresses) assert.ok(withSync.addresses.includes(`eth0 ${a}`), `the new master held local address ${a} on eth0: ${withSync.addresses.join(", ")}`);
  const sources = lab.sources();
  assert.equal(sources.length, DOWNLOADS, `each server logged its whole downloads: ${sources.join(", ")}`);
  for (const s of sources) assert.ok(lab.localAddresses.includes(s), `the server saw a local address, not the client: ${s}`);

  const noSync = await lab.failover("off", DOWNLOADS, () => true);
  const finished = noSync.outcomes.filter(complete);
  assert.deepEqual(finished, [], `without sync no download finishes: ${JSON.stringify(noSync.outcomes)}`);
  for (const o of noSync.outcomes) assert.notEqual(o.code, 0, `curl gave up: ${JSON.stringify(o)}`);
  assert.equal(noSync.after.sync_received, undefined, "no sync daemon ran");
  console.log(`director sync, fullnat: ${DOWNLOADS} downloads in flight at SIGKILL of the master: broken with sync ${broken.length}, `
    + `without ${DOWNLOADS - finished.length} (new master without sync: not_syn ${noSync.after.not_syn}, no_service ${noSync.after.no_service})`);
});
