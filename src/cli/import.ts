// `fulcrum import keepalived FILE`: the YAML on stdout, what did not carry over on stderr, and the
// exit code saying which: 0 complete, 3 partial, 2 the input cannot be read or parsed.
import { runtime } from "../runtime/index.ts";
import { importKeepalived, ReadError } from "../import/keepalived/index.ts";
import type { ParsedArgs } from "./args.ts";

export const IMPORT_COMPLETE = 0;
export const IMPORT_PARTIAL = 3;
export const IMPORT_UNREADABLE = 2;

const FORMATS = ["keepalived"];

export async function importConfig(args: ParsedArgs): Promise<number> {
  const [format, file] = args.positional;
  if (format === undefined || file === undefined || !FORMATS.includes(format)) {
    const got = format === undefined ? "" : FORMATS.includes(format) ? " (the file is missing)" : ` (got "${format}")`;
    console.error(`fulcrum import: expected \`fulcrum import keepalived FILE\`${got}`);
    return IMPORT_UNREADABLE;
  }
  let result;
  try {
    result = await importKeepalived(file, runtime.cwd());
  } catch (e) {
    if (!(e instanceof ReadError)) throw e;
    console.error(`fulcrum import: ${e.message}`);
    return IMPORT_UNREADABLE;
  }
  console.log(result.yaml.replace(/\n$/, ""));
  for (const line of result.untranslated) console.error(line);
  if (result.units === 0) {
    console.error(`fulcrum import: nothing in ${file} could be translated`);
    return IMPORT_PARTIAL;
  }
  if (result.untranslated.length === 0) return IMPORT_COMPLETE;
  const n = result.untranslated.length;
  console.error(`fulcrum import: partial: ${n} item${n === 1 ? "" : "s"} not translated (listed above)`);
  return IMPORT_PARTIAL;
}
