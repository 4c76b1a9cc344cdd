// Byte sizes in config values, as nginx writes them and as operators write memory: "32k", "1m",
// "512MB", "2GiB", "800m", or a plain count of bytes.

const UNIT: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** The bytes a size stands for, or null when it is not one. */
export function parseSize(s: string): number | null {
  const m = /^([0-9]+)\s*([kmg]?)(?:i?b)?$/i.exec(s.trim());
  return m ? Number(m[1]) * UNIT[m[2].toLowerCase()] : null;
}
