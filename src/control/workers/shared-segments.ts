// Everything the supervisor shares with its workers through memory, made once for the
// supervisor's lifetime (every generation's workers map the same files, so what one generation
// counted the next one sees): the session counts, the word index they are laid out by, the
// schedulers' own state, the source persistence table and the max_conns queues. A shared table
// is added here, once.
import { openSegment, removeSegment, segmentPath, type SegmentPlace, SessionSegment } from "./session-segment.ts";
import { SharedIndex } from "./pool-state.ts";
import { LOCALITY_TABLES, openSchedulerSegment, SchedulerSegment, type SchedulerSegmentPlace, type SchedulerWords } from "./scheduler-segment.ts";
import { openPersistenceTable, PersistenceSegment, type PersistencePlace, type PersistenceTable } from "./persistence-table.ts";
import { mapWaitTable, type SharedWaitTable, type WaitTablePlace } from "./wait-table.ts";

/** Words of the shared counts: one per (pool, server address) the supervisor ever had. */
const SHARED_WORDS = 16384;
/** The max_conns queues: pools, and waiting sessions over all of them (a full table sheds the
 * newcomer). */
const QUEUE_POOLS = 1024, QUEUE_ENTRIES = 65536;

/** Where a worker finds each segment (part of its start message). */
export interface SharedPlaces {
  /** The session counts, and this worker's own block. */
  sessions: SegmentPlace;
  schedulers: SchedulerSegmentPlace;
  persistence: PersistencePlace;
  queues: WaitTablePlace;
}

/** The supervisor's side: it creates the files and removes them at exit. */
export class SharedSegments {
  readonly sessions: SessionSegment;
  readonly index = new SharedIndex(SHARED_WORDS, LOCALITY_TABLES, QUEUE_POOLS);
  readonly schedulers = new SchedulerSegment(SHARED_WORDS);
  readonly persistence = new PersistenceSegment();
  private readonly queuesPlace: WaitTablePlace = { path: segmentPath("queue"), pools: QUEUE_POOLS, entries: QUEUE_ENTRIES };
  readonly queues = mapWaitTable(this.queuesPlace, true);

  /** `workers`: how many run at once (a block each, for two sets during a reload, and restarts). */
  constructor(workers: number) {
    this.sessions = new SessionSegment(SHARED_WORDS, 2 * workers + 4);
  }

  /** The places for a new worker, with a block of its own in the session counts. */
  allocate(): SharedPlaces {
    return { sessions: this.sessions.allocate(), schedulers: this.schedulers.place, persistence: this.persistence.place, queues: this.queuesPlace };
  }

  remove(): void {
    this.sessions.remove();
    this.schedulers.remove();
    this.persistence.remove();
    removeSegment(this.queuesPlace.path);
  }
}

/** A worker's views of its supervisor's segments. */
export interface SharedViews {
  counts: { total: Int32Array; own: Int32Array | null };
  schedulers: SchedulerWords;
  persistence: PersistenceTable;
  queues: SharedWaitTable;
}

export function openShared(places: SharedPlaces): SharedViews {
  return {
    counts: openSegment(places.sessions), schedulers: openSchedulerSegment(places.schedulers), persistence: openPersistenceTable(places.persistence),
    queues: mapWaitTable(places.queues, false),
  };
}
