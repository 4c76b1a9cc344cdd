// Discovery as a service of a generation: one etcd client for the `discovery.etcd` section, and
// for each pool with `discovery: etcd` a source feeding that live pool. Start waits (bounded) for
// the first read of each pool that has no configured servers, so a new node does not serve an
// empty pool it is about to fill; a pool with servers listed serves them until etcd's set arrives.
import { runtime } from "../runtime/index.ts";
import type { Pool } from "../balancer/pool.ts";
import type { DiscoveryConfig, DiscoveryKind, EtcdConfig } from "./config.ts";
import { EtcdClient } from "./etcd-client.ts";
import { EtcdPoolSource } from "./etcd-source.ts";
import { DiscoveredPool } from "./apply.ts";
import { sharedHashSeed } from "./hash-seed.ts";

/** How long start() waits for each pool's first read before serving what it has. */
const FIRST_READ_WAIT_MS = 3_000;
/** How long a starting node waits for the shared hash seed. */
const HASH_SEED_WAIT_MS = 3_000;

export async function etcdClient(config: EtcdConfig): Promise<EtcdClient> {
  const read = async (file: string | null, what: string) => {
    if (file === null) return null;
    try {
      return await runtime.readTextFile(file);
    } catch (e) {
      throw new Error(`discovery.etcd.${what}: cannot read ${file}: ${(e as Error).message}`);
    }
  };
  const password = (await read(config.passwordFile, "password_file"))?.replace(/\r?\n$/, "") ?? null;
  return new EtcdClient({ endpoints: config.endpoints, ca: await read(config.caFile, "ca"), username: config.username, password });
}

export class DiscoveryService {
  private readonly feeds: { source: EtcdPoolSource; feed: DiscoveredPool; waitForRead: boolean }[] = [];
  /** built: follow() queues; started: follow() starts at once (a pool added at run time); stopped: follow() does nothing. */
  private phase: "built" | "started" | "stopped" = "built";

  private constructor(readonly client: EtcdClient | null, private readonly prefix: string) {}

  /** Null when no pool uses discovery and no seed is needed. */
  static async create(config: DiscoveryConfig | null): Promise<DiscoveryService | null> {
    if (!config?.etcd) return null;
    return new DiscoveryService(await etcdClient(config.etcd), config.etcd.prefix);
  }

  /** The seed every node with this prefix shares (null: etcd did not answer; logged). */
  hashSeed(): Promise<number | null> {
    return sharedHashSeed(this.client!, this.prefix, HASH_SEED_WAIT_MS);
  }

  /** Feeds `pool` from its source: from start() on for the config's pools; at once for a pool
   * added while running (the admin API), without waiting for its first read. */
  follow(pool: Pool, kind: DiscoveryKind): void {
    if (kind !== "etcd" || this.phase === "stopped") return;
    if (this.feeds.some((f) => f.feed.pool.name === pool.name)) throw new Error(`discovery already follows pool ${pool.name}`);
    const source = new EtcdPoolSource(this.client!, this.prefix, pool.name);
    const entry = { source, feed: new DiscoveredPool(pool), waitForRead: pool.servers.length === 0 };
    this.feeds.push(entry);
    if (this.phase === "started") this.begin(entry);
  }

  /** Stops feeding the pool named `name` (removed at run time). No update reaches it once this
   * returned, even before the promise settles (the source's read or watch being closed). */
  unfollow(name: string): Promise<void> {
    const i = this.feeds.findIndex((f) => f.feed.pool.name === name);
    if (i < 0) return Promise.resolve();
    const [{ source }] = this.feeds.splice(i, 1);
    return source.stop();
  }

  async start(): Promise<void> {
    this.phase = "started";
    for (const f of this.feeds) this.begin(f);
    await Promise.all(this.feeds.filter((f) => f.waitForRead).map((f) => f.source.firstRead(FIRST_READ_WAIT_MS)));
  }

  async stop(): Promise<void> {
    this.phase = "stopped";
    await Promise.all(this.feeds.map((f) => f.source.stop()));
  }

  private begin({ source, feed }: { source: EtcdPoolSource; feed: DiscoveredPool }): void {
    source.start((u) => feed.apply(u));
  }
}
