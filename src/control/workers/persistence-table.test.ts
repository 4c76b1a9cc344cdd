import { test } from "node:test";
import assert from "node:assert/strict";
import { openPersistenceTable, PersistenceSegment, PersistenceTable } from "./persistence-table.ts";
import { segmentPath } from "./session-segment.ts";

const table = (capacity: number) => new PersistenceTable(new ArrayBuffer(PersistenceTable.bytes(capacity)), { capacity });
const client = (n: number) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

test("persistence table: a client's server until its entry expires; each pool has its own", () => {
  const t = table(1000);
  assert.equal(t.lookup(1, "10.0.0.1", 0), -1);
  t.remember(1, "10.0.0.1", 7, 1000);
  t.remember(2, "10.0.0.1", 3, 1000);
  assert.equal(t.lookup(1, "10.0.0.1", 999), 7);
  assert.equal(t.lookup(2, "10.0.0.1", 999), 3);
  assert.equal(t.lookup(1, "10.0.0.2", 999), -1);
  // A use renews it: remembered again with a later expiry, and on another server.
  t.remember(1, "10.0.0.1", 0, 2000);
  assert.equal(t.lookup(1, "10.0.0.1", 1500), 0);
  assert.equal(t.lookup(1, "10.0.0.1", 2000), -1, "expired at its expiry");
  assert.equal(t.lookup(1, "10.0.0.1", 0), -1, "and gone");
  assert.equal(t.lookup(2, "10.0.0.1", 999), 3);
});

test("persistence table: bounded; when a key's slots are full the entry expiring first goes", () => {
  const capacity = 64, t = table(capacity);
  // Many more clients than slots, each later one expiring later: the table keeps the latest.
  const n = 20 * capacity;
  for (let i = 0; i < n; i++) t.remember(1, client(i), i % 5, 10_000 + i);
  let kept = 0, keptRecent = 0;
  for (let i = 0; i < n; i++) {
    const got = t.lookup(1, client(i), 0);
    if (got < 0) continue;
    assert.equal(got, i % 5, `client ${i}`);
    kept++;
    if (i >= n - capacity) keptRecent++;
  }
  assert.ok(kept <= capacity, `${kept} kept in ${capacity} slots`);
  assert.ok(keptRecent > capacity / 2, `${keptRecent} of the last ${capacity} kept`);
  // An expired entry's slot is taken before a live one's.
  const u = table(16);
  for (let i = 0; i < 16; i++) u.remember(1, client(i), 1, i === 5 ? 50 : 1000);
  u.remember(1, "new", 2, 1000);
  assert.equal(u.lookup(1, "new", 100), 2);
  assert.equal(u.lookup(1, client(5), 100), -1);
  for (let i = 0; i < 16; i++) if (i !== 5) assert.equal(u.lookup(1, client(i), 100), 1, `client ${i}`);
});

test("persistence table: every process mapping the segment sees the same entries", () => {
  const segment = new PersistenceSegment(1000, segmentPath("persistence-test"));
  try {
    const worker = openPersistenceTable(segment.place);
    segment.table.remember(9, "192.0.2.1", 4, Date.now() + 60_000);
    assert.equal(worker.lookup(9, "192.0.2.1", Date.now()), 4);
    worker.remember(9, "192.0.2.2", 5, Date.now() + 60_000);
    assert.equal(segment.table.lookup(9, "192.0.2.2", Date.now()), 5);
  } finally {
    segment.remove();
  }
});
