// Runs the suite under Bun and under Deno and prints one closing line,
// "N passed, N failed, N skipped", summed over both (neither runtime prints that line itself).
// First it makes sure the test peers are there (scripts/provision.ts): installed as root with
// apt, else named in one line; the tests that need a missing one are skipped.
// FULCRUM_TEST_RUNTIMES=bun or =deno limits the run; extra arguments pick test files.
// `workers:` is auto by default, so Bun's pass runs Fulcrum with workers (on a machine with more
// than one core) and Deno's with FULCRUM_WORKERS=1, the one process: every run tests both ways.
// FULCRUM_WORKERS set by the caller holds for both.
import { spawn } from "node:child_process";
import { provision } from "./provision.ts";

const files = process.argv.slice(2);
const runtimes = (process.env.FULCRUM_TEST_RUNTIMES ?? "bun,deno").split(",").filter(Boolean);

const commands: Record<string, string[]> = {
  bun: ["bun", "test", "--timeout", "120000", ...(files.length ? files.map((f) => `./${f}`) : ["./test/", "./src/"])],
  deno: ["deno", "test", "--no-check", "-A", ...(files.length ? files : ["test/", "src/"])],
};

interface Counts { passed: number; failed: number; skipped: number }

// Counts from each runner's own summary lines. Bun prints " N skip" only when something skipped;
// Deno prints "| N ignored" only then, and counts skipped tests inside a describe as steps.
function counts(runtime: string, raw: string): Counts | null {
  const out = raw.replace(/\x1b\[[0-9;]*m/g, "");
  if (runtime === "bun") {
    const p = out.match(/^\s*(\d+) pass$/m), f = out.match(/^\s*(\d+) fail$/m), s = out.match(/^\s*(\d+) skip$/m);
    return p && f ? { passed: +p[1], failed: +f[1], skipped: s ? +s[1] : 0 } : null;
  }
  const m = out.match(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored(?: \((\d+) steps?\))?)?/m);
  return m ? { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) + +(m[4] ?? 0) } : null;
}

// The names of the failed tests, for one list at the very end (a runner's own list scrolls away
// behind the next runtime's run): Bun's "(fail) name" lines, Deno's FAILURES section.
function failures(runtime: string, raw: string): string[] {
  const out = raw.replace(/\x1b\[[0-9;]*m/g, "");
  if (runtime === "bun") return [...new Set(out.match(/^\(fail\) .*$/gm) ?? [])].map((l) => l.slice(7));
  const section = out.split(/^ ?FAILURES ?$/m)[1] ?? "";
  return [...new Set(section.match(/^.+ => .+$/gm) ?? [])];
}

function run(runtime: string): Promise<Counts & { code: number; failures: string[] }> {
  return new Promise((resolve) => {
    const [cmd, ...args] = commands[runtime];
    const workers = process.env.FULCRUM_WORKERS ?? (runtime === "deno" ? "1" : undefined);
    console.log(`${runtime}: workers ${workers === undefined ? "auto (the default)" : `FULCRUM_WORKERS=${workers}`}`);
    const child = spawn(cmd, args, { env: { ...process.env, NO_COLOR: "1", ...(workers === undefined ? {} : { FULCRUM_WORKERS: workers }) } });
    let out = "";
    const take = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
      out += chunk.toString();
      stream.write(chunk);
    };
    child.stdout.on("data", take(process.stdout));
    child.stderr.on("data", take(process.stderr));
    child.on("close", (code) => {
      const c = counts(runtime, out);
      if (!c) console.error(`${runtime}: could not read the test summary`);
      resolve({ passed: c?.passed ?? 0, failed: c ? c.failed : 1, skipped: c?.skipped ?? 0, code: code ?? 1, failures: failures(runtime, out) });
    });
  });
}

provision();
let passed = 0, failed = 0, skipped = 0, bad = false;
const failedNames: string[] = [];
for (const runtime of runtimes) {
  const r = await run(runtime);
  console.log(`${runtime}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
  failedNames.push(...r.failures.map((name) => `${runtime}: ${name}`));
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
  if (r.code !== 0) bad = true;
}
for (const name of failedNames) console.log(`failed on ${name}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || bad ? 1 : 0);
