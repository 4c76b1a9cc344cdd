// The layout rules over the imports of src/ (docs/architecture.md): parts that know no protocol
// never import the edge, the config toolkit imports no part, and there are no import circles.
// `bun scripts/check-imports.ts` prints every breach and exits 1; test/layout.test.ts runs it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

export interface Breach {
  rule: string;
  detail: string;
}

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^"';]*?\s+from\s+)?["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

/** Rules: files under `from` may not import files under any of `not`. */
const FORBIDDEN: { from: string; not: string[]; why: string }[] = [
  { from: "src/balancer/", not: ["src/edge/"], why: "the balancer knows no protocol" },
  { from: "src/health/", not: ["src/edge/"], why: "health depends on the balancer, never on the edge" },
  { from: "src/vrrp/", not: ["src/edge/"], why: "vrrp knows no HTTP" },
  { from: "src/edge/", not: ["src/control/", "src/cli/"], why: "parts never import the control plane; it imports them" },
  { from: "src/balancer/", not: ["src/control/", "src/cli/"], why: "parts never import the control plane; it imports them" },
  { from: "src/health/", not: ["src/control/", "src/cli/"], why: "parts never import the control plane; it imports them" },
  { from: "src/vrrp/", not: ["src/control/", "src/cli/"], why: "parts never import the control plane; it imports them" },
  { from: "src/discovery/", not: ["src/edge/"], why: "discovery feeds the balancer and knows no protocol" },
  { from: "src/discovery/", not: ["src/control/", "src/cli/"], why: "parts never import the control plane; it imports them" },
  { from: "src/log/", not: ["src/edge/", "src/l4/", "src/control/", "src/cli/"], why: "the access log writes the records it is handed and knows none of their makers" },
  {
    from: "src/config/",
    not: ["src/balancer/", "src/edge/", "src/health/", "src/vrrp/", "src/control/", "src/cli/", "src/l4/", "src/core/", "src/http1/", "src/discovery/"],
    why: "the config toolkit imports no part; each part reads its own section",
  },
];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

/** Each source file (relative to the repo) and the src/ files it imports. */
export function importGraph(root = ROOT): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(join(root, "src"))) {
    const text = readFileSync(file, "utf8");
    const targets: string[] = [];
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[3] ?? m[4];
      const target = relative(root, normalize(join(dirname(file), spec)));
      if (target.startsWith("src/")) targets.push(target);
    }
    graph.set(relative(root, file), targets);
  }
  return graph;
}

export function checkImports(root = ROOT): Breach[] {
  const graph = importGraph(root);
  const breaches: Breach[] = [];
  for (const [file, targets] of graph) {
    for (const rule of FORBIDDEN) {
      if (!file.startsWith(rule.from)) continue;
      for (const t of targets) {
        if (rule.not.some((n) => t.startsWith(n))) breaches.push({ rule: rule.why, detail: `${file} imports ${t}` });
      }
    }
  }
  for (const files of cycles(graph)) {
    breaches.push({ rule: "no import circles", detail: `${files.path.join(" -> ")} (files in the circle: ${files.members.join(", ")})` });
  }
  return breaches;
}

/** One cycle per strongly connected component of more than one file (or a file importing itself). */
function cycles(graph: Map<string, string[]>): { path: string[]; members: string[] }[] {
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [], found: { path: string[]; members: string[] }[] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); component.push(w); } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push({ path: pathThrough(graph, component), members: component.sort() });
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

// A readable cycle inside a component: from its first file, follow imports that stay inside.
function pathThrough(graph: Map<string, string[]>, component: string[]): string[] {
  const inside = new Set(component);
  const start = component.sort()[0];
  const path = [start];
  const seen = new Set([start]);
  let at = start;
  for (;;) {
    const nextFile = (graph.get(at) ?? []).find((t) => inside.has(t) && (t === start || !seen.has(t)));
    if (!nextFile) return path;
    path.push(nextFile);
    if (nextFile === start) return path;
    seen.add(nextFile);
    at = nextFile;
  }
}

if (import.meta.main) {
  const breaches = checkImports();
  for (const b of breaches) console.log(`${b.rule}: ${b.detail}`);
  console.log(breaches.length === 0 ? "imports: ok" : `imports: ${breaches.length} breach(es)`);
  process.exit(breaches.length === 0 ? 0 : 1);
}
