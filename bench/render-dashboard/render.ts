/**
 * Renders a Grafana dashboard's data to a PNG without Grafana: every panel's PromQL is run against
 * a live Prometheus (template variables = All) and drawn in the panels' layout.
 *
 *   npx tsx bench/render-dashboard/render.ts --prometheus http://127.0.0.1:9090 \
 *     [--dashboard deploy/grafana/dashboards/fleet-overview.json] [--out docs/overview.png] \
 *     [--from -15m|<unix seconds>] [--to now|<unix seconds>] [--rate-interval 30s]
 *
 * test/observability.int.test.ts runs it against the Prometheus of its fleet when
 * TRACESIFT_RENDER_OVERVIEW=1 is set; that run produced docs/overview.png.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type PanelData, renderSvg, type Series } from "./svg.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

type Target = { expr?: string; legendFormat?: string; instant?: boolean; hide?: boolean };
type Panel = {
  type: string;
  title?: string;
  gridPos: PanelData["gridPos"];
  targets?: Target[];
  panels?: Panel[];
  fieldConfig?: {
    defaults?: {
      unit?: string;
      decimals?: number;
      min?: number;
      max?: number;
      thresholds?: { steps: PanelData["steps"] };
      custom?: { stacking?: { mode?: string } };
    };
  };
};
type Dashboard = { title: string; panels: Panel[]; templating?: { list: { name: string }[] } };
type PromSample = { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] };

export type RenderOptions = {
  prometheus: string;
  dashboardFile: string;
  out: string;
  /** Unix seconds. */
  from: number;
  to: number;
  rateInterval: string;
};

export async function renderDashboard(o: RenderOptions): Promise<{ svg: string; panels: PanelData[] }> {
  const dashboard = JSON.parse(readFileSync(o.dashboardFile, "utf8")) as Dashboard;
  const span = Math.max(1, Math.round(o.to - o.from));
  const step = Math.max(1, Math.round(span / 300));
  const values: Record<string, string> = { __rate_interval: o.rateInterval, __interval: `${step}s`, __range: `${span}s` };
  for (const v of dashboard.templating?.list ?? []) values[v.name] = ".*";

  const flat = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const panels: PanelData[] = [];
  for (const p of flat) {
    const d = p.fieldConfig?.defaults ?? {};
    const series: Series[] = [];
    for (const t of p.targets ?? []) {
      if (t.hide || !t.expr) continue;
      const expr = interpolate(t.expr, values);
      const result = t.instant ? await query(o.prometheus, expr, o.to) : await queryRange(o.prometheus, expr, o.from, o.to, step);
      for (const s of result) {
        const points = (s.values ?? (s.value ? [s.value] : [])).map(([ts, v]) => [ts, Number(v)] as [number, number]);
        series.push({ name: legend(t.legendFormat, s.metric), points });
      }
    }
    panels.push({
      type: p.type,
      title: p.title ?? "",
      gridPos: p.gridPos,
      unit: d.unit ?? "short",
      ...(d.decimals !== undefined ? { decimals: d.decimals } : {}),
      ...(d.min !== undefined ? { min: d.min } : {}),
      ...(d.max !== undefined ? { max: d.max } : {}),
      stacked: d.custom?.stacking?.mode === "normal",
      steps: d.thresholds?.steps ?? [{ color: "green", value: null }],
      series: series.sort((a, b) => a.name.localeCompare(b.name)),
    });
  }
  const fmt = (t: number) => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19);
  const svg = renderSvg({
    title: dashboard.title,
    subtitle: `${fmt(o.from)} – ${fmt(o.to)} UTC · all environments, apps and models · $__rate_interval = ${o.rateInterval} · data: ${o.prometheus}`,
    panels,
  });
  return { svg, panels };
}

/** The PNG of an SVG, by resvg (a prebuilt binary, declared by the test package). */
export function svgToPng(svg: string): Buffer {
  const require = createRequire(join(REPO_ROOT, "test/package.json"));
  const { Resvg } = require("@resvg/resvg-js") as {
    Resvg: new (svg: string, opts: object) => { render(): { asPng(): Buffer } };
  };
  return new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "#111217" }).render().asPng();
}

function interpolate(expr: string, values: Record<string, string>): string {
  let out = expr;
  for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
    out = out.replaceAll(new RegExp(`\\$\\{${name}(?::[^}]*)?\\}|\\[\\[${name}\\]\\]|\\$${name}(?![A-Za-z0-9_])`, "g"), values[name]!);
  }
  return out;
}

function legend(format: string | undefined, metric: Record<string, string>): string {
  if (format && format !== "__auto") return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => metric[k] ?? "");
  const labels = Object.entries(metric).filter(([k]) => k !== "__name__");
  return labels.length ? labels.map(([k, v]) => `${k}=${v}`).join(", ") : "value";
}

async function api(base: string, path: string, params: Record<string, string>): Promise<PromSample[]> {
  const res = await fetch(`${base}${path}`, { method: "POST", body: new URLSearchParams(params) });
  const json = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
  if (json.status !== "success" || !json.data) throw new Error(`${params.query}: ${json.error ?? `HTTP ${res.status}`}`);
  if (json.data.resultType === "scalar") return [{ metric: {}, value: json.data.result as [number, string] }];
  return json.data.result as PromSample[];
}

const query = (base: string, expr: string, time: number) => api(base, "/api/v1/query", { query: expr, time: String(time) });
const queryRange = (base: string, expr: string, start: number, end: number, step: number) =>
  api(base, "/api/v1/query_range", { query: expr, start: String(start), end: String(end), step: String(step) });

/** `now`, unix seconds, or `-15m` / `-2h` / `-30s` relative to now. */
function parseTime(s: string, now: number): number {
  if (s === "now") return now;
  const rel = /^-(\d+)([smh])$/.exec(s);
  if (rel) return now - Number(rel[1]) * { s: 1, m: 60, h: 3600 }[rel[2] as "s" | "m" | "h"];
  const n = Number(s);
  if (!Number.isFinite(n)) throw new Error(`bad time ${s}: use now, -15m or unix seconds`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prometheus: { type: "string", default: "http://127.0.0.1:9090" },
      dashboard: { type: "string", default: "deploy/grafana/dashboards/fleet-overview.json" },
      out: { type: "string", default: "docs/overview.png" },
      from: { type: "string", default: "-15m" },
      to: { type: "string", default: "now" },
      "rate-interval": { type: "string", default: "30s" },
      svg: { type: "boolean", default: false },
    },
  });
  const now = Date.now() / 1000;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(process.cwd(), p));
  const out = abs(values.out);
  const { svg, panels } = await renderDashboard({
    prometheus: values.prometheus.replace(/\/$/, ""),
    dashboardFile: abs(values.dashboard),
    out,
    from: parseTime(values.from, now),
    to: parseTime(values.to, now),
    rateInterval: values["rate-interval"],
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, svgToPng(svg));
  if (values.svg) writeFileSync(out.replace(/\.png$/, ".svg"), svg);
  const empty = panels.filter((p) => p.type !== "row" && p.series.length === 0).map((p) => p.title);
  process.stdout.write(`wrote ${out} (${panels.filter((p) => p.type !== "row").length} panels${empty.length ? `; no data: ${empty.join(", ")}` : ""})\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`render-dashboard: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
