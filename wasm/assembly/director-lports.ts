// FULLNAT local ports: a ring of free ports per local address (DPVS's sa_pool idea), so taking
// and returning a port is O(1) and never scans, and a port returned goes to the back: it is taken
// again only after all the other free ports of its address, long after the server let its side
// of the old connection go (TIME_WAIT). The control plane fills each ring once, in an order it
// shuffles; ports are kept in network order, as they are written into packets.
import { DIR_LADDR_OFF, LADDR_SIZE, L_TOP, L_HEAD, DIR_PORTS_OFF, PORTS_STRIDE, LPORTS } from "./layout";

@inline export function laddrAt(i: u32): u32 { return DIR_LADDR_OFF + <u32>i * LADDR_SIZE; }

// A free port of local address i, or 0 when it has none left.
export function allocLport(i: u32): u32 {
  const l = laddrAt(i), free = load<u32>(l + L_TOP);
  if (free == 0) return 0;
  const head = load<u32>(l + L_HEAD);
  store<u32>(l + L_TOP, free - 1);
  store<u32>(l + L_HEAD, head + 1 == <u32>LPORTS ? 0 : head + 1);
  return <u32>load<u16>(DIR_PORTS_OFF + <u32>i * PORTS_STRIDE + (head << 1));
}

export function freeLport(i: u32, port: u32): void {
  const l = laddrAt(i), free = load<u32>(l + L_TOP);
  let tail = load<u32>(l + L_HEAD) + free;
  if (tail >= <u32>LPORTS) tail -= <u32>LPORTS;
  store<u16>(DIR_PORTS_OFF + <u32>i * PORTS_STRIDE + (tail << 1), <u16>port);
  store<u32>(l + L_TOP, free + 1);
}
