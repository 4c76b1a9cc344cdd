import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { componentRegExp, expandBraces, globFiles, hasWildcards } from "./glob.ts";

let dir = "";

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "fulcrum-glob-"));
  for (const f of ["conf.d/b.conf", "conf.d/a.conf", "conf.d/.hidden.conf", "conf.d/notes.txt", "x/1.conf", "y/2.conf"]) {
    await mkdir(join(dir, f, ".."), { recursive: true });
    await writeFile(join(dir, f), "");
  }
  await mkdir(join(dir, "conf.d/sub.conf")); // a directory matching the pattern is left out
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("import glob: braces expand in the order written, nested and beside wildcards", () => {
  assert.deepEqual(expandBraces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
  assert.deepEqual(expandBraces("{x,y}/*.conf"), ["x/*.conf", "y/*.conf"]);
  assert.deepEqual(expandBraces("no{brace"), ["no{brace"]);
  assert.equal(hasWildcards("/etc/keepalived/keepalived.conf"), false);
  assert.equal(hasWildcards("conf.d/[ab].conf"), true);
  assert.equal(hasWildcards("{a,b}.conf"), true);
});

test("import glob: * ? and [...] match within one path component", () => {
  assert.ok(componentRegExp("*.conf").test("web.conf"));
  assert.ok(!componentRegExp("*.conf").test("web.conf.bak"));
  assert.ok(componentRegExp("web?.conf").test("web1.conf"));
  assert.ok(componentRegExp("[a-c]*.conf").test("b.conf"));
  assert.ok(!componentRegExp("[!a-c]*.conf").test("b.conf"));
  assert.ok(!componentRegExp("a.conf").test("abconf"), "a dot is literal");
});

test("import glob: files sorted, no hidden files and no directories, relative to the directory given", async () => {
  assert.deepEqual(await globFiles("conf.d/*.conf", dir), [join(dir, "conf.d/a.conf"), join(dir, "conf.d/b.conf")]);
  assert.deepEqual(await globFiles("conf.d/.*.conf", dir), [join(dir, "conf.d/.hidden.conf")]);
  assert.deepEqual(await globFiles("{y,x}/*.conf", dir), [join(dir, "y/2.conf"), join(dir, "x/1.conf")]);
  assert.deepEqual(await globFiles(join(dir, "*/1.conf"), "/nowhere"), [join(dir, "x/1.conf")], "an absolute pattern ignores the directory");
  assert.deepEqual(await globFiles("missing/*.conf", dir), []);
  assert.deepEqual(await globFiles("conf.d/a.conf", dir), [join(dir, "conf.d/a.conf")]);
});
