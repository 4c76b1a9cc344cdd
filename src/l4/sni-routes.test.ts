import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultSniRoute, routeForSni, sniMatches } from "./sni-routes.ts";

test("sni-routes: exact names, and a leading wildcard for names under the domain at any depth", () => {
  assert.ok(sniMatches("api.example.com", "api.example.com"));
  assert.ok(!sniMatches("api.example.com", "x.api.example.com"));
  assert.ok(sniMatches("*.example.com", "a.example.com"));
  assert.ok(sniMatches("*.example.com", "a.b.example.com"));
  assert.ok(!sniMatches("*.example.com", "example.com"));
  assert.ok(!sniMatches("*.example.com", "badexample.com"));
});

test("sni-routes: first match wins; a route without names takes any name and none", () => {
  const routes = [
    { sni: ["*.example.com"], pool: "wild" },
    { sni: ["api.example.com"], pool: "never" }, // after the wildcard: never reached
    { sni: null, pool: "default" },
    { sni: ["late.test"], pool: "late" },
  ];
  assert.equal(routeForSni(routes, "api.example.com")?.pool, "wild");
  assert.equal(routeForSni(routes, "late.test")?.pool, "default");
  assert.equal(routeForSni(routes, null)?.pool, "default");
  assert.equal(defaultSniRoute(routes)?.pool, "default");
  assert.equal(routeForSni([{ sni: ["a.test"], pool: "a" }], "b.test"), null);
  assert.equal(defaultSniRoute([{ sni: ["a.test"], pool: "a" }]), null);
});
