// HTTP and HTTPS checks (keepalived HTTP_GET/SSL_GET, HAProxy httpchk): send one request on a
// fresh connection, then judge the status against the expected ranges and, when asked, the body
// against a regular expression or an MD5 digest (keepalived's `digest`).
import net from "node:net";
import tls from "node:tls";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import type { CheckConfig, StatusRange } from "../config.ts";
import { fail, pass, socketErrorText, type CheckResult, type CheckTarget, type Probe } from "../result.ts";
import { HttpResponseError, HttpResponseReader } from "./http-response.ts";

type HttpCheck = Extract<CheckConfig, { type: "http" | "https" }>;

/** Bodies kept for a regex or digest are capped; a health page is small. */
const MAX_KEPT_BODY = 1024 * 1024;

export function httpProbe(check: HttpCheck, target: CheckTarget, hostHeader: string): Probe {
  const request = new TextEncoder().encode(
    `${check.method} ${check.path} HTTP/1.1\r\nHost: ${check.host ?? hostHeader}\r\n` +
      `User-Agent: fulcrum-health\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
  );
  const bodyRegex = check.bodyRegex === null ? null : new RegExp(check.bodyRegex);
  const keepBody = bodyRegex !== null || check.digest !== null;
  const expected = formatRanges(check.status);
  const scheme = check.type === "https" ? "HTTPS" : "HTTP";
  // Read once: a CA file that cannot be read fails every check with the reason, not the process.
  let ca: Buffer | string | undefined;
  if (check.ca) {
    try { ca = readFileSync(check.ca); } catch (e) { ca = `cannot read ca ${check.ca}: ${(e as Error).message}`; }
  }

  const judge = (reader: HttpResponseReader): CheckResult => {
    const status = reader.status;
    if (!inRanges(status, check.status)) return fail(`${scheme} ${status}, expected ${expected}`);
    if (!keepBody) return pass(`${scheme} ${status}`);
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

  return (signal) => new Promise((resolve) => {
    if (typeof ca === "string") { resolve(fail(`${scheme} ${ca}`)); return; }
    const reader = new HttpResponseReader(keepBody, MAX_KEPT_BODY, check.method === "HEAD");
    let phase = "connecting";
    const socket: net.Socket = check.type === "https"
      ? tls.connect({
        host: target.host,
        port: target.port,
        servername: check.sni ?? undefined,
        rejectUnauthorized: check.verify,
        ca,
      })
      : net.connect({ host: target.host, port: target.port });
    let finished = false;
    const done = (r: CheckResult) => {
      if (finished) return;
      finished = true;
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(r);
    };
    const onAbort = () => done(fail(`${scheme} timed out ${signal.reason} ${phase}`));
    signal.addEventListener("abort", onAbort, { once: true });
    const send = () => {
      phase = `waiting for ${reader.waitingFor}`;
      socket.write(request);
    };
    if (check.type === "https") {
      socket.once("connect", () => { phase = "in the TLS handshake"; });
      socket.once("secureConnect", send);
    } else {
      socket.once("connect", send);
    }
    socket.on("data", (chunk: Uint8Array) => {
      try {
        if (reader.feed(chunk)) done(judge(reader));
        else phase = `waiting for ${reader.waitingFor}`;
      } catch (e) {
        done(fail(`${scheme} ${(e as Error).message}`));
      }
    });
    socket.once("end", () => {
      try {
        reader.end();
        done(judge(reader));
      } catch (e) {
        done(fail(`${scheme} ${e instanceof HttpResponseError ? e.message : String(e)}`));
      }
    });
    socket.once("error", (e) => {
      const code = (e as { code?: string }).code ?? "";
      if (check.type === "https" && TLS_ERROR.test(code)) done(fail(`HTTPS TLS handshake failed: ${code} (${e.message})`));
      else if (phase === "connecting") done(fail(`${scheme} connect ${socketErrorText(e)}`));
      else done(fail(`${scheme} ${socketErrorText(e)} ${phase}`));
    });
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
