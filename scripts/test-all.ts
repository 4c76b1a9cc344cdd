// Runs the suite under Bun and under Deno and prints one closing line, "N passed, N failed",
// summed over both (neither runtime prints that line itself).
// FULCRUM_TEST_RUNTIMES=bun or =deno limits the run; extra arguments pick test files.
import { spawn } from "node:child_process";

const files = process.argv.slice(2);
const runtimes = (process.env.FULCRUM_TEST_RUNTIMES ?? "bun,deno").split(",").filter(Boolean);

const commands: Record<string, string[]> = {
  bun: ["bun", "test", "--timeout", "120000", ...(files.length ? files.map((f) => `./${f}`) : ["./test/", "./src/"])],
  deno: ["deno", "test", "--no-check", "-A", ...(files.length ? files : ["test/", "src/"])],
};

// Counts from each runner's own summary lines.
function counts(runtime: string, raw: string): { passed: number; failed: number } | null {
  const out = raw.replace(/\x1b\[[0-9;]*m/g, "");
  if (runtime === "bun") {
    const p = out.match(/^\s*(\d+) pass$/m), f = out.match(/^\s*(\d+) fail$/m);
    return p && f ? { passed: +p[1], failed: +f[1] } : null;
  }
  const m = out.match(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/m);
  return m ? { passed: +m[1], failed: +m[2] } : null;
}

function run(runtime: string): Promise<{ passed: number; failed: number; code: number }> {
  return new Promise((resolve) => {
    const [cmd, ...args] = commands[runtime];
    const child = spawn(cmd, args, { env: { ...process.env, NO_COLOR: "1" } });
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
      resolve({ passed: c?.passed ?? 0, failed: c ? c.failed : 1, code: code ?? 1 });
    });
  });
}

let passed = 0, failed = 0, bad = false;
for (const runtime of runtimes) {
  const r = await run(runtime);
  console.log(`${runtime}: ${r.passed} passed, ${r.failed} failed`);
  passed += r.passed;
  failed += r.failed;
  if (r.code !== 0) bad = true;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || bad ? 1 : 0);
