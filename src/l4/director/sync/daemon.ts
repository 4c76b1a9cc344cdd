// The sync daemon (LVS's): while the named VRRP instance is MASTER, each tick walks the
// director's table and sends what changed in batched datagrams (multicast on the interface, or
// unicast to the peer); otherwise it applies what the master sends. A datagram is checked whole
// and applied at once as it arrives: nothing is queued, so nothing grows with what arrives.
import dgram from "node:dgram";
import { timers, type Repeating } from "../../../core/timer.ts";
import { interfaceFacts } from "../../../vrrp/addresses.ts";
import { formatIP } from "../../../vrrp/ip.ts";
import type { VrrpState } from "../../../vrrp/machine.ts";
import type { Director } from "../director.ts";
import type { DirectorSyncConfig } from "./config.ts";
import { SyncTable, RECORD_REJECTIONS, type RecordRejection } from "./table.ts";
import { DATAGRAM_REJECTIONS, type DatagramRejection, decodeDatagram, encodeDatagram, RECORDS_PER_DATAGRAM } from "./wire.ts";

/** How often the master walks its table for changes: a connection reaches the backup this long
 * after its state changed at most (plus the wire). */
const TICK_MS = 100;
/** Datagrams per tick at most (18 records each): about 23,000 connection changes a second. */
const MAX_DATAGRAMS_PER_TICK = 128;
/** Entries a tick looks at, at most: the walk is bound by memory (about 25 ns an entry with a
 * million, bench/RESULTS.md), so a tick costs about 3 ms at most; a table this size or smaller
 * is walked whole every tick, a million entries in 8 ticks. */
const STEPS_PER_TICK = 131072;

/** Datagrams refused before any record is read, by reason: the codec's, one not from the
 * configured peer, and any arriving while this node is master (it directs; it takes no table). */
export type SyncRejection = DatagramRejection | "peer" | "master";
export const SYNC_REJECTIONS: readonly SyncRejection[] = [...DATAGRAM_REJECTIONS, "peer", "master"];

export interface SyncSources {
  /** The running director (null before it started, or once it stopped). */
  director(): Director | null;
  /** The followed VRRP instance's state (null: not running). */
  role(): VrrpState | null;
  /** The instance's virtual_router_id: the sync id unless the config names one. */
  vrid: number;
}

export interface SyncCounts {
  sent: number;
  sendErrors: number;
  received: number;
  rejected: Record<SyncRejection, number>;
  /** Records: sent, applied (new, refreshed) and refused by reason (the kernels' counts). */
  recordsSent: number;
  recordsImported: number;
  recordsUpdated: number;
  recordsRejected: Record<RecordRejection, number>;
}

export class SyncDaemon {
  private socket: dgram.Socket | null = null;
  private tick: Repeating | null = null;
  private table: SyncTable | null = null;
  private readonly syncId: number;
  private sent = 0;
  private sendErrors = 0;
  private received = 0;
  private readonly rejected = Object.fromEntries(SYNC_REJECTIONS.map((r) => [r, 0])) as Record<SyncRejection, number>;
  private lastError = "";

  /** `previous`: the daemon of the generation a reload replaces; its counts go on here (the
   * records' counts live in the director's memory, which the reload carries over too). */
  constructor(readonly config: DirectorSyncConfig, private readonly sources: SyncSources, previous: SyncDaemon | null = null,
    private readonly log = (line: string) => console.log(line)) {
    this.syncId = config.id ?? sources.vrid;
    if (previous) {
      this.sent = previous.sent;
      this.sendErrors = previous.sendErrors;
      this.received = previous.received;
      Object.assign(this.rejected, previous.rejected);
    }
  }

  /** Where datagrams go: the peer, or the group. */
  get destination(): string {
    return this.config.peer ?? this.config.group;
  }

  async start(): Promise<void> {
    const source = interfaceFacts(this.config.interface).primaryIPv4;
    if (source === null) throw new Error(`director_sync: interface ${this.config.interface} has no IPv4 address`);
    const local = formatIP(source);
    const socket = this.socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
    socket.on("message", (msg, from) => this.receive(msg, from.address));
    socket.on("error", (e) => this.note(`socket: ${e.message}`));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(this.config.port, () => { socket.off("error", reject); resolve(); });
    }).catch((e) => { socket.close(); this.socket = null; throw new Error(`director_sync: port ${this.config.port}: ${(e as Error).message}`); });
    if (this.config.peer === null) {
      socket.addMembership(this.config.group, local);
      socket.setMulticastInterface(local);
      socket.setMulticastTTL(1);
      // Its own datagrams are not its peer's.
      socket.setMulticastLoopback(false);
    }
    this.tick = timers.every(TICK_MS, () => this.send());
    this.log(`fulcrum: director sync: following ${this.config.vrrpInstance} (sync id ${this.syncId}), ${local} -> ${this.destination}:${this.config.port}`);
  }

  stop(): void {
    this.tick?.stop();
    this.tick = null;
    this.socket?.close();
    this.socket = null;
  }

  // The director's table, its sync region set up once per director (a reload may bring another).
  private current(): SyncTable | null {
    const d = this.sources.director();
    if (d === null) return null;
    if (this.table?.director !== d) this.table = new SyncTable(d);
    return this.table;
  }

  private send(): void {
    const socket = this.socket, table = this.sources.role() === "MASTER" ? this.current() : null;
    if (socket === null || table === null) return;
    let datagrams = 0, steps = 0;
    while (datagrams < MAX_DATAGRAMS_PER_TICK && steps < STEPS_PER_TICK) {
      const out = table.exportRecords(RECORDS_PER_DATAGRAM, STEPS_PER_TICK - steps, this.config.refreshMs);
      steps += out.steps;
      if (out.count > 0) {
        datagrams++;
        socket.send(encodeDatagram(this.syncId, out.records, out.count), this.config.port, this.destination, (e) => {
          if (e) { this.sendErrors++; this.note(`send to ${this.destination}: ${e.message}`); } else this.sent++;
        });
      }
      if (out.wrapped || out.steps === 0) break;
    }
  }

  private receive(msg: Uint8Array, from: string): void {
    this.received++;
    if (this.config.peer !== null && from !== this.config.peer) { this.rejected.peer++; return; }
    if (this.sources.role() === "MASTER") { this.rejected.master++; return; }
    const d = decodeDatagram(msg, this.syncId);
    if (!d.ok) { this.rejected[d.reason]++; return; }
    this.current()?.importRecords(d.records, d.count);
  }

  // A failing send or socket is logged once per distinct message, counted every time.
  private note(message: string): void {
    if (message === this.lastError) return;
    this.lastError = message;
    console.error(`fulcrum: director sync: ${message}`);
  }

  counts(): SyncCounts {
    const records = this.table?.counts();
    const none = Object.fromEntries(Object.keys(RECORD_REJECTIONS).map((k) => [k, 0])) as Record<RecordRejection, number>;
    return {
      sent: this.sent, sendErrors: this.sendErrors, received: this.received, rejected: { ...this.rejected },
      recordsSent: records?.exported ?? 0, recordsImported: records?.imported ?? 0, recordsUpdated: records?.updated ?? 0,
      recordsRejected: records?.rejected ?? none,
    };
  }

  /** Flat, as the director's counters: sync_sent, sync_rejected_checksum, sync_records_imported... */
  counters(): Record<string, number> {
    const c = this.counts();
    const out: Record<string, number> = {
      sync_sent: c.sent, sync_send_errors: c.sendErrors, sync_received: c.received,
      sync_records_sent: c.recordsSent, sync_records_imported: c.recordsImported, sync_records_updated: c.recordsUpdated,
    };
    for (const [k, v] of Object.entries(c.rejected)) out[`sync_rejected_${k}`] = v;
    for (const [k, v] of Object.entries(c.recordsRejected)) out[`sync_records_rejected_${k}`] = v;
    return out;
  }
}
