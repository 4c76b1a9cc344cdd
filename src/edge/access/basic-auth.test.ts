// BasicAuth's checks over an htpasswd file with a bcrypt and a SHA user (hashes made by Debian's
// htpasswd): what each kind of Authorization header gets, remembering, and the bound on checks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { BasicAuth, MAX_VERIFYING, MAX_WAITING } from "./basic-auth.ts";
import { readHtpasswd } from "./htpasswd.ts";

let dir = "", auth: BasicAuth;
const basic = (userPass: string) => `Basic ${btoa(userPass)}`;

before(() => {
  dir = mkdtempSync("/tmp/fulcrum-basic-auth-");
  // alice: "correct horse" (htpasswd -B -C 5), bob: "battery staple" (htpasswd -s).
  writeFileSync(`${dir}/users`, "alice:$2y$05$CKX9/k/sBUwtd09jk1AYvuSajwb168LsKf6p4QUrLX.CvDPJkTcey\nbob:{SHA}4/8EauNSRAt2M2wN8hy6sNnX6do=\n");
  const { file, errors } = readHtpasswd(`${dir}/users`);
  assert.deepEqual(errors, []);
  auth = new BasicAuth({ realm: "r", file });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("basic auth: no header or another scheme is missing credentials; bad base64, no colon, unknown user are wrong", () => {
  assert.equal(auth.check(null), "missing");
  assert.equal(auth.check("Bearer abc"), "missing");
  assert.equal(auth.check("Basic a"), "wrong");
  assert.equal(auth.check(`Basic ${btoa("alice")}`), "wrong");
  assert.equal(auth.check(basic("mallory:x")), "wrong");
});

test("basic auth: SHA is checked at once; bcrypt is a promise, and a success is remembered", async () => {
  assert.equal(auth.check(basic("bob:battery staple")), "ok");
  assert.equal(auth.check(basic("bob:battery")), "wrong");
  const first = auth.check(basic("alice:correct horse"));
  assert.ok(first instanceof Promise);
  assert.equal(await first, "ok");
  const ran = auth.bcryptChecks;
  assert.equal(auth.check(basic("alice:correct horse")), "ok"); // remembered: no bcrypt this time
  assert.equal(auth.check("basic   " + btoa("alice:correct horse")), "ok"); // scheme case and spaces
  assert.equal(auth.bcryptChecks, ran);
  const wrong = auth.check(basic("alice:correct horsE"));
  assert.ok(wrong instanceof Promise);
  assert.equal(await wrong, "wrong");
});

// 260 bcrypt checks at cost 4: about a second here, more on a loaded machine (hence the timeout).
test("basic auth: at most MAX_VERIFYING bcrypt checks run, MAX_WAITING wait, more are busy", { timeout: 60_000 }, async () => {
  writeFileSync(`${dir}/cheap`, "alice:$2y$04$7t3DCCSkHk879HdHtuWSUuRAg18ASxSX53nPEx2gwHQv6pfoOtU3m\n");
  const fresh = new BasicAuth({ realm: "r", file: readHtpasswd(`${dir}/cheap`).file });
  const checks = Array.from({ length: MAX_VERIFYING + MAX_WAITING }, (_, i) => fresh.check(basic(`alice:guess ${i}`)));
  assert.ok(checks.every((c) => c instanceof Promise));
  assert.equal(fresh.check(basic("alice:one more")), "busy");
  assert.equal(fresh.busy, 1);
  const results = await Promise.all(checks);
  assert.ok(results.every((r) => r === "wrong"));
  assert.equal(fresh.bcryptChecks, MAX_VERIFYING + MAX_WAITING);
  // The queue drained: checks are taken again.
  assert.ok(fresh.check(basic("alice:later")) instanceof Promise);
});
