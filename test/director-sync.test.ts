// Connection sync between two directors (LVS's sync daemon), NAT mode, in the lab of
// test/helpers/director-sync-lab.ts (keepalived's LVS-NAT layout: two `fulcrum run` directors
// with Fulcrum to Fulcrum VRRP holding the VIP and the servers' gateway, three nginx behind).
// Downloads through the VIP (curl --limit-rate) survive SIGKILL of the master with director_sync;
// without it they break: the new master has no entry for them, so it drops the clients' segments
// (not_syn: no SYN, and NAT cannot adopt a flow) and the servers' replies (no_service).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { complete, type Outcome, SIZE, SyncLab } from "./helpers/director-sync-lab.ts";
import { sleep, waitFor } from "./helpers/netns.ts";
import { needs } from "./helpers/peers.ts";

const noLab = needs("root", "ip", "tc", "nginx", "curl");
/** Downloads in flight at the failover (each a connection through the VIP). */
const DOWNLOADS = 6;
let lab: SyncLab;

before(async () => {
  if (noLab) return;
  lab = await SyncLab.create("dsync", 73);
});

after(async () => {
  await lab?.destroy();
});

/** Datagrams to d2's sync port from a real server (not the other director): too short, and
 * another version. */
async function foreignDatagrams(): Promise<Promise<Outcome>[]> {
  const to = `/dev/udp/${lab.lab.node("d2").ipv4}/8848`;
  for (const payload of ["hi", "x".repeat(100)]) {
    const r = await lab.lab.exec("s1", ["bash", "-c", `printf '%s' '${payload}' > ${to}`]);
    assert.equal(r.code, 0, r.stderr);
  }
  return [];
}

test("director sync: downloads through the VIP survive SIGKILL of the master with director_sync (all bytes, the new master applied the synced entries; foreign datagrams were refused and counted); without it every one breaks (the new master drops their segments as not_syn)", { skip: noLab }, async () => {
  const withSync = await lab.failover("multicast", DOWNLOADS, (c) => c.sync_records_imported >= DOWNLOADS, foreignDatagrams);
  const broken = withSync.outcomes.filter((o) => !complete(o));
  assert.deepEqual(broken, [], `with sync every download finished with all ${SIZE} bytes: ${JSON.stringify(withSync.outcomes)}`);
  assert.ok(withSync.after.sync_received >= 3, "d2 received sync datagrams");
  assert.deepEqual([withSync.after.sync_rejected_short, withSync.after.sync_rejected_version], [1, 1], "the foreign datagrams were refused by name");
  assert.equal(withSync.after.sync_rejected_checksum + withSync.after.sync_rejected_sync_id + withSync.after.sync_rejected_length, 0);
  assert.ok(withSync.after.sync_records_imported >= DOWNLOADS, `d2 applied the master's entries: ${withSync.after.sync_records_imported}`);
  assert.equal(withSync.after.not_syn, 0, "d2 had an entry for every segment after the failover");
  assert.ok(withSync.after.forward_in > 0 && withSync.after.forward_out > 0, "d2 forwarded both ways after the failover");
  // /metrics shows the same counts.
  const sample = (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(withSync.metrics)?.[1]);
  assert.equal(sample(`fulcrum_director_sync_records_total{event="imported"}`), withSync.after.sync_records_imported);
  assert.equal(sample(`fulcrum_director_sync_rejected_datagrams_total{reason="short"}`), 1);
  assert.equal(sample(`fulcrum_director_sync_datagrams_total{event="received"}`), withSync.after.sync_received);

  const noSync = await lab.failover("off", DOWNLOADS, () => true);
  const finished = noSync.outcomes.filter(complete);
  assert.deepEqual(finished, [], `without sync no download finishes: ${JSON.stringify(noSync.outcomes)}`);
  for (const o of noSync.outcomes) assert.notEqual(o.code, 0, `curl gave up: ${JSON.stringify(o)}`);
  assert.ok(noSync.after.not_syn > 0, `d2 dropped the clients' mid-flow segments as not_syn: ${noSync.after.not_syn}`);
  assert.equal(noSync.after.sync_received, undefined, "no sync daemon ran");
  console.log(`director sync: ${DOWNLOADS} downloads in flight at SIGKILL of the master: broken with sync ${broken.length}, `
    + `without ${DOWNLOADS - finished.length} (new master without sync: not_syn ${noSync.after.not_syn}, no_service ${noSync.after.no_service})`);
});

test("director sync: unicast to the peer (director_sync.peer) carries the connections too, through a reload of the backup (its table and sync go on); a datagram from another address is refused as not the peer's", { skip: noLab }, async () => {
  const r = await lab.failover("unicast", 3, (c) => c.sync_records_imported >= 3, async (_d1, d2) => {
    await foreignDatagrams();
    // SIGHUP with the same config: the new generation takes the director (and its table) over
    // and starts its own sync daemon on the same port; a download started after it is synced too.
    d2.child.kill("SIGHUP");
    await d2.waitForLine(/generation 2 serving/, 15_000);
    await d2.waitForLine(/director: its connection table, ports and steering carried over/, 1000);
    const late = lab.download();
    await waitFor("the late download synced to d2", async () => (await lab.counters("d2")).sync_records_imported >= 4, 10_000, 100);
    await sleep(1100);
    return [late];
  });
  assert.equal(r.outcomes.length, 4);
  assert.deepEqual(r.outcomes.filter((o) => !complete(o)), [], JSON.stringify(r.outcomes));
  assert.equal(r.after.sync_rejected_peer, 2, "both datagrams from s1 refused: not the peer");
  assert.equal(r.after.sync_rejected_short + r.after.sync_rejected_version, 0, "refused before being read");
  // (not_syn is not asserted here: the previous test's broken connections still retransmit their
  // FINs from the client, and the new master counts those.)
  assert.ok(r.after.forward_in > 0 && r.after.forward_out > 0, "d2 forwarded both ways after the failover");
});
