// What the HTTP/2 front end counts: connections and streams, every defence that fired, and each
// GOAWAY sent by its error code. Part of EdgeStats (src/edge/stats.ts).
export const H2_DEFENCES = [
  "rapid_reset", "continuation_flood", "header_block_too_large", "hpack_bomb", "header_list_too_large",
  "settings_flood", "ping_flood", "empty_frame_flood", "refused_streams", "stream_flood", "window_update_flood",
  "flow_control", "protocol", "compression",
] as const;
export type H2Defence = typeof H2_DEFENCES[number];

export class H2Stats {
  connections = 0;
  streams = 0;
  /** Streams the client reset before their answer was complete. */
  resetsByClient = 0;
  readonly defences = Object.fromEntries(H2_DEFENCES.map((k) => [k, 0])) as Record<H2Defence, number>;
  /** GOAWAY frames sent, by error code name (NO_ERROR for shutdown). */
  readonly goaway: Record<string, number> = {};
}
