// FULLNAT local ports: a stack of free ports per local address (DPVS's sa_pool idea), so taking
// and returning a port is O(1) and never scans. The control plane fills each stack once, in an
// order it shuffles; ports are kept in network order, as they are written into packets.
import { DIR_LADDR_OFF, LADDR_SIZE, L_TOP, DIR_PORTS_OFF, PORTS_STRIDE } from "./layout";

@inline export function laddrAt(i: u32): u32 { return DIR_LADDR_OFF + <u32>i * LADDR_SIZE; }

// A free port of local address i, or 0 when it has none left.
export function allocLport(i: u32): u32 {
  const l = laddrAt(i), top = load<u32>(l + L_TOP);
  if (top == 0) return 0;
  store<u32>(l + L_TOP, top - 1);
  return <u32>load<u16>(DIR_PORTS_OFF + <u32>i * PORTS_STRIDE + (<u32>(top - 1) << 1));
}

export function freeLport(i: u32, port: u32): void {
  const l = laddrAt(i), top = load<u32>(l + L_TOP);
  store<u16>(DIR_PORTS_OFF + <u32>i * PORTS_STRIDE + (<u32>top << 1), <u16>port);
  store<u32>(l + L_TOP, top + 1);
}
