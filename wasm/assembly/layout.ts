// Data-plane memory layout. This file is valid AssemblyScript and TypeScript: the WASM kernels and
// their TS twins import the same numbers, so a table filled by the control plane reads the same
// from either side. All offsets are in bytes; every field is an i32.

export const MAX_SERVERS = 4096;
export const MAX_POOLS = 256;

// Globals: the per-process hash key (HalfSipHash k0, k1).
export const GLOBALS_OFF = 0;
export const G_HASH_K0 = 0;
export const G_HASH_K1 = 4;

// Scratch for key bytes the caller hashes in WASM.
export const KEYBUF_OFF = 4096;
export const KEYBUF_SIZE = 61440;

// Server table: struct of arrays, field f of server i at SERVERS_OFF + (f * MAX_SERVERS + i) * 4.
export const SERVERS_OFF = 65536;
export const S_WEIGHT = 0; // configured weight 0..256
export const S_EFFW = 1; // effective weight the schedulers use (slow start, agent)
export const S_CW = 2; // smooth-wrr current weight
export const S_ACTIVE = 3; // active connections / requests
export const S_STATE = 4; // STATE_*
export const S_FLAGS = 5; // FLAG_*
export const S_MAXCONN = 6; // 0 = unlimited
export const S_ID = 7; // stable hash of the server's address (Maglev, ketama)
// The server's tier (0 primary, FLAG_BACKUP backup) while it is up with a weight, else -1. The
// control plane keeps it in step with state, weight and flags so a scan needs one load, not four.
export const S_GATE = 8;
export const S_FIELDS = 16;

export const STATE_UP = 0;
export const STATE_DOWN = 1;
export const STATE_DRAIN = 2;
export const FLAG_BACKUP = 1;

// Pool table: field f of pool p at POOLS_OFF + (f * MAX_POOLS + p) * 4.
export const POOLS_OFF = SERVERS_OFF + S_FIELDS * MAX_SERVERS * 4;
export const P_BASE = 0; // first server slot
export const P_COUNT = 1; // number of server slots
export const P_SCHED = 2; // index into SCHEDULERS
export const P_CURSOR = 3; // rr position
export const P_RNG = 4; // xorshift32 state, never 0
export const P_TABLE = 5; // byte offset of the pool's lookup table (table schedulers)
export const P_TABLELEN = 6; // entries built into the table
export const P_TABLECAP = 7; // entries the table has room for
export const P_SCRATCH = 8; // byte offset of build scratch (SCRATCH_WORDS i32 per server)
export const P_FIELDS = 16;

// AssemblyScript's own static data (the kernels allocate nothing at run time).
export const DATA_OFF = 344064; // after the pool table (POOLS_OFF + P_FIELDS * MAX_POOLS * 4)

// Region the control plane carves into per-pool tables. The module starts with INITIAL_MEMORY
// and the data plane grows it as tables are made: a collector counts all of a WASM memory as
// live, so 64 MB reserved up front made it postpone collections by as much (bench/RESULTS.md).
export const HEAP_OFF = 524288;
export const HEAP_END = 67108864;
export const INITIAL_MEMORY = 1048576;

// Scheduler ids (same order as src/core/scheduler-names.ts).
export const SCHED_RR = 0;
export const SCHED_WRR = 1;
export const SCHED_LC = 2;
export const SCHED_WLC = 3;
export const SCHED_SED = 4;
export const SCHED_NQ = 5;
export const SCHED_DH = 6;
export const SCHED_SH = 7;
export const SCHED_LBLC = 8;
export const SCHED_LBLCR = 9;
export const SCHED_MH = 10;
export const SCHED_KETAMA = 11;
export const SCHED_RANDOM = 12;
export const SCHED_TWO = 13;
export const SCHED_FIRST = 14;

// Table sizes.
export const HASH_BUCKETS = 4096; // dh, sh: bucket -> server
export const LB_BUCKETS = 4096; // lblc, lblcr: key -> server set
export const LB_ENTRY_WORDS = 6; // key, n, s0..s3
export const LB_SET_MAX = 4;
export const MAGLEV_M = 65537; // prime
export const KETAMA_POINTS = 160; // points per unit of weight, as nginx
export const KETAMA_PROBES = 20; // next points tried past an unusable one, as nginx
export const MAGLEV_PROBES = 32;
export const SCRATCH_WORDS = 8;

// ---- HTTP/2: HPACK Huffman decoding (wasm/assembly/huffman.ts, src/http2/huffman*.ts) ----
// In the free span between the pool table and the heap: [HUFF_OFF, HEAP_OFF), 64 KiB. The TS
// side writes the decode table once at load; each call decodes HUFF_IN_SIZE bytes at most.
export const HUFF_OFF = 458752;
export const HUFF_TABLE_OFF = HUFF_OFF; // 256 states x 16 nibbles, u32 each: 16 KiB
export const HUFF_IN_OFF = HUFF_OFF + 16384;
export const HUFF_IN_SIZE = 15360;
export const HUFF_STATE_OFF = HUFF_OFF + 31744; // i32: the decoder state a call ends in
export const HUFF_OUT_OFF = HUFF_OFF + 32768; // up to HUFF_IN_SIZE * 8 / 5 = 24576 bytes
export const HUFF_OUT_SIZE = 32768;
// Decode table entry: bits 0-7 next state, 8-15 symbol, then these flags.
export const HUFF_EMIT = 65536; // the nibble completed a symbol
export const HUFF_FAIL = 131072; // the nibble ran into EOS: not a valid string
export const HUFF_ACCEPT = 262144; // input may end here (padding of at most 7 one bits)
