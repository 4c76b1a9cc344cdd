// Data-plane memory layout. This file is valid AssemblyScript and TypeScript: the WASM kernels and
// their TS twins import the same numbers, so a table filled by the control plane reads the same
// from either side. All offsets are in bytes; every field is an i32.

export const MAX_SERVERS = 4096;
export const MAX_POOLS = 256;

// Globals: the per-process hash key (HalfSipHash k0, k1).
export const GLOBALS_OFF = 0;
export const G_HASH_K0 = 0;
export const G_HASH_K1 = 4;
export const G_NOW = 8; // the data plane's clock, ms (wraps; compared by signed difference): least_time

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
// least_time's peak-EWMA of response times, µs (0: nothing known), and when it was last set (G_NOW).
export const S_RTT = 9;
export const S_RTT_AT = 10;
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
export const P_DECAY = 9; // least_time: the estimates' time constant, ms
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
export const SCHED_LEAST_TIME = 15;

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

// ---- L4 packet director (wasm/assembly/director*.ts, conntrack.ts; src/l4/director/) ----
// Above the heap, from DIR_OFF = HEAP_END: fixed tables first, then (past AssemblyScript's own
// data page at DIR_FIXED_END) the connection table, sized by the configured capacity. The data
// plane grows the memory once to fit it before any view is made (src/l4/director/memory.ts).
// Multi-byte packet fields are kept as they sit in the packet (network order), loaded as
// little-endian words: equality, hashing and one's-complement sums need no byte swaps.
export const DIR_OFF = 67108864; // = HEAP_END
// Globals (u32 each, byte offsets from DIR_OFF).
export const DG_NOW = 0; // the batch's clock, ms (wraps; compared by signed difference)
export const DG_CAP = 4; // connection entries
export const DG_BMASK = 8; // hash buckets - 1
export const DG_FREE = 12; // head of the free entry list (CT_NONE when empty)
export const DG_USED = 16; // entries in use (connections and templates)
export const DG_TICK = 20; // last wheel tick processed
export const DG_BUCKETS = 24; // byte offset of the bucket array
export const DG_ENTRIES = 28; // byte offset of entry 0
export const DG_READY = 32; // 1 once directorInit succeeded
export const DG_HWM = 36; // entries below it have been used once; those above never (no init walk)
export const DG_TIMEOUTS = 64; // u32 ms per CT_S_* state (16)
export const DG_SRC = 128; // parsed source address, 16 bytes (IPv4: first 4, rest 0)
export const DG_DST = 144; // parsed destination address
export const DG_ISRC = 160; // addresses of an ICMP error's embedded packet
export const DG_IDST = 176;
export const DIR_GLOBALS_SIZE = 4096;
// Counters: u64 per reason (R_*) and per table event (C_*).
export const DIR_COUNTERS_OFF = DIR_OFF + 4096;
export const DIR_COUNTERS = 64;
// Virtual services: MAX_VS entries of VS_SIZE bytes, and an open-addressed index of VS_BUCKETS.
export const MAX_VS = 256;
export const VS_SIZE = 128;
export const DIR_VS_OFF = DIR_OFF + 8192;
export const VS_ADDR = 0; // 16
export const VS_PORT = 16; // u16
export const VS_PROTO = 18; // u8: 6 or 17
export const VS_FAMILY = 19; // u8: 4 or 6
export const VS_KIND = 20; // u8: KIND_*
export const VS_FLAGS = 21; // u8: VSF_*
export const VS_LCOUNT = 22; // u8: local addresses (fullnat)
export const VS_LFIRST = 23; // u8: first local address index
export const VS_POOL = 24; // i32: data-plane pool
export const VS_PERSIST = 28; // u32 ms, 0 = no persistence
export const VS_MTU = 32; // u32: path MTU toward servers (tun, toa)
export const VS_LCURSOR = 36; // u32: rr over local addresses
export const VS_MAC = 40; // 6: the director's own MAC (l2 frames)
export const VS_GWMAC = 46; // 6: next hop toward clients (l2 frames)
export const VS_SRC = 52; // 16: the director's address: tunnel source, ICMP errors it sends
export const VS_CONNS = 72; // u64
export const VS_PKTS_IN = 80; // u64
export const VS_PKTS_OUT = 88; // u64
export const VS_BYTES_IN = 96; // u64
export const VS_BYTES_OUT = 104; // u64
export const VSF_USED = 1;
export const VSF_TOA = 2;
// A mid-flow TCP packet with no entry gets one from the keyed pick (dr/tun with a consistent
// keyed scheduler: every node of a fleet picks the same server, so a flow ECMP moved keeps it).
export const VSF_ADOPT = 4;
export const VSF_PROXY = 8; // fullnat tcp: PROXY v2 header before the client's first payload
export const KIND_NAT = 0;
export const KIND_DR = 1;
export const KIND_TUN = 2;
export const KIND_FULLNAT = 3;
export const VS_BUCKETS = 1024; // i32: vs index + 1, 0 empty; linear probing
export const DIR_VSHASH_OFF = DIR_VS_OFF + MAX_VS * VS_SIZE;
// Real servers ("dests", as IPVS): stable indices the connections keep while server-table slots
// move (DataPlane.setServers); the control plane maps dest -> slot and slot -> dest.
export const MAX_DESTS = 4096;
export const DEST_SIZE = 64;
export const DIR_DEST_OFF = DIR_VSHASH_OFF + VS_BUCKETS * 4;
export const D_ADDR = 0; // 16
export const D_PORT = 16; // u16
export const D_FAMILY = 18; // u8
export const D_FLAGS = 19; // u8: DF_*
export const D_MAC = 20; // 6
export const D_SLOT = 28; // i32: server-table slot, -1 when out of its pool
export const D_ACTIVE = 32; // i32: ESTABLISHED connections (mirrored into S_ACTIVE of the slot)
export const D_INACTIVE = 36; // i32: other connections
export const D_CONNS = 40; // u64
export const D_PKTS_IN = 48; // u64
export const D_PKTS_OUT = 56; // u64
export const DF_USED = 1;
export const DF_RESET = 2; // down with expire_on_down: its connections are dropped and removed
export const DIR_SLOT2DEST_OFF = DIR_DEST_OFF + MAX_DESTS * DEST_SIZE; // i32 per server slot
// Local addresses (fullnat): each with a ring of free ports (u16), as DPVS's sa_pool: a freed port
// is handed out again only after every other free port of its address was (servers keep their
// side of a closed connection in TIME_WAIT for a while).
export const MAX_LADDRS = 64;
export const LADDR_SIZE = 32;
export const DIR_LADDR_OFF = DIR_SLOT2DEST_OFF + MAX_SERVERS * 4;
export const L_ADDR = 0; // 16
export const L_FAMILY = 16; // u8
export const L_TOP = 20; // u32: free ports in the ring
export const L_HEAD = 24; // u32: ring index of the next port handed out (freed ones go in after the last free)
export const LPORT_MIN = 1025;
export const LPORTS = 64511; // 1025..65535
export const DIR_PORTS_OFF = DIR_LADDR_OFF + MAX_LADDRS * LADDR_SIZE; // 131072 bytes per address
export const PORTS_STRIDE = 131072;
// Batch: DESC_SIZE-byte descriptors; packet slots with headroom the kernels may prepend into.
export const MAX_BATCH = 256;
export const DESC_SIZE = 16;
export const DIR_DESC_OFF = DIR_PORTS_OFF + MAX_LADDRS * PORTS_STRIDE;
export const DESC_OFF = 0; // u32 in/out: first byte of the packet (moves back for encap, TOA)
export const DESC_LEN = 4; // u32 in/out
export const DESC_FLAGS = 8; // u16 in: DESCF_*
export const DESC_VERDICT = 10; // u8 out: VERDICT_*
export const DESC_REASON = 11; // u8 out: R_*
export const DESC_CONN = 12; // i32 out: connection entry, -1 none
export const DESCF_L2 = 1; // starts with an Ethernet header (AF_PACKET); else IP (TUN)
export const VERDICT_DROP = 0;
export const VERDICT_TO_SERVER = 1; // toward the real server (or local-address side)
export const VERDICT_TO_CLIENT = 2; // toward the client
export const PKT_HEADROOM = 128; // bytes before DESC_OFF every packet may use
export const PKT_SLOT = 4096;
export const DIR_PKT_OFF = DIR_DESC_OFF + MAX_BATCH * DESC_SIZE;
// Timer wheel: WHEEL_SLOTS list heads (u32 entry, CT_NONE empty), WHEEL_MS per slot.
export const WHEEL_SLOTS = 4096;
export const WHEEL_SHIFT = 10; // 1024 ms per slot: a 70-minute horizon, refiled past it
export const DIR_WHEEL_OFF = DIR_PKT_OFF + MAX_BATCH * PKT_SLOT;
// End of the fixed tables (64 KiB aligned); AssemblyScript's data page follows, then entries.
export const DIR_FIXED_END = 76939264; // checked against DIR_WHEEL_OFF + WHEEL_SLOTS * 4 in src/l4/director/memory.ts
export const CONN_OFF = DIR_FIXED_END + 65536;
// Connection entry (CT_SIZE bytes). A hash link is entry * 2 + direction (CT_IN, CT_OUT).
export const CT_SIZE = 112;
export const CT_NONE = 0xffffffff;
export const CT_IN = 0; // client -> vip key: caddr, vaddr, cport, vport
export const CT_OUT = 1; // server -> local key: daddr, laddr, dport, lport
export const CT_CADDR = 0; // 16
export const CT_VADDR = 16; // 16
export const CT_LADDR = 32; // 16: fullnat's local address; the client's otherwise
export const CT_DADDR = 48; // 16
export const CT_CPORT = 64; // u16 each, network order
export const CT_VPORT = 66;
export const CT_LPORT = 68;
export const CT_DPORT = 70;
export const CT_PROTO = 72; // u8: 6, 17; | CT_PROTO_TMPL for a persistence template
export const CT_STATE = 73; // u8: CT_S_*
export const CT_FLAGS = 74; // u8: CTF_*
export const CT_LIDX = 75; // u8: local address index (fullnat)
export const CT_DEST = 76; // u16
export const CT_VS = 78; // u16
export const CT_EXPIRE = 80; // u32 ms
export const CT_NEXT_IN = 84; // u32 hash link
export const CT_NEXT_OUT = 88; // u32 hash link
export const CT_WPREV = 92; // u32 entry (wheel list; free list uses CT_WNEXT)
export const CT_WNEXT = 96;
export const CT_TMPL = 100; // u32: a connection's template entry + 1; a template's connection count
export const CT_WSLOT = 104; // u32: wheel tick it is filed under (slot = tick & (WHEEL_SLOTS - 1))
export const CT_FIRST_SEQ = 108; // u32 (host order): fullnat PROXY v2: the client's first payload sequence number (ISN + 1)
export const CT_PROTO_TMPL = 128;
export const CTF_USED = 1;
export const CTF_V6 = 2;
export const CTF_OUTKEY = 4; // the server-side key is in the hash
export const CTF_ACTIVE = 8; // counted in its dest's active, else inactive
export const CTF_TOA = 16; // TOA sent on the handshake-completing ACK
export const CTF_PROXY = 32; // PROXY v2 header sent: the server's acknowledgements are shifted back
// States (IPVS's order) and the UDP and template pseudo-states: index DG_TIMEOUTS.
export const CT_S_NONE = 0;
export const CT_S_ESTABLISHED = 1;
export const CT_S_SYN_SENT = 2;
export const CT_S_SYN_RECV = 3;
export const CT_S_FIN_WAIT = 4;
export const CT_S_TIME_WAIT = 5;
export const CT_S_CLOSE = 6;
export const CT_S_CLOSE_WAIT = 7;
export const CT_S_LAST_ACK = 8;
export const CT_S_LISTEN = 9;
export const CT_S_SYNACK = 10;
export const CT_S_UDP = 11;
export const CT_S_TEMPLATE = 12;
export const EVICT_STEPS = 256; // entries a full table looks at for a victim
// Reasons: forwarded (R_FWD_*) below R_DROP_FIRST, dropped from it. Counter index = reason.
export const R_NONE = 0;
export const R_FWD_IN = 1; // client -> server, tracked or new
export const R_FWD_OUT = 2; // server -> client
export const R_FWD_ICMP_IN = 3; // an ICMP error for a connection, toward its server
export const R_FWD_ICMP_OUT = 4; // toward its client
export const R_FRAG_NEEDED = 5; // too big to tunnel: ICMP frag-needed / packet-too-big sent back
export const R_DROP_FIRST = 16;
export const R_TRUNCATED = 16; // shorter than its headers say
export const R_BAD_L2 = 17; // not IPv4/IPv6 in the frame
export const R_BAD_IP = 18; // version, header length or total length wrong
export const R_FRAGMENT = 19; // fragments are refused (never misdirected)
export const R_PROTO = 20; // not TCP, UDP or ICMP
export const R_BAD_L4 = 21; // TCP/UDP header malformed, port 0
export const R_NO_SERVICE = 22; // no connection and no virtual service
export const R_NOT_SYN = 23; // TCP without a connection and not a SYN
export const R_NO_SERVER = 24; // the scheduler found no server
export const R_TABLE_FULL = 25; // no entry could be freed
export const R_NO_LPORT = 26; // fullnat local ports exhausted
export const R_NEED_L2 = 27; // dr needs an Ethernet frame
export const R_TOO_BIG = 28; // too big to tunnel and no ICMP error may be sent
export const R_ICMP_NOT_ERROR = 29; // ICMP that is not an error (echo...)
export const R_ICMP_UNTRACKED = 30; // ICMP error for no tracked connection
export const R_ICMP_BAD = 31; // malformed ICMP error
export const R_DEST_DOWN = 32; // its server is down with expire_on_down
export const R_NOT_READY = 33; // no connection table configured
export const R_BAD_DESC = 34; // descriptor outside memory or without headroom
export const R_COUNT = 40;
export const C_CREATED = 48; // connections created
export const C_EXPIRED = 49;
export const C_EVICTED = 50;
export const C_TEMPLATES = 51; // templates created
export const C_REFILED = 52; // wheel entries refiled (lazy expiry)
export const C_ADOPTED = 53; // mid-flow TCP connections taken over without their SYN (among created)

// ---- Per-client limits (wasm/assembly/limits.ts, src/core/twin/limits.ts, src/core/limits.ts) ----
// A table is a header then sets of LT_WAYS entries, in heap memory the data plane allocates. A
// key's 64-bit hash picks two sets (one per word); they are its whole probe window (no chains,
// no tombstones).
export const LT_HEADER = 64; // bytes before entry 0
export const LT_SETS = 0; // u32: sets in the table
export const LT_LIMIT = 4; // u32: rate: milli-requests per second; conn: concurrent at most
export const LT_BURST = 8; // u32: rate: burst in milli-requests (nginx's excess bound)
export const LT_USED = 12; // u32: entries in use
export const LT_EVICTED = 16; // u32: live entries replaced by a new key (their state lost)
export const LT_REJECTED = 20; // u32: admissions refused over the limit
export const LT_FULL = 24; // u32: conn: new keys refused because their set held only live counts
export const LT_RECLAIMED = 28; // u32: rate entries drained to nothing, reused for a new key
// u32 x 2: the table's hash key. Per process, not the data plane's seed (which a reload may
// change), so a reload can carry a table over.
export const LT_HASH_KEY = 32;
export const LT_WAYS = 8;
export const LE_SIZE = 16; // an entry: two hash words, a time, a value
export const LE_KEY0 = 0; // u32: hash low word (key0 | key1 == 0: the entry is empty)
export const LE_KEY1 = 4; // u32: hash high word
export const LE_SEEN = 8; // i32 ms: rate: the last admission (the excess is as of then); conn: the last admission
export const LE_VALUE = 12; // i32: rate: excess in milli-requests; conn: requests in flight
export const LIMIT_FULL = -2; // connAdmit: the key could not be tracked
export const LIMIT_OVER = -1; // connAdmit: the key is at its limit
// ---- Longest-prefix match (wasm/assembly/lpm.ts, src/core/twin/lpm.ts; built by src/core/lpm.ts) ----
// A table is one block of heap memory: the address space cut into sorted, disjoint intervals, each
// with the value of the longest prefix covering it (0: none), and an index by an address's top
// bits naming the interval range to binary-search. Header fields are u32 at these byte offsets.
export const LPM_COUNT = 0; // intervals (at least 1: the first starts at address 0)
export const LPM_SHIFT = 4; // index slot of an address: its first word >>> shift (shift 16..31)
export const LPM_STARTS = 8; // byte offset (from the table) of the starts: u32 (IPv4) or 4 x u32, most significant first (IPv6)
export const LPM_VALUES = 12; // byte offset of the values: u32 per interval
export const LPM_INDEX = 16; // u32 per slot, (1 << (32 - shift)) + 1 slots: the last interval starting at or below the slot's first address
export const LPM_MAX_INDEX_BITS = 16;
