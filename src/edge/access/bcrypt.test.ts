// bcrypt against hashes Debian's htpasswd made (`htpasswd -nbB -C 5 USER PASSWORD`, apache2-utils
// 2.4), and Blowfish's initial state against the digits of pi its description quotes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bcryptHash, bcryptVerify, blowfishInitialState, parseBcrypt, type BcryptHash } from "./bcrypt.ts";

// user, password, what htpasswd wrote.
const VECTORS: [string, string][] = [
  ["correct horse", "$2y$05$CKX9/k/sBUwtd09jk1AYvuSajwb168LsKf6p4QUrLX.CvDPJkTcey"],
  ["correct horse", "$2y$04$7t3DCCSkHk879HdHtuWSUuRAg18ASxSX53nPEx2gwHQv6pfoOtU3m"],
  ["", "$2y$05$.IvDpw9x5ZKtELOel7Si/eKPhsV5FWUUk3Wt6vyfunM.pPI8H.ko6"],
  ["pässwörd", "$2y$05$emYpxZiWLCMGevf.ea7ePOAOppu7afmkWwd9LZai83FikiNsJH/IO"],
  // 80 bytes: bcrypt reads 72 of them.
  ["a".repeat(80), "$2y$04$n1ohDZmAAqrmQZrME2w48eof5GItBrC/DGZKNIxB.yTcWhUcs9rsq"],
];

function parsed(hash: string): BcryptHash {
  const h = parseBcrypt(hash);
  assert.ok(typeof h !== "string", String(h));
  return h;
}

test("blowfish's initial state is pi's fractional hex digits (P[0], P[17], S0[0], S3[255])", () => {
  const s = blowfishInitialState();
  assert.equal(s[0], 0x243f6a88);
  assert.equal(s[1], 0x85a308d3);
  assert.equal(s[17], 0x8979fb1b);
  assert.equal(s[18], 0xd1310ba6);
  assert.equal(s[18 + 1023], 0x3ac372e6);
});

test("bcrypt: the hashes htpasswd made come out the same, salt and all", () => {
  for (const [password, hash] of VECTORS) {
    const h = parsed(hash);
    assert.equal(bcryptHash(password, h.cost, h.salt), hash, JSON.stringify(password));
  }
});

test("bcrypt: verify accepts the right password and refuses a wrong one; bytes past 72 do not count", async () => {
  for (const [password, hash] of VECTORS) {
    assert.equal(await bcryptVerify(password, parsed(hash)), true);
    assert.equal(await bcryptVerify(password + "x", parsed(hash)), password.length >= 72);
  }
  assert.equal(await bcryptVerify("correct hors", parsed(VECTORS[0][1])), false);
  assert.equal(await bcryptVerify("Correct horse", parsed(VECTORS[0][1])), false);
});

test("bcrypt: $2a$ and $2b$ hashes are the same computation", () => {
  const h = parsed(VECTORS[0][1]);
  assert.equal(bcryptHash("correct horse", h.cost, h.salt, "2b"), VECTORS[0][1].replace("$2y$", "$2b$"));
  assert.ok(typeof parseBcrypt(VECTORS[0][1].replace("$2y$", "$2a$")) !== "string");
});

test("bcrypt: malformed hashes are refused with what was expected", () => {
  assert.match(String(parseBcrypt("$2y$05$short")), /53 characters/);
  assert.match(String(parseBcrypt("$2y$03$CKX9/k/sBUwtd09jk1AYvuSajwb168LsKf6p4QUrLX.CvDPJkTcey")), /cost 04\.\.31/);
  assert.match(String(parseBcrypt("$2x$05$CKX9/k/sBUwtd09jk1AYvuSajwb168LsKf6p4QUrLX.CvDPJkTcey")), /\$2y\$NN\$/);
});

test("bcrypt: verification yields to the event loop between slices of its cost loop", async () => {
  const h = parsed(VECTORS[0][1]);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  let checks = 0;
  await Promise.all(Array.from({ length: 4 }, async () => { if (await bcryptVerify("correct horse", { ...h, cost: 8 })) checks++; }));
  clearInterval(timer);
  assert.equal(checks, 0); // cost 8 is not the cost the hash was made with
  assert.ok(ticks > 0, "a timer ran while four cost-8 checks were under way");
});
