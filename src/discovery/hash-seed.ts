// The hash seed nodes sharing a prefix agree on, so a keyed scheduler (mh, ketama, sh, ...) picks
// the same server for the same key on every node without `hash_seed` in each config: the first
// node creates `<prefix>hash_seed` (create-if-absent transaction) with a random seed, every node
// reads what the store holds. Asked before the data plane is built, with a bounded wait.
import type { EtcdClient } from "./etcd-client.ts";

/** The seed the store holds (created if absent), or null (logged) when etcd did not answer in
 * `waitMs` or holds something else than a seed: the caller then draws a random hash key. */
export async function sharedHashSeed(
  client: EtcdClient, prefix: string, waitMs: number, log: (line: string) => void = (l) => console.error(l),
): Promise<number | null> {
  const key = `${prefix}hash_seed`;
  const deadline = Date.now() + waitMs;
  let delay = 100;
  let lastError = "";
  while (Date.now() < deadline) {
    try {
      const proposal = crypto.getRandomValues(new Uint32Array(1))[0];
      const { created, value } = await client.createIfAbsent(key, String(proposal));
      const seed = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
      if (!(seed <= 0xffffffff)) {
        log(`fulcrum: discovery: WARNING: etcd key ${key} holds ${JSON.stringify(value.slice(0, 40))}, not a seed 0..4294967295: using a random hash key, so this node's keyed picks differ from other nodes'`);
        return null;
      }
      log(`fulcrum: discovery: hash seed from etcd key ${key}${created ? " (created by this node)" : ""}`);
      return seed;
    } catch (e) {
      lastError = (e as Error).message;
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 1_000);
    }
  }
  log(`fulcrum: discovery: WARNING: no hash seed from etcd within ${waitMs} ms (${lastError}): using a random hash key, so this node's keyed picks (mh, ketama, sh, ...) differ from other nodes' until it restarts with etcd reachable (or set hash_seed)`);
  return null;
}
