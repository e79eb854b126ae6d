/**
 * Keeps dependencies pointing one way (style.md): each part of src/ may import only the
 * parts listed for it. Run by `npm test`; exits non-zero and names every offending import.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const src = join(root, "src");

/** part -> parts it may import (itself always allowed). `cmd` may import everything. */
const allowed: Record<string, readonly string[]> = {
  base: [],
  gen: [],
  model: ["base"],
  kube: ["base", "model"],
  devcluster: ["base"],
  registry: ["base", "model", "kube"],
  xds: ["base", "model", "gen"],
  ca: ["base", "model", "gen", "kube"],
  inject: ["base", "model"],
  proxy: ["base", "model", "gen", "xds"],
  discovery: ["base", "model", "gen", "kube", "registry", "xds", "ca", "inject"],
  cli: ["base", "model", "gen", "kube", "inject", "ca", "xds", "devcluster"],
  programs: ["base"],
};

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

const problems: string[] = [];
const importRe = /(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
for (const file of walk(src)) {
  const part = relative(src, file).split("/")[0] ?? "";
  if (part === "cmd" || file.endsWith(".test.ts")) continue;
  const rules = allowed[part];
  if (rules === undefined) {
    problems.push(`${relative(root, file)}: src/${part}/ is not a known part; add it to scripts/check-deps.ts`);
    continue;
  }
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? "";
    if (!spec.startsWith(".")) continue;
    const target = relative(src, resolve(dirname(file), spec));
    if (target.startsWith("..")) continue;
    const targetPart = target.split("/")[0] ?? "";
    if (targetPart === part || rules.includes(targetPart)) continue;
    problems.push(`${relative(root, file)} imports ${spec}: src/${part}/ must not depend on src/${targetPart}/`);
  }
}
if (problems.length > 0) {
  console.error(`Dependency direction broken (${problems.length}):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log("dependency direction ok");
