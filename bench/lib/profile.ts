/**
 * Summarises V8 `.cpuprofile` files (written by `node --cpu-prof`) into self time per package and
 * per function, to say where a service spends its CPU.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

/** Where a frame's code lives: an npm package, a workspace package, a Node internal module, or a VM bucket. */
export function categoryOf(url: string, functionName: string): string {
  if (!url) return functionName ? `(${functionName.replace(/[()]/g, "")})` : "(unknown)";
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm?.[1]) return pnpm[1];
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm?.[1]) return nm[1];
  const ws = /\/(packages|services)\/([^/]+)\//.exec(url);
  if (ws?.[2]) return ws[1] === "packages" ? `@tracesift/${ws[2]}` : `services/${ws[2]}`;
  if (url.startsWith("node:internal/deps/")) return `node:${url.split("/")[2] ?? "deps"}`;
  if (url.startsWith("node:")) return `node:${url.replace(/^node:(internal\/)?/, "").split("/")[0] ?? ""}`;
  return url.split("/").slice(-2).join("/");
}

export type ProfileSummary = {
  files: number;
  busyMs: number;
  /** What the samples cover: the whole process life, or a window. */
  scope: string;
  byCategory: { name: string; ms: number; share: number }[];
  byFunction: { name: string; ms: number; share: number }[];
  /** Self + callee time by function (a frame counted once per sample, recursion or not). */
  inclusive?: { name: string; ms: number; share: number }[];
};

const frameName = (cf: ProfileNode["callFrame"]) =>
  `${cf.functionName || "(anonymous)"} ${cf.url ? `${cf.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/\/work\/main\//, "")}:${cf.lineNumber + 1}` : ""}`.trim();

/**
 * Aggregates every profile in the given directories: self time by package and function, and with
 * `inclusive` also total time by function. With `window` (µs on the profiles' monotonic clock,
 * e.g. `process.hrtime` of another process) only the samples taken inside it count.
 */
export function summariseProfiles(dirs: string[], options: { window?: { fromUs: number; toUs: number }; inclusive?: boolean } = {}): ProfileSummary {
  const cat = new Map<string, number>();
  const fn = new Map<string, number>();
  const incl = new Map<string, number>();
  let files = 0;
  let busy = 0;
  const entries: string[] = [];
  for (const dir of dirs) {
    try {
      entries.push(...readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).map((f) => join(dir, f)));
    } catch {
      // no profiles there
    }
  }
  const { window } = options;
  for (const file of entries) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    files++;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    if (options.inclusive) for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    let t = profile.startTime;
    // Self time from sample deltas (µs): each sample owns the delta to the next one.
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i] ?? 0;
      if (window && (t < window.fromUs || t > window.toUs)) continue;
      const node = byId.get(profile.samples[i] ?? -1);
      const us = profile.timeDeltas[i + 1] ?? 0;
      if (!node) continue;
      const { functionName, url } = node.callFrame;
      if (functionName === "(idle)") continue;
      const ms = us / 1000;
      busy += ms;
      const c = categoryOf(url, functionName);
      cat.set(c, (cat.get(c) ?? 0) + ms);
      const f = frameName(node.callFrame);
      fn.set(f, (fn.get(f) ?? 0) + ms);
      if (options.inclusive) {
        const onStack = new Set<string>();
        for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
          const n = byId.get(id);
          if (n) onStack.add(frameName(n.callFrame));
        }
        for (const name of onStack) incl.set(name, (incl.get(name) ?? 0) + ms);
      }
    }
  }
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), share: busy > 0 ? ms / busy : 0 }));
  return {
    files,
    busyMs: Math.round(busy),
    scope: window ? "measured window only" : "whole process life, incl. start-up and warm-up",
    byCategory: top(cat, 14),
    byFunction: top(fn, options.inclusive ? 30 : 12),
    ...(options.inclusive ? { inclusive: top(incl, 50) } : {}),
  };
}

export function printProfile(title: string, s: ProfileSummary): void {
  console.log(`\n${title}: ${s.files} profile(s), ${s.busyMs} ms on CPU (${s.scope})`);
  const list = (rows: { name: string; ms: number; share: number }[]) => {
    for (const r of rows) console.log(`    ${(r.share * 100).toFixed(1).padStart(5)}%  ${String(r.ms).padStart(6)} ms  ${r.name}`);
  };
  console.log("  by package:");
  list(s.byCategory);
  console.log("  hottest functions (self time):");
  list(s.byFunction);
  if (s.inclusive) {
    console.log("  total time (self + callees) by function:");
    list(s.inclusive);
  }
}
