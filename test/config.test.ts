import { test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "../src/config/duration.ts";
import { type ConfigError, didYouMean, formatConfigErrors } from "../src/config/errors.ts";
import { parseConfigText as parseConfig } from "../src/control/schema.ts";
import type { Config } from "../src/control/schema.ts";
import { formatHostPort } from "../src/config/address.ts";

// ------------------------------------------------------------------------------------------ helpers

/** Template tag that strips the common leading indentation, so YAML can be written indented in the test. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, "");
  const indents = text.split("\n").filter((line) => line.trim() !== "").map((line) => /^ */.exec(line)![0].length);
  const common = Math.min(...indents);
  return text.split("\n").map((line) => line.slice(common)).join("\n");
}

function configOf(text: string): Config {
  const result = parseConfig(text, "test.yaml");
  if (!result.ok) assert.fail(`expected a valid config, got:\n${formatConfigErrors("test.yaml", result.errors)}`);
  return result.config;
}

function errorsOf(text: string): ConfigError[] {
  const result = parseConfig(text, "test.yaml");
  if (result.ok) assert.fail("expected config errors, got a valid config");
  return result.errors;
}

/** "path: message" for each error, which is what operators read. */
function errorLinesOf(text: string): string[] {
  return errorsOf(text).map((error) => `${error.path}: ${error.message}`);
}

function assertHasError(text: string, expected: string): void {
  const lines = errorLinesOf(text);
  assert.ok(lines.includes(expected), `expected error\n  ${expected}\ngot\n  ${lines.join("\n  ")}`);
}

function assertHasErrorStartingWith(text: string, prefix: string): void {
  const lines = errorLinesOf(text);
  const found = lines.some((line) => line.startsWith(prefix));
  assert.ok(found, `expected an error starting\n  ${prefix}\ngot\n  ${lines.join("\n  ")}`);
}

/** A valid config around one pool body (indented under `pools.api`). */
function withPool(poolBody: string): string {
  const body = poolBody.split("\n").map((line) => `    ${line}`).join("\n");
  return `listeners:\n  - bind: 127.0.0.1:8080\npools:\n  api:\n${body}\n`;
}

/** A valid config whose pool's second server is the given mapping body. */
function withServer(serverBody: string): string {
  const [first, ...rest] = serverBody.split("\n");
  const body = [`  - ${first}`, ...rest.map((line) => `    ${line}`)].join("\n");
  return withPool(`servers:\n  - 127.0.0.1:9001\n${body}`);
}

/** A valid config (two listeners, pools api and web) with one route given by its body. */
function withRoute(routeBody: string): string {
  const [first, ...rest] = routeBody.split("\n");
  const body = [`  - ${first}`, ...rest.map((line) => `    ${line}`)].join("\n");
  return yaml`
    listeners:
      - name: web
        bind: 127.0.0.1:8080
      - name: admin
        bind: 127.0.0.1:8081
    pools:
      api:
        servers: [127.0.0.1:9001]
      web:
        servers: [127.0.0.1:9002]
    routes:
  ` + body + "\n";
}

// ---------------------------------------------------------------------------------- valid configs

test("config: a full valid config normalizes with defaults", () => {
  const config = configOf(yaml`
    hash_seed: 12345
    listeners:
      - name: web
        bind: 127.0.0.1:8080
        protocol: http
      - bind: ":8081"
    routes:
      - name: api
        listeners: [web]
        host: [API.Example.com, "*.example.com"]
        path_prefix: /v1
        method: [get, HEAD]
        headers:
          X-Env: prod
          X-Tenant: "~^t[0-9]+$"
        pool: api
        request_headers:
          set: { X-Team: core }
          add: { X-Trace: "on" }
          remove: [X-Debug]
        response_headers:
          remove: Server
      - listeners: ":8081"
        path_regex: ^/static/.*\.css$
        pool: static
    pools:
      api:
        scheduler: wlc
        connect_timeout: 2s
        read_timeout: 1m30s
        servers:
          - address: 127.0.0.1:9001
            weight: 3
            backup: false
            max_fails: 0
            fail_timeout: 1.5s
            max_conns: 100
          - address: "[::1]:9002"
            backup: true
            down: true
          - 10.0.0.3:9003
      static:
        scheduler: ketama
        servers: [static.internal:80]
  `);

  assert.equal(config.hashSeed, 12345);
  const listenerDefaults = {
    tls: null, http2: false, requestId: true, acceptProxy: false, clientLimits: { rate: null, conn: null }, access: null,
    limits: {
      maxConnections: 10_000, maxHeaderBytes: 32_768, maxHeaderCount: 100, maxBodyBytes: 0,
      headerTimeoutMs: 10_000, bodyTimeoutMs: 60_000, idleTimeoutMs: 75_000,
    },
  };
  assert.deepEqual(config.listeners, [
    { name: "web", bind: { host: "127.0.0.1", port: 8080 }, protocol: "http", ...listenerDefaults },
    { name: ":8081", bind: { host: "0.0.0.0", port: 8081 }, protocol: "http", ...listenerDefaults },
  ]);

  const [api, assets] = config.routes;
  assert.equal(api.name, "api");
  assert.deepEqual(api.listeners, ["web"]);
  assert.deepEqual(api.hosts, ["api.example.com", "*.example.com"]);
  assert.deepEqual(api.path, { kind: "prefix", value: "/v1" });
  assert.deepEqual(api.methods, ["GET", "HEAD"]);
  assert.equal(api.headers.length, 2);
  assert.deepEqual(api.headers[0], { name: "x-env", exact: "prod" });
  assert.equal(api.headers[1].name, "x-tenant");
  assert.ok(api.headers[1].re?.test("t42"));
  assert.equal(api.pool, "api");
  assert.deepEqual(api.requestHeaders, { set: [["x-team", "core"]], add: [["x-trace", "on"]], remove: ["x-debug"] });
  assert.deepEqual(api.responseHeaders, { set: [], add: [], remove: ["server"] });

  assert.equal(assets.name, "route1");
  assert.deepEqual(assets.listeners, [":8081"]);
  assert.equal(assets.hosts, null);
  assert.equal(assets.methods, null);
  assert.deepEqual(assets.headers, []);
  assert.equal(assets.path?.kind, "regex");
  assert.ok(assets.path?.kind === "regex" && assets.path.re.test("/static/site.css"));
  assert.deepEqual(assets.requestHeaders, { set: [], add: [], remove: [] });

  const [apiPool, staticPool] = config.pools;
  assert.deepEqual(apiPool, {
    name: "api",
    scheduler: "wlc",
    hashKey: null,
    connectTimeoutMs: 2_000,
    sorryServer: null,
    queue: { size: 100, timeoutMs: 5_000 },
    persistenceMs: 0,
    http: {
      readTimeoutMs: 90_000,
      protocol: "http1",
      retry: { tries: 0, timeoutMs: 0, on: new Set(["error", "timeout"]), statuses: new Set(), nonIdempotent: false },
      sticky: null,
    },
    health: { checks: [], slowstartMs: 0, outlier: null, panicThreshold: 0, quorum: 1 },
    discovery: null,
    l4: { sendProxy: null },
    servers: [
      {
        address: { host: "127.0.0.1", port: 9001 },
        weight: 3,
        backup: false,
        down: false,
        maxFails: 0,
        failTimeoutMs: 1_500,
        maxConns: 100,
      },
      {
        address: { host: "::1", port: 9002 },
        weight: 1,
        backup: true,
        down: true,
        maxFails: 1,
        failTimeoutMs: 10_000,
        maxConns: 0,
      },
      {
        address: { host: "10.0.0.3", port: 9003 },
        weight: 1,
        backup: false,
        down: false,
        maxFails: 1,
        failTimeoutMs: 10_000,
        maxConns: 0,
      },
    ],
  });
  // ketama hashes the client address unless the pool names a key.
  assert.equal(staticPool.scheduler, "ketama");
  assert.deepEqual(staticPool.hashKey, { kind: "source" });
  assert.equal(staticPool.connectTimeoutMs, 5_000);
  assert.equal(staticPool.http.readTimeoutMs, 60_000);
});

test("config: a single pool without routes gets one catch-all route and default settings", () => {
  const config = configOf(yaml`
    listeners:
      - bind: 127.0.0.1:8080
    pools:
      only:
        servers: [127.0.0.1:9001]
  `);
  assert.equal(config.hashSeed, null);
  assert.deepEqual(config.routes, [{
    name: "route0",
    listeners: null,
    hosts: null,
    path: null,
    methods: null,
    headers: [],
    pool: "only",
    action: null,
    access: null,
    auth: null,
    requestHeaders: { set: [], add: [], remove: [] },
    responseHeaders: { set: [], add: [], remove: [] },
    clientLimits: { rate: null, conn: null },
  }]);
  assert.equal(config.pools[0].scheduler, "wrr");
  assert.equal(config.pools[0].hashKey, null);
  assert.equal(config.listeners[0].name, "127.0.0.1:8080");
});

test("config: an empty routes list with a single pool also gets the catch-all route", () => {
  const config = configOf(withPool("servers: [127.0.0.1:9001]").replace("pools:", "routes: []\npools:"));
  assert.equal(config.routes.length, 1);
  assert.equal(config.routes[0].pool, "api");
});

test("config: hash_key forms are normalized", () => {
  const keyOf = (hashKey: string) =>
    configOf(withPool(`scheduler: sh\nhash_key: "${hashKey}"\nservers: [127.0.0.1:9001]`)).pools[0].hashKey;
  assert.deepEqual(keyOf("uri"), { kind: "uri" });
  assert.deepEqual(keyOf("host"), { kind: "host" });
  assert.deepEqual(keyOf("header:X-Tenant"), { kind: "header", name: "x-tenant" });
  assert.deepEqual(keyOf("cookie:SessionId"), { kind: "cookie", name: "SessionId" });
  assert.deepEqual(keyOf("arg:user"), { kind: "arg", name: "user" });
  // dh hashes the URI by default.
  assert.deepEqual(configOf(withPool("scheduler: dh\nservers: [127.0.0.1:9001]")).pools[0].hashKey, { kind: "uri" });
});

test("config: formatHostPort brackets IPv6 hosts", () => {
  assert.equal(formatHostPort({ host: "::1", port: 80 }), "[::1]:80");
  assert.equal(formatHostPort({ host: "10.0.0.1", port: 8080 }), "10.0.0.1:8080");
  assert.equal(formatHostPort({ host: "backend.internal", port: 443 }), "backend.internal:443");
});

// ------------------------------------------------------------------------------ one error per kind

// deno-fmt-ignore -- one case per line reads best
const SERVER_ERRORS: [string, string, string][] = [
  ["weight that is not a number", `address: 127.0.0.1:9002\nweight: heavy`, `pools.api.servers[1].weight: expected an integer 0..256, got "heavy"`],
  ["weight out of range", `address: 127.0.0.1:9002\nweight: 257`, `pools.api.servers[1].weight: expected an integer 0..256, got 257`],
  ["fractional weight", `address: 127.0.0.1:9002\nweight: 1.5`, `pools.api.servers[1].weight: expected an integer 0..256, got 1.5`],
  ["misspelt key", `address: 127.0.0.1:9002\nwieght: 2`, `pools.api.servers[1].wieght: unknown key (did you mean "weight"?)`],
  ["string boolean", `address: 127.0.0.1:9002\nbackup: "true"`, `pools.api.servers[1].backup: expected true or false, got "true"`],
  ["yes is not a boolean", `address: 127.0.0.1:9002\ndown: yes`, `pools.api.servers[1].down: expected true or false, got "yes"`],
  ["quoted integer", `address: 127.0.0.1:9002\nmax_fails: "3"`, `pools.api.servers[1].max_fails: expected an integer 0..1000, got "3"`],
  ["negative max_conns", `address: 127.0.0.1:9002\nmax_conns: -1`, `pools.api.servers[1].max_conns: expected an integer 0..1000000, got -1`],
  ["bare number duration", `address: 127.0.0.1:9002\nfail_timeout: 5`, `pools.api.servers[1].fail_timeout: expected a duration like "2s" or "150ms", got 5`],
  ["duration without unit", `address: 127.0.0.1:9002\nfail_timeout: "10"`, `pools.api.servers[1].fail_timeout: expected a duration like "2s" or "150ms", got "10"`],
  ["missing address", `weight: 2`, `pools.api.servers[1].address: expected "host:port" or "[ipv6]:port" with port 1..65535, got nothing`],
  ["address without host", `address: ":9002"`, `pools.api.servers[1].address: expected "host:port" or "[ipv6]:port" with port 1..65535, got ":9002"`],
  ["port out of range", `address: 127.0.0.1:65536`, `pools.api.servers[1].address: expected "host:port" or "[ipv6]:port" with port 1..65535, got "127.0.0.1:65536"`],
  ["unbracketed IPv6", `address: "::1:9002"`, `pools.api.servers[1].address: expected "host:port" or "[ipv6]:port" with port 1..65535, got "::1:9002"`],
  ["duplicate address", `address: 127.0.0.1:9001`, `pools.api.servers[1].address: expected each server once per pool, got 127.0.0.1:9001 again (servers[0])`],
];

for (const [what, serverBody, expected] of SERVER_ERRORS) {
  test(`config: server error, ${what}`, () => assertHasError(withServer(serverBody), expected));
}

// deno-fmt-ignore -- one case per line reads best
const POOL_ERRORS: [string, string, string][] = [
  ["unknown scheduler", `scheduler: wrrr\nservers: [127.0.0.1:9001]`, `pools.api.scheduler: expected one of rr, wrr, lc, wlc, sed, nq, dh, sh, lblc, lblcr, mh, ketama, random, two, first, least_time, got "wrrr" (did you mean "wrr"?)`],
  ["unknown hash key", `hash_key: srouce\nservers: [127.0.0.1:9001]`, `pools.api.hash_key: expected one of source, uri, host, header:NAME, cookie:NAME, arg:NAME, got "srouce" (did you mean "source"?)`],
  ["header hash key without a name", `hash_key: "header:"\nservers: [127.0.0.1:9001]`, `pools.api.hash_key: expected one of source, uri, host, header:NAME, cookie:NAME, arg:NAME, got "header:"`],
  ["zero connect timeout", `connect_timeout: 0s\nservers: [127.0.0.1:9001]`, `pools.api.connect_timeout: expected a duration greater than zero, got "0s"`],
  ["number read timeout", `read_timeout: 60\nservers: [127.0.0.1:9001]`, `pools.api.read_timeout: expected a duration like "2s" or "150ms", got 60`],
  ["missing servers", `scheduler: rr`, `pools.api.servers: expected a non-empty list of servers, got nothing`],
  ["empty servers", `servers: []`, `pools.api.servers: expected a non-empty list of servers, got an empty list`],
  ["duplicate shorthand server", `servers: [127.0.0.1:9001, 127.0.0.1:9001]`, `pools.api.servers[1]: expected each server once per pool, got 127.0.0.1:9001 again (servers[0])`],
  ["server of the wrong type", `servers: [9001]`, `pools.api.servers[0]: expected a server mapping with address, or an address string like "10.0.0.1:80", got 9001`],
  ["misspelt pool key", `server: [127.0.0.1:9001]`, `pools.api.server: unknown key (did you mean "servers"?)`],
];

for (const [what, poolBody, expected] of POOL_ERRORS) {
  test(`config: pool error, ${what}`, () => assertHasError(withPool(poolBody), expected));
}

// deno-fmt-ignore -- one case per line reads best
const ROUTE_ERRORS: [string, string, string][] = [
  ["unknown pool", `pool: apii`, `routes[0].pool: expected the name of a defined pool, got "apii" (did you mean "api"?)`],
  ["unknown pool, nothing close", `pool: billing`, `routes[0].pool: expected the name of a defined pool, got "billing"`],
  ["missing pool", `path: /x`, `routes[0].pool: expected a pool name, got nothing`],
  ["unknown listener", `pool: api\nlisteners: [web, admn]`, `routes[0].listeners[1]: expected the name of a defined listener, got "admn" (did you mean "admin"?)`],
  ["prefix without slash", `pool: api\npath_prefix: v1`, `routes[0].path_prefix: expected a path starting with "/", got "v1"`],
  ["two path kinds", `pool: api\npath_prefix: /v1\npath_regex: ^/v2`, `routes[0].path_regex: expected at most one of path_prefix, path, path_regex per route, got path_prefix and path_regex`],
  ["bad host", `pool: api\nhost: "api example.com"`, `routes[0].host: expected a host name like "api.example.com" or "*.example.com", got "api example.com"`],
  ["wildcard in the middle", `pool: api\nhost: [ok.com, "api.*.com"]`, `routes[0].host[1]: expected a host name like "api.example.com" or "*.example.com", got "api.*.com"`],
  ["bad method", `pool: api\nmethod: [GET, "PO ST"]`, `routes[0].method[1]: expected an HTTP method like GET, got "PO ST"`],
  ["unquoted number header value", `pool: api\nheaders: { X-Version: 1.10 }`, `routes[0].headers.X-Version: expected a header value string (quote numbers and booleans), got 1.1`],
  ["bad header name", `pool: api\nheaders: { "X Env": prod }`, `routes[0].headers["X Env"]: expected a header name of HTTP token characters, got "X Env"`],
  ["misspelt rewrite key", `pool: api\nrequest_headers: { sett: { A: b } }`, `routes[0].request_headers.sett: unknown key (did you mean "set"?)`],
  ["bad header name to remove", `pool: api\nresponse_headers: { remove: [Server, "X:Y"] }`, `routes[0].response_headers.remove[1]: expected a header name of HTTP token characters, got "X:Y"`],
  ["misspelt route key", `pool: api\npath_prefx: /v1`, `routes[0].path_prefx: unknown key (did you mean "path_prefix"?)`],
];

for (const [what, routeBody, expected] of ROUTE_ERRORS) {
  test(`config: route error, ${what}`, () => assertHasError(withRoute(routeBody), expected));
}

test("config: route error, duplicate route names", () => {
  const text = withRoute("name: same\npool: api").replace(/$/, "  - name: same\n    pool: web\n");
  assertHasError(text, `routes[1].name: expected a unique route name, got "same" again (routes[0])`);
});

test("config: route error, a regular expression that does not compile", () => {
  // The engine's own explanation follows in parentheses, and differs between runtimes.
  const badPath = withRoute(`pool: api\npath_regex: "^/(v1"`);
  assertHasErrorStartingWith(badPath, `routes[0].path_regex: expected a valid regular expression, got "^/(v1" (`);
  const badHeader = withRoute(`pool: api\nheaders: { X-Env: "~[" }`);
  assertHasErrorStartingWith(badHeader, `routes[0].headers.X-Env: expected a valid regular expression, got "[" (`);
});

// deno-fmt-ignore -- one case per line reads best
const LISTENER_ERRORS: [string, string, string][] = [
  ["missing listeners", `pools: { api: { servers: [127.0.0.1:9001] } }`, `listeners: expected a non-empty list of listeners, got nothing`],
  ["bind as a number", `listeners: [{ bind: 8080 }]`, `listeners[0].bind: expected "host:port", "[ipv6]:port" or ":port" with port 1..65535, got 8080`],
  ["port zero", `listeners: [{ bind: ":0" }]`, `listeners[0].bind: expected "host:port", "[ipv6]:port" or ":port" with port 1..65535, got ":0"`],
  ["unknown protocol", `listeners: [{ bind: ":80", protocol: https }]`, `listeners[0].protocol: expected one of http, tcp, udp, got "https" (did you mean "http"?)`],
  ["duplicate bind", `listeners: [{ bind: ":80" }, { name: other, bind: "0.0.0.0:80" }]`, `listeners[1].bind: expected a bind address no other listener uses, got 0.0.0.0:80 again (listeners[0])`],
  ["duplicate name", `listeners: [{ name: web, bind: ":80" }, { name: web, bind: ":81" }]`, `listeners[1].name: expected a unique listener name, got "web" again (listeners[0])`],
  ["listener that is a string", `listeners: [":80"]`, `listeners[0]: expected a listener mapping with bind, got ":80"`],
];

for (const [what, listenersYaml, expected] of LISTENER_ERRORS) {
  const text = listenersYaml.startsWith("pools")
    ? listenersYaml
    : `${listenersYaml}\npools: { api: { servers: [127.0.0.1:9001] } }`;
  test(`config: listener error, ${what}`, () => assertHasError(text, expected));
}

// deno-fmt-ignore -- one case per line reads best
const TOP_LEVEL_ERRORS: [string, string, string][] = [
  ["misspelt top-level key", `listners: []`, `listners: unknown key (did you mean "listeners"?)`],
  ["unknown top-level key", `frontend: {}`, `frontend: unknown key (allowed keys: hash_seed, listeners, routes, pools, vrrp, discovery, drain_timeout, admin, virtual_servers, access_log, director_sync, workers)`],
  ["workers below one", `workers: 0`, `workers: expected auto or an integer 1..256, got 0`],
  ["workers as a word", `workers: all`, `workers: expected auto or an integer 1..256, got "all"`],
  ["negative hash seed", `hash_seed: -1`, `hash_seed: expected an integer 0..4294967295, got -1`],
  ["hash seed as string", `hash_seed: "7"`, `hash_seed: expected an integer 0..4294967295, got "7"`],
  ["pools as a list", `pools: [api]`, `pools: expected a non-empty mapping of pool name to pool, got a list`],
  ["bad pool name", `pools: { "bad pool!": { servers: [127.0.0.1:9001] } }`, `pools["bad pool!"]: expected a pool name of letters, digits, "_", "." or "-", got "bad pool!"`],
  ["several pools without routes", `pools: { api: { servers: [127.0.0.1:9001] }, web: { servers: [127.0.0.1:9002] } }`, `routes: a route is required to choose among pools "api", "web"; expected a list of routes, got nothing`],
];

for (const [what, extraYaml, expected] of TOP_LEVEL_ERRORS) {
  const base = `listeners: [{ bind: ":80" }]\n`;
  const pools = extraYaml.startsWith("pools") ? "" : `pools: { api: { servers: [127.0.0.1:9001] } }\n`;
  test(`config: top-level error, ${what}`, () => assertHasError(`${base}${pools}${extraYaml}\n`, expected));
}

test("config: an empty document asks for listeners and pools", () => {
  for (const text of ["", "# nothing here\n"]) {
    assert.deepEqual(errorsOf(text), [{ path: "(root)", message: "expected a mapping with listeners and pools" }]);
  }
  assert.deepEqual(errorLinesOf("- a\n- b\n"), ["(root): expected a mapping with listeners and pools, got a list"]);
});

// -------------------------------------------------------------------------------- many at once

test("config: several errors at once are all reported", () => {
  const lines = errorLinesOf(yaml`
    listners: []
    pools:
      api:
        scheduler: fastest
        servers:
          - address: 127.0.0.1:9001
            weight: heavy
            backup: yes
          - 127.0.0.1:99999
    routes:
      - pool: ap
        path: nope
  `);
  assert.deepEqual(lines, [
    `listners: unknown key (did you mean "listeners"?)`,
    // listeners is missing entirely, so it is reported at the start of the document.
    `listeners: expected a non-empty list of listeners, got nothing`,
    `pools.api.scheduler: expected one of rr, wrr, lc, wlc, sed, nq, dh, sh, lblc, lblcr, mh, ketama, random, two, first, least_time, got "fastest"`,
    `pools.api.servers[0].weight: expected an integer 0..256, got "heavy"`,
    `pools.api.servers[0].backup: expected true or false, got "yes"`,
    `pools.api.servers[1]: expected "host:port" or "[ipv6]:port" with port 1..65535, got "127.0.0.1:99999"`,
    `routes[0].pool: expected the name of a defined pool, got "ap" (did you mean "api"?)`,
    `routes[0].path: expected a path starting with "/", got "nope"`,
  ]);
});

// ---------------------------------------------------------------------------------- did you mean

test("config: didYouMean suggests the closest candidate within the distance limit", () => {
  assert.equal(didYouMean("wieght", ["address", "weight", "backup"]), "weight");
  assert.equal(didYouMean("wrrr", ["rr", "wrr", "wlc"]), "wrr");
  assert.equal(didYouMean("WRR", ["rr", "wrr"]), "wrr");
  assert.equal(didYouMean("ketamma", ["ketama", "mh"]), "ketama");
  assert.equal(didYouMean("path_prefx", ["path", "path_prefix", "path_regex"]), "path_prefix");
  assert.equal(didYouMean("frontend", ["hash_seed", "listeners", "routes", "pools"]), null);
  assert.equal(didYouMean("anything", []), null);
  // Longer words tolerate more edits: max(2, floor(len / 3)).
  assert.equal(didYouMean("conect_timout", ["connect_timeout"]), "connect_timeout");
  assert.equal(didYouMean("abcxyz", ["abcdef"]), null);
});

test("config: did-you-mean appears for keys, scheduler names and pool names", () => {
  const lines = errorLinesOf(yaml`
    listeners:
      - bind: ":80"
        protocl: http
    pools:
      images:
        scheduler: ketamma
        servers: [127.0.0.1:9001]
      video:
        servers: [127.0.0.1:9002]
    routes:
      - pool: imgaes
  `);
  assert.deepEqual(lines, [
    `listeners[0].protocl: unknown key (did you mean "protocol"?)`,
    `pools.images.scheduler: expected one of rr, wrr, lc, wlc, sed, nq, dh, sh, lblc, lblcr, mh, ketama, random, two, first, least_time, got "ketamma" (did you mean "ketama"?)`,
    `routes[0].pool: expected the name of a defined pool, got "imgaes" (did you mean "images"?)`,
  ]);
});

// ------------------------------------------------------------------------------------ durations

test("config: parseDuration reads units, combinations and decimals", () => {
  assert.equal(parseDuration("150ms"), 150);
  assert.equal(parseDuration("2s"), 2_000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("1h2m3s4ms"), 3_723_004);
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("0.0006s"), 1); // rounded to whole milliseconds
  assert.equal(parseDuration("0s"), 0);
});

test("config: parseDuration rejects anything else", () => {
  // deno-fmt-ignore
  const notDurations = ["", "5", "s", "1.5", "-1s", "+1s", ".5s", "1 s", "1m 30s", "1sec", "1d", "30s1m", "1s1s", "1S", "1e3ms", "1.s"];
  for (const text of notDurations) {
    assert.equal(parseDuration(text), null, JSON.stringify(text));
  }
});

test("config: formatDuration writes what parseDuration reads", () => {
  assert.equal(formatDuration(0), "0ms");
  assert.equal(formatDuration(150), "150ms");
  assert.equal(formatDuration(2_000), "2s");
  assert.equal(formatDuration(90_000), "1m30s");
  assert.equal(formatDuration(3_723_004), "1h2m3s4ms");
  for (const ms of [1, 999, 1_000, 61_001, 7_200_000]) assert.equal(parseDuration(formatDuration(ms)), ms);
});

// --------------------------------------------------------------------------- positions and format

test("config: a YAML syntax error is reported with its line number", () => {
  const errors = errorsOf(yaml`
    listeners:
      - bind: ":80"
    pools:
      api: { servers: [127.0.0.1:9001
    routes: []
  `);
  assert.ok(errors.length > 0);
  assert.equal(errors[0].path, "(yaml)");
  assert.equal(typeof errors[0].line, "number");
  assert.ok(errors[0].line! >= 4, `line ${errors[0].line}`);
  assert.ok(!errors[0].message.includes("\n"), "one-line message");
});

test("config: duplicate YAML keys are a syntax error at the repeated key", () => {
  const errors = errorsOf("listeners: []\npools: {}\nlisteners: []\n");
  assert.equal(errors[0].path, "(yaml)");
  assert.equal(errors[0].line, 3);
});

test("config: validation errors point at the line of the offending node", () => {
  const text = yaml`
    listeners:
      - bind: ":80"
    pools:
      api:
        servers:
          - address: 127.0.0.1:9001
            wieght: 2
          - address: 127.0.0.1:9002
            weight: heavy
      web:
        scheduler: rr
    routes:
      - pool: api
      - pool: nope
  `;
  const at = (path: string) => {
    const error = errorsOf(text).find((e) => e.path === path);
    assert.ok(error, `no error at ${path}`);
    return [error.line, error.col];
  };
  assert.deepEqual(at("pools.api.servers[0].wieght"), [7, 9]); // the unknown key itself
  assert.deepEqual(at("pools.api.servers[1].weight"), [9, 17]); // the bad value
  assert.deepEqual(at("pools.web.servers"), [10, 3]); // missing: the pool that lacks it
  assert.deepEqual(at("routes[1].pool"), [14, 11]);
});

test("config: an empty value points at its key", () => {
  const errors = errorsOf("listeners:\npools:\n  api:\n    servers:\n");
  assert.deepEqual(
    errors.map((e) => [e.path, e.line]),
    [["listeners", 1], ["pools.api.servers", 4]],
  );
});

test("config: formatConfigErrors writes FILE:LINE:COL: PATH: MESSAGE", () => {
  const text = formatConfigErrors("fulcrum.yaml", [
    { path: "pools.api.servers[1].weight", message: `expected an integer 0..256, got "heavy"`, line: 9, col: 17 },
    { path: "(root)", message: "expected a mapping with listeners and pools" },
  ]);
  assert.equal(
    text,
    `fulcrum.yaml:9:17: pools.api.servers[1].weight: expected an integer 0..256, got "heavy"\n` +
      `fulcrum.yaml: (root): expected a mapping with listeners and pools`,
  );
});

test("config: a failed parse carries the formatted message for its file", () => {
  const result = parseConfig(withServer("address: 127.0.0.1:9002\nweight: heavy"), "lb.yaml");
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.equal(result.message, `lb.yaml:8:17: pools.api.servers[1].weight: expected an integer 0..256, got "heavy"`);
  }
});
