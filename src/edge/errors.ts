// How the edge words its own error answers: the status line's reason and the plain-text body
// (the socket path adds X-Fulcrum-Error with the error kind).
export const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
  429: "Too Many Requests", 431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout",
};

export function errorBody(status: number, detail: string): string {
  return `${status} ${STATUS_TEXT[status] ?? ""}: ${detail}\n`;
}
