import { test } from "node:test";
import assert from "node:assert/strict";
import { decomment, lex, LexError, splitWords } from "./lexer.ts";

test("import lexer: # and ! start comments outside quotes; \\# and \\! are the characters", () => {
  assert.equal(decomment("  priority 100   # the backup has 50"), "priority 100");
  assert.equal(decomment("! a whole comment line"), "");
  assert.equal(decomment('script "/bin/echo #1 !"  ! trailing'), 'script "/bin/echo #1 !"');
  assert.equal(decomment("auth_pass se\\#cr\\!t"), "auth_pass se#cr!t");
  assert.throws(() => decomment('script "/bin/true', 7), (e: unknown) => e instanceof LexError && e.line === 7);
});

test("import lexer: a quoted string is one word without its quotes", () => {
  assert.deepEqual(splitWords('notify_master "/etc/keepalived/notify.sh master" root'), ["notify_master", "/etc/keepalived/notify.sh master", "root"]);
  assert.deepEqual(splitWords("a\t b  c"), ["a", "b", "c"]);
  assert.deepEqual(splitWords('x ""'), ["x", ""]);
});

test("import lexer: braces stand alone wherever they are written, each token keeps its line", () => {
  const tokens = lex([
    "vrrp_instance VI_1{",
    "  authentication { auth_type PASS",
    "    auth_pass x }",
    "  virtual_ipaddress",
    "  {",
    "    10.0.0.1/24",
    "  }}",
    'vrrp_script s { script "echo {not a block}" }',
  ].join("\n"));
  const shape = tokens.map((t) => t.kind === "words" ? `${t.line}:${t.words.join(" ")}` : `${t.line}:${t.kind}`);
  assert.deepEqual(shape, [
    "1:vrrp_instance VI_1", "1:open",
    "2:authentication", "2:open", "2:auth_type PASS",
    "3:auth_pass x", "3:close",
    "4:virtual_ipaddress", "5:open", "6:10.0.0.1/24", "7:close", "7:close",
    "8:vrrp_script s", "8:open", "8:script echo {not a block}", "8:close",
  ]);
});

test("import lexer: include and its variants, and what the importer refuses", () => {
  const tokens = lex("include conf.d/*.conf\nincludea /etc/keepalived/{a,b}.conf  # both\ninclude_not_an_include x");
  assert.deepEqual(tokens.slice(0, 2), [
    { kind: "include", line: 1, include: "include", pattern: "conf.d/*.conf" },
    { kind: "include", line: 2, include: "includea", pattern: "/etc/keepalived/{a,b}.conf" },
  ]);
  assert.equal(tokens[2].kind, "words");
  for (const text of ["$IF=eth0", "@node1 priority 150", "~SEQ(n,1,3) x"]) {
    assert.throws(() => lex(`global_defs {\n${text}\n}`), (e: unknown) => e instanceof LexError && e.line === 2, text);
  }
});
