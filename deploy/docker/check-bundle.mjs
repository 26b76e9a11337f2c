// Build-time check (runs in the image's last stage): every third-party package that the esbuild
// bundle imports must resolve from this directory's node_modules. pnpm's default layout hides
// packages that only a workspace package depends on; a miss here would otherwise be a crash at
// start-up in production.
//
// Usage: node check-bundle.mjs dist/main.js
import { builtinModules } from "node:module";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const bundle = resolve(process.argv[2] ?? "dist/main.js");
const source = readFileSync(bundle, "utf8");

// esbuild's ESM output: `import x from "pkg";`, `import { a } from "pkg/sub";`, `import "pkg";`,
// `export ... from "pkg"` and dynamic `import("pkg")`.
const specifiers = new Set();
for (const m of source.matchAll(/(?:^|[\s;}])(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/g)) specifiers.add(m[1]);
for (const m of source.matchAll(/(?:^|[\s;}])import\s*["']([^"']+)["']/g)) specifiers.add(m[1]);
for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) specifiers.add(m[1]);

const builtins = new Set(builtinModules);
const external = [...specifiers].filter((s) => !s.startsWith("node:") && !s.startsWith(".") && !s.startsWith("/") && !builtins.has(s));

// Resolved from this script's directory: the bundle sits one level below it (dist/), and bare
// specifiers resolve through the same node_modules from both.
const missing = [];
for (const specifier of external) {
  try {
    import.meta.resolve(specifier);
  } catch (err) {
    missing.push(`${specifier}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
if (missing.length > 0) {
  console.error(`check-bundle: ${bundle} imports packages that are not installed:\n  ${missing.join("\n  ")}`);
  process.exit(1);
}
console.log(`check-bundle: ${external.length} external packages resolve (${external.sort().join(", ")})`);
