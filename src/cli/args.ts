// A small flag parser: `--name value`, `--name=value`, and boolean `--flag`.
export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

export function parseArgs(argv: string[], booleans: readonly string[] = []): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("-") || a === "-") { positional.push(a); continue; }
    const name = a.replace(/^--?/, "");
    const eq = name.indexOf("=");
    if (eq >= 0) flags.set(name.slice(0, eq), name.slice(eq + 1));
    else if (booleans.includes(name) || i + 1 >= argv.length || argv[i + 1].startsWith("--")) flags.set(name, true);
    else flags.set(name, argv[++i]);
  }
  return { flags, positional };
}

export function flag(args: ParsedArgs, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = args.flags.get(n);
    if (typeof v === "string") return v;
  }
  return undefined;
}
