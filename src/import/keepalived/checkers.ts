// keepalived's health checkers of a real server → Fulcrum checks (src/health/config.ts).
//
// keepalived checks every delay_loop; a failure while up is retried `retry` times, delay_before_retry
// apart, before the server goes down; one success brings it back; `alpha` starts it down. In
// Fulcrum's terms: interval = delay_loop, fall = retry + 1, fastinter = delay_before_retry, rise = 1,
// initial = down with alpha. Timing keys are inherited virtual_server → real_server → checker.
import type { Statement } from "./reader.ts";
import type { Yaml } from "./units.ts";
import { bool, duration, integerOf, last, timerMs, type Untranslatable, written } from "./values.ts";

export const CHECKERS = ["TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "PING_CHECK", "UDP_CHECK"] as const;
/** Checkers keepalived has and Fulcrum does not. */
const UNSUPPORTED_CHECKERS = ["SMTP_CHECK", "DNS_CHECK", "BFD_CHECK", "FILE_CHECK"];

const TIMING = ["delay_loop", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry", "warmup", "alpha"] as const;
// Keys that change nothing Fulcrum does: inhibit_on_failure keeps a failed server at weight 0, which
// for new sessions is what a down server is; log_all_failures is logging.
const NO_EFFECT = new Set(["inhibit_on_failure", "log_all_failures", "fast_recovery"]);

/** The virtual_server and real_server blocks whose timing keys a checker inherits, nearest last. */
export interface CheckContext {
  levels: Statement[][];
  serverHost: string;
  /** The real server's port: a connect_port equal to it needs no `port`. */
  serverPort: number;
  ipv6: boolean;
  /** virtualhost from the virtual or real server. */
  virtualhost: string | null;
  title: string;
}

/** Whether a block has a checker: what makes a real server health-checked at all. */
export function isChecker(s: Statement): boolean {
  return (CHECKERS as readonly string[]).includes(s.keyword) || UNSUPPORTED_CHECKERS.includes(s.keyword);
}

/** The Fulcrum checks for one real server's checker blocks; what does not carry over is listed. */
export function translateCheckers(rs: Statement, ctx: CheckContext, out: Untranslatable): Yaml[] {
  const checks: Yaml[] = [];
  for (const checker of (rs.block ?? []).filter(isChecker)) {
    if (UNSUPPORTED_CHECKERS.includes(checker.keyword)) {
      out.add(checker, ctx.title, `${checker.keyword} has no Fulcrum equivalent; the server is not checked by it`);
      continue;
    }
    checks.push(...translateChecker(checker, ctx, out));
  }
  return checks;
}

function translateChecker(checker: Statement, ctx: CheckContext, out: Untranslatable): Yaml[] {
  const kind = checker.keyword as typeof CHECKERS[number];
  const levels = [...ctx.levels, checker.block ?? []];
  const timing = checkTiming(kind, levels, checker, ctx.title, out);
  const port = connectPort(checker, ctx);
  const block = checker.block ?? [];
  for (const k of block) {
    if ((TIMING as readonly string[]).includes(k.keyword) || NO_EFFECT.has(k.keyword) || k.keyword === "connect_port") continue;
    if (["connect_ip", "bindto", "bind_port", "bind_if", "fwmark"].includes(k.keyword)) {
      out.add(k, ctx.title, `${kind} ${written(k)} has no Fulcrum equivalent (checks go to the server's own address)`);
    } else if (!KIND_KEYS[kind].includes(k.keyword)) {
      out.add(k, ctx.title, `${kind} ${written(k)} has no Fulcrum equivalent`);
    }
  }
  const base = { ...timing, ...(port === null ? {} : { port }) };
  switch (kind) {
    case "TCP_CHECK":
      return [{ type: "tcp", ...base }];
    case "PING_CHECK":
      if (ctx.ipv6) {
        out.add(checker, ctx.title, "PING_CHECK of an IPv6 server has no Fulcrum equivalent (Fulcrum's icmp check is IPv4)");
        return [];
      }
      delete base.port;
      return [{ type: "icmp", ...base }];
    case "HTTP_GET":
    case "SSL_GET":
      return httpChecks(checker, kind, base, ctx, out);
    case "MISC_CHECK":
      return [miscCheck(checker, timing, ctx, out)].filter((c): c is Yaml => c !== null);
    case "UDP_CHECK":
      return [udpCheck(checker, base, ctx, out)].filter((c): c is Yaml => c !== null);
  }
}

const KIND_KEYS: Record<typeof CHECKERS[number], string[]> = {
  TCP_CHECK: [],
  PING_CHECK: [],
  HTTP_GET: ["url", "virtualhost", "http_protocol"],
  SSL_GET: ["url", "virtualhost", "http_protocol", "enable_sni", "sni_name", "tls_compliant"],
  MISC_CHECK: ["misc_path", "misc_timeout", "misc_dynamic", "user"],
  UDP_CHECK: ["payload", "require_reply"],
};

/** interval, timeout, fall, fastinter, rise and initial from keepalived's keys. */
function checkTiming(kind: string, levels: Statement[][], checker: Statement, title: string, out: Untranslatable): Yaml {
  const find = (...keys: string[]) => {
    for (let i = levels.length - 1; i >= 0; i--) {
      const s = last(levels[i], ...keys);
      if (s) return s;
    }
    return undefined;
  };
  const seconds = (key: string, fallback: number) => {
    const s = find(key);
    const ms = s ? timerMs(s.args[0]) : null;
    if (s && ms === null) out.add(s, title, `${written(s)}: expected seconds`);
    return ms ?? fallback;
  };
  const intervalMs = Math.max(1, seconds("delay_loop", 60_000));
  const connectMs = seconds("connect_timeout", 5_000);
  const retryAt = find("retry", "nb_get_retry");
  const retry = (retryAt ? integerOf(retryAt.args[0]) : null) ?? (kind === "MISC_CHECK" ? 0 : 1);
  const http = kind === "HTTP_GET" || kind === "SSL_GET";
  const retryDelayMs = seconds("delay_before_retry", http ? 3_000 : 1_000);
  const warmup = find("warmup");
  // Fulcrum spreads a pool's first checks over the interval: keepalived's default warmup.
  if (warmup && timerMs(warmup.args[0]) !== intervalMs) {
    out.add(warmup, title, `${written(warmup)}: Fulcrum spreads the first checks over delay_loop (keepalived's default warmup)`);
  }
  const alphaAt = find("alpha");
  const alpha = alphaAt ? bool(alphaAt) === true : false;
  let timeoutMs = kind === "MISC_CHECK" ? miscTimeoutMs(checker) ?? intervalMs : connectMs;
  if (timeoutMs > intervalMs) {
    out.add(checker, title, `${kind}: a timeout of ${duration(timeoutMs)} longer than delay_loop ${duration(intervalMs)} is cut to delay_loop (Fulcrum's checks never overlap)`);
    timeoutMs = intervalMs;
  }
  let fall = retry + 1;
  if (fall > 100) {
    out.add(retryAt ?? checker, title, `retry ${retry}: Fulcrum's fall is at most 100; set to 100`);
    fall = 100;
  }
  const timing: Yaml = { interval: duration(intervalMs), timeout: duration(timeoutMs), rise: 1, fall };
  if (retry > 0 && retryDelayMs > 0 && retryDelayMs !== intervalMs) timing.fastinter = duration(retryDelayMs);
  if (alpha) timing.initial = "down";
  return timing;
}

function miscTimeoutMs(checker: Statement): number | null {
  const s = last(checker.block, "misc_timeout");
  return s ? timerMs(s.args[0]) : null;
}

function connectPort(checker: Statement, ctx: CheckContext): number | null {
  const s = last(checker.block, "connect_port");
  const port = s ? integerOf(s.args[0]) : null;
  return port === null || port === ctx.serverPort ? null : port;
}

function httpChecks(checker: Statement, kind: "HTTP_GET" | "SSL_GET", base: Yaml, ctx: CheckContext, out: Untranslatable): Yaml[] {
  const block = checker.block ?? [];
  const protocol = last(block, "http_protocol");
  if (protocol && protocol.args[0] !== "1.1") {
    out.add(protocol, ctx.title, `${written(protocol)}: Fulcrum's HTTP check speaks HTTP/1.1`);
  }
  const checkerHost = last(block, "virtualhost")?.args[0] ?? ctx.virtualhost;
  const urls = block.filter((k) => k.keyword === "url");
  if (urls.length === 0) {
    out.add(checker, ctx.title, `${kind} without a url has nothing to check; left out`);
    return [];
  }
  return urls.map((url) => {
    const check: Yaml = { type: kind === "HTTP_GET" ? "http" : "https", ...base };
    let host = checkerHost;
    let status: unknown = "200-299"; // keepalived's default; Fulcrum's is 200-399
    for (const k of url.block ?? []) {
      if (k.keyword === "path") check.path = k.args[0];
      else if (k.keyword === "digest") check.digest = k.args[0];
      else if (k.keyword === "virtualhost") host = k.args[0] ?? host;
      else if (k.keyword === "status_code") status = statusCodes(k.args);
      else if (k.keyword === "regex") check.body_regex = k.args.join(" ");
      else if (k.keyword === "tls_compliant") continue;
      else out.add(k, ctx.title, `${kind} url ${written(k)} has no Fulcrum equivalent`);
    }
    if (host) check.host = host;
    check.status = status;
    if (kind === "SSL_GET") {
      // keepalived does not verify the server's certificate; it sends SNI only when asked.
      check.verify = false;
      const sniName = last(block, "sni_name")?.args[0];
      if (sniName) check.sni = sniName;
      else if (last(block, "enable_sni") && host) check.sni = host;
    }
    return check;
  });
}

/** `status_code 200-299 400 503` → Fulcrum's status: a number, a "lo-hi" string, or a list. */
function statusCodes(words: string[]): unknown {
  const values = words.map((w) => (/^\d+$/.test(w) ? Number(w) : w));
  return values.length === 1 ? values[0] : values;
}

function miscCheck(checker: Statement, timing: Yaml, ctx: CheckContext, out: Untranslatable): Yaml | null {
  const path = last(checker.block, "misc_path");
  if (!path || path.args.length === 0) {
    out.add(checker, ctx.title, "MISC_CHECK without a misc_path; left out");
    return null;
  }
  const user = last(checker.block, "user");
  if (user) out.add(user, ctx.title, `MISC_CHECK ${written(user)}: the script runs as Fulcrum's user`);
  const check: Yaml = { type: "script", ...timing, command: withServerVariables(path.args.join(" "), ctx) };
  if (last(checker.block, "misc_dynamic")) check.dynamic = true;
  return check;
}

/** A misc_path naming its server (`check.sh 10.0.0.1 80`) names it through the variables Fulcrum
 * sets, so every server of a pool runs the same command on its own address. */
function withServerVariables(command: string, ctx: CheckContext): string {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const host = new RegExp(`(^|[\\s=/'"])${escape(ctx.serverHost)}(?=$|[\\s:/'"])`, "g");
  const named = command.replace(host, "$1$$FULCRUM_SERVER_HOST");
  if (named === command) return command;
  return named.replace(new RegExp(`\\$FULCRUM_SERVER_HOST([\\s:])${ctx.serverPort}(?=$|[\\s/'"])`, "g"), "$$FULCRUM_SERVER_HOST$1$$FULCRUM_SERVER_PORT");
}

function udpCheck(checker: Statement, base: Yaml, ctx: CheckContext, out: Untranslatable): Yaml | null {
  const payloadAt = last(checker.block, "payload");
  const replyAt = last(checker.block, "require_reply");
  // keepalived sends random bytes without a payload; any bytes do, so a fixed word stands in.
  const send = payloadAt ? asciiOfHex(payloadAt.args) : "fulcrum";
  if (send === null) {
    out.add(payloadAt!, ctx.title, `UDP_CHECK ${written(payloadAt!)}: Fulcrum sends a text payload; these bytes are not printable text`);
    return null;
  }
  const check: Yaml = { type: "udp", ...base, send };
  if (replyAt) {
    if (replyAt.args.length === 0) check.require_reply = true;
    else {
      const expected = asciiOfHex(replyAt.args);
      if (expected === null) {
        out.add(replyAt, ctx.title, `UDP_CHECK ${written(replyAt)}: only a reply of printable text can be matched; a reply is required`);
        check.require_reply = true;
      } else check.expect = `^${expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`;
    }
  }
  return check;
}

/** keepalived's free-form hex, word by word ("Ab12f 3" → AB 12 0F 03), as text; null when it is not
 * printable ASCII or has x wildcards. */
export function asciiOfHex(words: string[]): string | null {
  let text = "";
  for (const word of words) {
    if (!/^[0-9a-f]+$/i.test(word)) return null;
    // A word of odd length ends in one digit, which is a byte of its own.
    const padded = word.length % 2 === 1 ? `${word.slice(0, -1)}0${word.slice(-1)}` : word;
    for (let i = 0; i < padded.length; i += 2) {
      const code = parseInt(padded.slice(i, i + 2), 16);
      if (code < 0x20 || code > 0x7e) return null;
      text += String.fromCharCode(code);
    }
  }
  return text;
}
