// The VRRP state machine: pure logic fed events with their time (no sockets, no timers), checked
// through the effects it returns (send, transition, announce) and the deadline it asks for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseIP } from "./ip.ts";
import { type Effect, type MachineOptions, VrrpMachine } from "./machine.ts";

const ip = (s: string) => parseIP(s)!.bytes;

function machine(over: Partial<MachineOptions> = {}): VrrpMachine {
  return new VrrpMachine({
    version: 3, priority: 100, intervalCs: 100, preempt: true, preemptDelayMs: 0, localAddress: ip("10.0.0.2"), ...over,
  });
}
const transitions = (effects: Effect[]) => effects.filter((e) => e.kind === "transition").map((e) => e.kind === "transition" && `${e.from}->${e.to}`);
const sends = (effects: Effect[]) => effects.filter((e) => e.kind === "send").map((e) => e.kind === "send" && e.priority);
const peer = (priority: number, source = "10.0.0.9", intervalCs = 100) => ({ priority, intervalCs, source: ip(source) });

test("vrrp: master-down interval and skew follow RFC 9568 (v3) and RFC 3768 (v2)", () => {
  const m = machine({ priority: 100, intervalCs: 100 });
  assert.equal(m.skewMs(), (156 * 100 * 10) / 256); // 609.375 ms
  assert.equal(m.masterDownMs(), 3000 + 609.375);
  const fast = machine({ priority: 200, intervalCs: 10 });
  assert.equal(fast.masterDownMs(), 300 + (56 * 10 * 10) / 256);
  const v2 = machine({ version: 2, priority: 100, intervalCs: 300 });
  assert.equal(v2.skewMs(), (156 / 256) * 1000);
  assert.equal(v2.masterDownMs(), 9000 + (156 / 256) * 1000);
});

test("vrrp: a lone backup becomes master when the master-down timer expires, then advertises", () => {
  const m = machine();
  assert.deepEqual(transitions(m.start(0)), ["INIT->BACKUP"]);
  const down = m.nextDeadline()!;
  assert.equal(down, m.masterDownMs());
  assert.deepEqual(m.tick(down - 1), []);
  const effects = m.tick(down);
  assert.deepEqual(transitions(effects), ["BACKUP->MASTER"]);
  assert.deepEqual(sends(effects), [100]);
  assert.match(JSON.stringify(effects), /master down timer expired/);
  assert.equal(m.nextDeadline(), down + 1000);
  assert.deepEqual(sends(m.tick(down + 1000)), [100]);
});

test("vrrp: the address owner (255) starts as master", () => {
  const m = machine({ priority: 255 });
  const effects = m.start(0);
  assert.deepEqual(transitions(effects), ["INIT->MASTER"]);
  assert.deepEqual(sends(effects), [255]);
});

test("vrrp: adverts from an equal or higher master hold a backup down; v3 learns the master's interval", () => {
  const m = machine({ priority: 100 });
  m.start(0);
  m.receive(3000, peer(100, "10.0.0.9", 50));
  assert.equal(m.masterIntervalCs, 50);
  assert.equal(m.nextDeadline(), 3000 + m.masterDownMs());
  assert.equal(m.masterDownMs(), 1500 + (156 * 50 * 10) / 256);
  assert.deepEqual(m.tick(3100), []);
  assert.equal(m.state, "BACKUP");
});

test("vrrp: a backup with preempt ignores a lower-priority master and takes over at master-down", () => {
  const m = machine({ priority: 200 });
  m.start(0);
  const down = m.nextDeadline()!;
  m.receive(1000, peer(100));
  m.receive(2000, peer(100));
  assert.equal(m.nextDeadline(), down, "lower-priority adverts do not reset the timer");
  assert.deepEqual(transitions(m.tick(down)), ["BACKUP->MASTER"]);
});

test("vrrp: nopreempt keeps a higher-priority backup behind a live lower-priority master", () => {
  const m = machine({ priority: 200, preempt: false });
  m.start(0);
  for (let t = 1000; t <= 20_000; t += 1000) {
    m.receive(t, peer(100));
    assert.deepEqual(m.tick(t), []);
  }
  assert.equal(m.state, "BACKUP");
  assert.deepEqual(transitions(m.tick(20_000 + m.masterDownMs())), ["BACKUP->MASTER"], "it still takes over when the master dies");
});

test("vrrp: preempt_delay tolerates a lower-priority master for the delay, then preempts", () => {
  const m = machine({ priority: 200, preemptDelayMs: 5000 });
  m.start(0);
  for (let t = 1000; t < 6000; t += 1000) {
    m.receive(t, peer(100));
    assert.deepEqual(m.tick(t), [], `still backup at ${t}`);
  }
  assert.equal(m.nextDeadline(), 6000);
  const effects = m.tick(6000);
  assert.deepEqual(transitions(effects), ["BACKUP->MASTER"]);
  assert.match(JSON.stringify(effects), /preempt_delay over/);
  // An equal or higher advert in between cancels the pending preemption.
  const n = machine({ priority: 200, preemptDelayMs: 5000 });
  n.start(0);
  n.receive(1000, peer(100));
  n.receive(2000, peer(250));
  assert.equal(n.nextDeadline(), 2000 + n.masterDownMs());
});

test("vrrp: a priority-0 advert makes the backup take over after only its skew time", () => {
  const m = machine({ priority: 100 });
  m.start(0);
  m.receive(1000, peer(150));
  m.receive(1500, peer(0));
  assert.equal(m.nextDeadline(), 1500 + m.skewMs());
  const effects = m.tick(1500 + m.skewMs());
  assert.deepEqual(transitions(effects), ["BACKUP->MASTER"]);
  assert.match(JSON.stringify(effects), /master gave up \(priority 0 advert\)/);
  assert.equal(effects[0].kind, "send", "the advert goes out before the addresses are taken");
});

test("vrrp: a master steps down for a higher priority, and for an equal one from a higher address", () => {
  const up = machine({ priority: 100, localAddress: ip("10.0.0.5") });
  up.start(0);
  up.tick(up.nextDeadline()!);
  assert.equal(up.state, "MASTER");
  const effects = up.receive(5000, peer(150, "10.0.0.1", 20));
  assert.deepEqual(transitions(effects), ["MASTER->BACKUP"]);
  assert.deepEqual(sends(effects), [100], "one last advert, so a split-brain winner learns of us");
  assert.equal(up.masterIntervalCs, 20);

  const tie = machine({ priority: 100, localAddress: ip("10.0.0.5") });
  tie.start(0);
  tie.tick(tie.nextDeadline()!);
  assert.deepEqual(transitions(tie.receive(5000, peer(100, "10.0.0.4"))), [], "a lower address loses the tie");
  assert.deepEqual(transitions(tie.receive(5100, peer(100, "10.0.0.6"))), ["MASTER->BACKUP"]);
});

test("vrrp: a master hearing a lower-priority master re-asserts and re-announces, rate limited", () => {
  const m = machine({ priority: 150 });
  m.start(0);
  m.tick(m.nextDeadline()!);
  const first = m.receive(10_000, peer(100));
  assert.deepEqual(sends(first), [150]);
  assert.ok(first.some((e) => e.kind === "announce"));
  const again = m.receive(10_500, peer(100));
  assert.deepEqual(sends(again), [150]);
  assert.ok(!again.some((e) => e.kind === "announce"), "not twice within a master-down interval");
  assert.ok(m.receive(20_000, peer(100)).some((e) => e.kind === "announce"));
});

test("vrrp: shutdown and fault from master send priority 0; recovery rejoins as backup", () => {
  const m = machine();
  m.start(0);
  m.tick(m.nextDeadline()!);
  const fault = m.fault(5000, "eth1 down");
  assert.deepEqual(sends(fault), [0]);
  assert.deepEqual(transitions(fault), ["MASTER->FAULT"]);
  assert.equal(m.nextDeadline(), null);
  assert.deepEqual(m.receive(5100, peer(50)), [], "adverts are ignored in FAULT");
  assert.deepEqual(transitions(m.recover(6000, "eth1 up")), ["FAULT->BACKUP"]);
  const stop = m.stop(7000);
  assert.deepEqual(sends(stop), [], "a backup has nothing to give up");
  assert.deepEqual(transitions(stop), ["BACKUP->INIT"]);
  // A master's shutdown gives up at once with priority 0, so the backup need not wait out master-down.
  const master = machine();
  master.start(0);
  master.tick(master.nextDeadline()!);
  const shutdown = master.stop(8000);
  assert.deepEqual(sends(shutdown), [0]);
  assert.deepEqual(transitions(shutdown), ["MASTER->INIT"]);
  assert.equal(master.nextDeadline(), null, "stopped: nothing more to send");
});

test("vrrp: a master whose priority drops advertises it at once; a sync group can force states", () => {
  const m = machine({ priority: 150 });
  m.start(0);
  m.tick(m.nextDeadline()!);
  assert.deepEqual(sends(m.setPriority(5000, 90)), [90]);
  assert.equal(m.priority, 90);
  assert.deepEqual(transitions(m.force(5100, "BACKUP", "sync group")), ["MASTER->BACKUP"]);
  assert.deepEqual(transitions(m.force(5200, "MASTER", "sync group")), ["BACKUP->MASTER"]);
  assert.deepEqual(transitions(m.force(5300, "FAULT", "sync group")), ["MASTER->FAULT"]);
  assert.deepEqual(m.force(5400, "MASTER", "sync group"), [], "a faulted member stays in FAULT");
});
