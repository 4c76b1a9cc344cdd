// Config errors of the access rules and route actions, each at its key path: prefixes, prefix
// files (by line), htpasswd files (by line, unsupported hash forms named), realm, and a route's
// one-of pool / redirect / respond.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { formatConfigErrors } from "../src/config/errors.ts";
import { parseConfigText } from "../src/control/schema.ts";
import type { Config } from "../src/control/schema.ts";

let dir = "";
before(() => { dir = mkdtempSync("/tmp/fulcrum-access-config-"); });
after(() => rmSync(dir, { recursive: true, force: true }));

function parse(text: string) {
  return parseConfigText(text, "test.yaml");
}

function lines(text: string): string[] {
  const r = parse(text);
  if (r.ok) assert.fail("expected config errors, got a valid config");
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

function valid(text: string): Config {
  const r = parse(text);
  if (!r.ok) assert.fail(formatConfigErrors("test.yaml", r.errors));
  return r.config;
}

function has(all: string[], expected: string | RegExp): void {
  const hit = all.some((l) => typeof expected === "string" ? l === expected : expected.test(l));
  assert.ok(hit, `expected ${expected}\ngot\n  ${all.join("\n  ")}`);
}

const head = `
listeners:
  - { name: main, bind: 127.0.0.1:8080 }
pools:
  web: { servers: [127.0.0.1:9000] }
`;

test("config: allow/deny prefixes are checked at their index; one prefix in both lists is an error", () => {
  const errs = lines(`${head}
routes:
  - { pool: web, allow: [10.0.0.0/8, 10.0.0.1/8, "2001:db8::/129", banana], deny: [10.0.0.0/8] }
`);
  has(errs, "routes[0].allow[1]: expected no address bits set past the prefix length (10.0.0.0/8?), got \"10.0.0.1/8\"");
  has(errs, "routes[0].allow[2]: expected a prefix length 0..128 after \"/\", got \"2001:db8::/129\"");
  has(errs, /^routes\[0\]\.allow\[3\]: expected an IPv4 or IPv6 prefix/);
});

test("config: the same prefix allowed and denied is refused", () => {
  has(lines(`${head}
routes:
  - { pool: web, allow: [10.0.0.0/8], deny: [10.0.0.0/8, 192.0.2.1] }
`), "routes[0].deny: expected each prefix in allow or deny, not both: 10.0.0.0/8");
});

test("config: a prefix file's bad lines are named by line; a missing file is named", () => {
  writeFileSync(`${dir}/deny.txt`, "# list\n10.0.0.0/8\n\nnot-a-prefix\n192.0.2.0/33\n");
  const errs = lines(`
listeners:
  - { name: main, bind: 127.0.0.1:8080, deny_file: ${dir}/deny.txt, allow_file: ${dir}/absent.txt }
pools:
  web: { servers: [127.0.0.1:9000] }
`);
  has(errs, new RegExp(`^listeners\\[0\\]\\.deny_file: ${dir}/deny\\.txt line 4: expected an IPv4 or IPv6 prefix`));
  has(errs, `listeners[0].deny_file: ${dir}/deny.txt line 5: expected a prefix length 0..32 after "/", got "192.0.2.0/33"`);
  has(errs, `listeners[0].allow_file: cannot read prefix file ${dir}/absent.txt: ENOENT`);
});

test("config: tcp and udp listeners take allow/deny too", () => {
  const c = valid(`
listeners:
  - { name: t, protocol: tcp, bind: 127.0.0.1:7000, pool: web, allow: [192.0.2.0/24], deny: [192.0.2.9] }
pools:
  web: { servers: [127.0.0.1:9000] }
`);
  assert.equal(c.l4Listeners[0].access?.allow.length, 1);
  assert.equal(c.l4Listeners[0].access?.deny.length, 1);
  has(lines(`
listeners:
  - { name: u, protocol: udp, bind: 127.0.0.1:7000, pool: web, deny: [300.1.1.1] }
pools:
  web: { servers: [127.0.0.1:9000] }
`), /^listeners\[0\]\.deny\[0\]: expected an IPv4 or IPv6 prefix/);
});

test("config: htpasswd lines with $apr1$, crypt() or plain text are refused by line; a good file reads", () => {
  writeFileSync(`${dir}/users`, [
    "alice:$2y$05$CKX9/k/sBUwtd09jk1AYvuSajwb168LsKf6p4QUrLX.CvDPJkTcey",
    "bob:{SHA}4/8EauNSRAt2M2wN8hy6sNnX6do=",
    "carol:$apr1$Vd0bm2Ik$w3IDJoQhpEDgwP9TPvXMo/",
    "dave:rqXexS6ZhobKA",
    "erin:secret",
    "",
  ].join("\n"));
  const errs = lines(`${head}
routes:
  - { pool: web, auth: { basic: { realm: staff, htpasswd: ${dir}/users } } }
`);
  const at = "routes[0].auth.basic.htpasswd";
  has(errs, `${at}: ${dir}/users line 3 (user "carol"): $apr1$ (Apache MD5) hashes are not supported; make the entry with htpasswd -B (bcrypt) or -s (SHA)`);
  has(errs, new RegExp(`^${at.replace(/[[\].]/g, "\\$&")}: ${dir}/users line 4 \\(user "dave"\\): crypt\\(\\) \\(DES\\) hashes are not supported`));
  has(errs, new RegExp(`line 5 \\(user "erin"\\): not a bcrypt or \\{SHA\\} hash`));
  assert.equal(errs.filter((e) => e.includes("line 1") || e.includes("line 2")).length, 0);
  writeFileSync(`${dir}/good`, "alice:$2y$05$CKX9/k/sBUwtd09jk1AYvuSajwb168LsKf6p4QUrLX.CvDPJkTcey\n");
  const c = valid(`${head}
routes:
  - { pool: web, auth: { basic: { realm: staff, htpasswd: ${dir}/good } } }
`);
  assert.equal(c.routes[0].auth?.file.users.size, 1);
  // The credentials stay at the edge.
  assert.ok(c.routes[0].requestHeaders.remove.includes("authorization"));
});

test("config: auth's keys, realm and file are checked", () => {
  const errs = lines(`${head}
routes:
  - { pool: web, auth: { basic: { realm: 'say "hi"', htpasswd: ${dir}/none } } }
  - { pool: web, auth: { digest: {} } }
`);
  has(errs, `routes[0].auth.basic.realm: expected a realm of printable characters without " or \\, got "say \\"hi\\""`);
  has(errs, `routes[0].auth.basic.htpasswd: cannot read htpasswd file ${dir}/none: ENOENT`);
  has(errs, /^routes\[1\]\.auth\.digest: unknown key/);
});

test("config: a route has exactly one of pool, redirect and respond", () => {
  const errs = lines(`${head}
routes:
  - { path: /a, pool: web, respond: { status: 200 } }
  - { path: /b }
  - { path: /c, redirect: { to: "https://x/", scheme: https } }
  - { path: /d, redirect: { to: "https://x/$nope" } }
  - { path: /e, redirect: { to: "https://x/", status: 200 } }
  - { path: /f, respond: { status: 204, body: "x" } }
  - { path: /g, respond: { status: 200, headers: { content-length: "5" } } }
  - { path: /h, respond: { body: "x" } }
  - { path: /i, redirect: { scheme: ftp } }
  - { path: /j, redirect: { to: "https://x/", port: 8443 } }
`);
  has(errs, "routes[0].respond: expected exactly one of pool, redirect and respond per route, got pool and respond");
  has(errs, "routes[1].pool: expected a pool name, got nothing");
  has(errs, "routes[2].redirect: expected to or scheme, not both");
  has(errs, "routes[3].redirect.to: unknown variable $nope (known: $scheme, $host, $request_uri, $uri, $args)");
  has(errs, "routes[4].redirect.status: expected one of 301, 302, 303, 307, 308, got 200");
  has(errs, "routes[5].respond.body: a 204 response has no body");
  has(errs, "routes[6].respond.headers.content-length: content-length is written by Fulcrum from the body");
  has(errs, "routes[7].respond.status: expected an integer 200..599, got nothing");
  has(errs, /^routes\[8\]\.redirect\.scheme: expected one of http, https, got "ftp"/);
  has(errs, "routes[9].redirect.port: port goes with scheme (a to URL names its own)");
});

test("config: redirect and respond routes read as actions with no pool", () => {
  const c = valid(`${head}
routes:
  - { path: /old, redirect: { to: "https://example.com/new" } }
  - { path: /healthz, respond: { status: 200, body: "ok" } }
  - { pool: web }
`);
  assert.deepEqual(c.routes[0].action, { kind: "redirect", status: 301, to: ["https://example.com/new"], scheme: null, port: null });
  assert.equal(c.routes[0].pool, "");
  assert.deepEqual(c.routes[1].action, { kind: "respond", status: 200, headers: [["content-type", "text/plain; charset=utf-8"]], body: "ok" });
  assert.equal(c.routes[2].action, null);
});
