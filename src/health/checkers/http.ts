// HTTP and HTTPS checks (keepalived HTTP_GET/SSL_GET, HAProxy httpchk): send one request, then
// judge the status against the expected ranges and, when asked, the body against a regular
// expression or an MD5 digest (keepalived's `digest`). The connection is kept for the next check
// when the server allows it (Envoy's reuse_connection), which is most of what makes a thousand
// checks a second cheap; `reuse_connection: false` opens one per check as keepalived and HAProxy do.
import tls from "node:tls";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import type { CheckConfig, StatusRange } from "../config.ts";
import { type Deadline, fail, pass, socketErrorText, type CheckResult, type CheckTarget, type Probe } from "../result.ts";
import { HttpResponseError, HttpResponseReader } from "./http-response.ts";
import { CheckConnection, PlainConnector } from "./connection.ts";

type HttpCheck = Extract<CheckConfig, { type: "http" | "https" }>;

/** Bodies kept for a regex or digest are capped; a health page is small. */
const MAX_KEPT_BODY = 1024 * 1024;

export function httpProbe(check: HttpCheck, target: CheckTarget, hostHeader: string): Probe {
  const request = new TextEncoder().encode(
    `${check.method} ${check.path} HTTP/1.1\r\nHost: ${check.host ?? hostHeader}\r\n` +
      `User-Agent: fulcrum-health\r\nAccept: */*\r\n${check.reuseConnection ? "" : "Connection: close\r\n"}\r\n`,
  );
  const bodyRegex = check.bodyRegex === null ? null : new RegExp(check.bodyRegex);
  const keepBody = bodyRegex !== null || check.digest !== null;
  const expected = formatRanges(check.status);
  const scheme = check.type === "https" ? "HTTPS" : "HTTP";
  // Read once: a CA file that cannot be read fails every check with the reason, not the process.
  let ca: Buffer | undefined;
  let caError: string | null = null;
  if (check.ca) {
    try { ca = readFileSync(check.ca); } catch (e) { caError = `cannot read ca ${check.ca}: ${(e as Error).message}`; }
  }
  // The connection kept between checks (Envoy's reuse_connection), when the server allows it.
  let idle: CheckConnection | null = null;
  const plain = new PlainConnector(target, "HTTP");

  // Results are plain data: a status-only check answers from a small cache instead of building
  // a result (and its reason string) a thousand times a second.
  const passed = new Map<number, CheckResult>();
  const judge = (reader: HttpResponseReader): CheckResult => {
    const status = reader.status;
    if (!inRanges(status, check.status)) return fail(`${scheme} ${status}, expected ${expected}`);
    if (!keepBody) {
      let r = passed.get(status);
      if (!r) passed.set(status, r = pass(`${scheme} ${status}`));
      return r;
    }
    const body = reader.body();
    if (bodyRegex && !bodyRegex.test(new TextDecoder().decode(body))) {
      return fail(`${scheme} ${status}, body does not match /${check.bodyRegex}/`);
    }
    if (check.digest) {
      const digest = createHash("md5").update(body).digest("hex");
      if (digest !== check.digest) return fail(`${scheme} ${status}, body digest ${digest}, expected ${check.digest}`);
    }
    return pass(`${scheme} ${status}`);
  };

  /** One request on `conn`, answered through `resolve`. A reused connection that closes before
   * any answer was closed by the server while idle: then the check goes on with a fresh one. */
  const exchange = (conn: CheckConnection, reused: boolean, deadline: Deadline, resolve: (r: CheckResult) => void) => {
    const reader = new HttpResponseReader(keepBody, MAX_KEPT_BODY, check.method);
    const finish = (r: CheckResult | null, keep: boolean) => {
      deadline.onExpire(null);
      conn.sink = null;
      if (keep && check.reuseConnection && !conn.closed) idle = conn;
      else conn.destroy();
      if (r) resolve(r);
      else fresh(deadline).then(resolve);
    };
    deadline.onExpire(() => finish(fail(`${scheme} timed out ${deadline.reason} waiting for ${reader.waitingFor}`), false));
    conn.sink = {
      data(chunk) {
        try {
          if (reader.feed(chunk)) finish(judge(reader), reader.keepAlive);
        } catch (e) {
          finish(fail(`${scheme} ${(e as Error).message}`), false);
        }
      },
      close(error) {
        if (reused && reader.received === 0) { finish(null, false); return; }
        if (error && reader.received === 0) { finish(fail(`${scheme} ${socketErrorText(error)} waiting for the response`), false); return; }
        try {
          reader.end();
          finish(judge(reader), false);
        } catch (e) {
          finish(fail(`${scheme} ${e instanceof HttpResponseError ? e.message : String(e)}`), false);
        }
      },
    };
    conn.write(request);
  };

  /** A check on a new connection. */
  const fresh = async (deadline: Deadline): Promise<CheckResult> => {
    const opened = check.type === "https" ? await connectTls(check, target, ca, deadline) : await plain.connect(deadline);
    if (!(opened instanceof CheckConnection)) return opened;
    return new Promise((resolve) => exchange(opened, false, deadline, resolve));
  };

  return (deadline) => {
    if (caError !== null) return Promise.resolve(fail(`${scheme} ${caError}`));
    const conn = idle;
    idle = null;
    if (conn === null || conn.closed) return fresh(deadline);
    return new Promise((resolve) => exchange(conn, true, deadline, resolve));
  };
}

/** Opens a TLS connection; a failure or the timeout comes back as a failed result. */
function connectTls(check: HttpCheck, target: CheckTarget, ca: Buffer | undefined, deadline: Deadline): Promise<CheckConnection | CheckResult> {
  return new Promise((resolve) => {
    let phase = "connecting";
    let error: Error | null = null;
    const socket = tls.connect({ host: target.host, port: target.port, servername: check.sni ?? undefined, rejectUnauthorized: check.verify, ca });
    const conn = new CheckConnection((b) => socket.write(b), () => socket.destroy());
    let opened = false;
    const done = (r: CheckConnection | CheckResult) => {
      deadline.onExpire(null);
      resolve(r);
    };
    deadline.onExpire(() => {
      socket.destroy();
      done(fail(`HTTPS timed out ${deadline.reason} ${phase}`));
    });
    socket.on("error", (e: Error) => {
      error = e;
      if (opened) return;
      socket.destroy();
      const code = (e as { code?: string }).code ?? "";
      if (TLS_ERROR.test(code)) done(fail(`HTTPS TLS handshake failed: ${code} (${e.message})`));
      else done(fail(`HTTPS ${phase === "connecting" ? "connect " : ""}${socketErrorText(e)}${phase === "connecting" ? "" : ` ${phase}`}`));
    });
    socket.once("connect", () => { phase = "in the TLS handshake"; });
    socket.once("secureConnect", () => { opened = true; done(conn); });
    socket.on("data", (chunk: Uint8Array) => conn.received(chunk));
    socket.on("close", () => conn.ended(error));
  });
}

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME|SSL|TLS/;

export function inRanges(status: number, ranges: StatusRange[]): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

export function formatRanges(ranges: StatusRange[]): string {
  return ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(", ");
}
