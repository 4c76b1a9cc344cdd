// The layout docs/architecture.md describes, checked over the imports (scripts/check-imports.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkImports } from "../scripts/check-imports.ts";

test("layout: health, vrrp and the balancer never import the edge; config imports no part; no import circles", () => {
  const breaches = checkImports().map((b) => `${b.rule}: ${b.detail}`);
  assert.deepEqual(breaches, []);
});
