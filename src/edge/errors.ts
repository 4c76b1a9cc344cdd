// The error answers both forwarding paths give, so a client sees the same status, body and
// X-Fulcrum-Error whichever path served it.
import type { ErrorKind } from "./stats.ts";

export const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
  431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout",
};

export function errorBody(status: number, detail: string): string {
  return `${status} ${STATUS_TEXT[status] ?? ""}: ${detail}\n`;
}

export function errorResponse(status: number, kind: ErrorKind, detail: string): Response {
  return new Response(errorBody(status, detail), {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-fulcrum-error": kind },
  });
}
