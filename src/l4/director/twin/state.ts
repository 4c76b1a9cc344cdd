// The parsed packet, as wasm/assembly/director-parse.ts keeps it in globals.
export const P = {
  l3: 0, l4: 0, end: 0, v6: false, proto: 0, sport: 0, dport: 0, tcpFlags: 0, l4Csum: 0,
};
export const TCP_FIN = 1, TCP_SYN = 2, TCP_RST = 4, TCP_ACK = 16;
