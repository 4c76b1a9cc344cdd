// `fulcrum import keepalived FILE`: read the file and its includes, translate, check the result with
// Fulcrum's validator, and say whether it is complete.
import { acceptsTcpListeners, emit } from "./emit.ts";
import { readKeepalived } from "./reader.ts";
import { translate } from "./translate.ts";
import { formatUntranslated, Untranslatable } from "./values.ts";

export { ReadError } from "./reader.ts";

export interface KeepalivedImport {
  /** The Fulcrum YAML; it passes `fulcrum check` whenever `units` > 0. */
  yaml: string;
  /** What did not carry over, each line `file:line: subject: message`, in file order. */
  untranslated: string[];
  units: number;
  files: string[];
}

/** Throws ReadError when the input cannot be read or parsed. */
export async function importKeepalived(path: string, cwd: string): Promise<KeepalivedImport> {
  const read = await readKeepalived(path, cwd);
  const out = new Untranslatable();
  for (const note of read.notes) out.add(note, "include", note.message);
  const translation = translate(read.statements, out, { tcpListeners: acceptsTcpListeners() });
  const emitted = emit(translation, path, out);
  const order = new Map(read.files.map((f, i) => [f, i]));
  const items = [...out.items].sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line);
  return { yaml: emitted.yaml, untranslated: items.map(formatUntranslated), units: emitted.units, files: read.files };
}
