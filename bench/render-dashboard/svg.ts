/**
 * Draws a Grafana dashboard's data as SVG in Grafana's dark theme, laid out by the panels'
 * gridPos: time series as line (or stacked area) charts, stats as big numbers, gauges as arcs.
 */
import { clock, formatValue, niceTicks } from "./format.ts";

export type Series = { name: string; points: [t: number, v: number][] };
export type PanelData = {
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  unit: string;
  decimals?: number;
  min?: number;
  max?: number;
  stacked: boolean;
  /** Stat colour steps, Grafana's `thresholds.steps`. */
  steps: { color: string; value: number | null }[];
  series: Series[];
};

const THEME = { bg: "#111217", panel: "#181b1f", border: "#2c3235", text: "#ccccdc", dim: "#8e8e9a", grid: "#2a2d33" };
const PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17"];
const NAMED: Record<string, string> = { green: "#73bf69", yellow: "#fade2a", red: "#f2495c", orange: "#ff9830", blue: "#5794f2" };
const UNIT_W = 1600 / 24;
const UNIT_H = 30;
const GAP = 8;
const FONT = "DejaVu Sans, sans-serif";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
/** DejaVu Sans averages ~0.58 em per character. */
const fit = (s: string, px: number, size: number) => {
  const max = Math.floor(px / (size * 0.58));
  return s.length <= max ? s : `${s.slice(0, Math.max(1, max - 1))}…`;
};
const text = (x: number, y: number, s: string, size: number, fill: string, extra = "") =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${size}" fill="${fill}" font-family="${FONT}" ${extra}>${esc(s)}</text>`;

export function renderSvg(options: { title: string; subtitle: string; panels: PanelData[] }): string {
  const header = 56;
  const bottom = Math.max(...options.panels.map((p) => p.gridPos.y + p.gridPos.h));
  const width = 1600 + GAP;
  const height = header + bottom * UNIT_H + GAP;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="${THEME.bg}"/>`,
    text(GAP + 4, 26, options.title, 20, THEME.text, 'font-weight="bold"'),
    text(GAP + 4, 46, options.subtitle, 12, THEME.dim),
  ];
  for (const p of options.panels) {
    const box = {
      x: GAP + p.gridPos.x * UNIT_W,
      y: header + p.gridPos.y * UNIT_H,
      w: p.gridPos.w * UNIT_W - GAP,
      h: p.gridPos.h * UNIT_H - GAP,
    };
    if (p.type === "row") {
      parts.push(text(box.x + 2, box.y + 20, p.title, 14, THEME.text, 'font-weight="bold"'));
      continue;
    }
    parts.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" rx="3" fill="${THEME.panel}" stroke="${THEME.border}"/>`);
    parts.push(text(box.x + 8, box.y + 18, fit(p.title, box.w - 16, 12), 12, THEME.text, 'font-weight="bold"'));
    const inner = { x: box.x + 8, y: box.y + 26, w: box.w - 16, h: box.h - 32 };
    if (p.series.length === 0) parts.push(text(inner.x + inner.w / 2, inner.y + inner.h / 2, "No data", 13, THEME.dim, 'text-anchor="middle"'));
    else if (p.type === "stat") parts.push(stat(p, inner));
    else if (p.type === "gauge") parts.push(gauge(p, inner));
    else parts.push(timeseries(p, inner));
  }
  parts.push("</svg>");
  return parts.join("\n");
}

type Box = { x: number; y: number; w: number; h: number };

function lastValue(p: PanelData): number {
  const points = p.series[0]?.points ?? [];
  for (let i = points.length - 1; i >= 0; i--) if (!Number.isNaN(points[i]![1])) return points[i]![1];
  return Number.NaN;
}

function thresholdColor(p: PanelData, v: number): string {
  let color = p.steps[0]?.color ?? "green";
  for (const s of p.steps) if (s.value !== null && v >= s.value) color = s.color;
  return NAMED[color] ?? color;
}

function stat(p: PanelData, b: Box): string {
  const v = lastValue(p);
  const color = thresholdColor(p, v);
  const out: string[] = [];
  const points = (p.series[0]?.points ?? []).filter(([, y]) => Number.isFinite(y));
  if (points.length > 1) {
    // Sparkline under the number, as Grafana's graphMode "area".
    const ys = points.map(([, y]) => y);
    const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
    const [t0, t1] = [points[0]![0], points[points.length - 1]![0]];
    const sx = (t: number) => b.x + ((t - t0) / (t1 - t0 || 1)) * b.w;
    const sy = (y: number) => b.y + b.h - ((y - lo) / (hi - lo || 1)) * (b.h * 0.45);
    const d = points.map(([t, y], i) => `${i ? "L" : "M"}${sx(t).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    out.push(`<path d="${d}L${sx(t1).toFixed(1)},${b.y + b.h}L${sx(t0).toFixed(1)},${b.y + b.h}Z" fill="${color}" fill-opacity="0.15" stroke="${color}" stroke-width="1.2"/>`);
  }
  const label = formatValue(v, p.unit, p.decimals);
  const size = Math.min(34, b.h * 0.42, (b.w / Math.max(4, label.length)) * 1.5);
  // The number sits above the sparkline (which fills the lower part of the panel).
  const y = points.length > 1 ? b.y + b.h * 0.3 + size * 0.35 : b.y + b.h * 0.5 + size * 0.35;
  out.push(text(b.x + b.w / 2, y, label, size, color, 'text-anchor="middle" font-weight="bold"'));
  return out.join("\n");
}

function gauge(p: PanelData, b: Box): string {
  const v = lastValue(p);
  const [lo, hi] = [p.min ?? 0, p.max ?? 1];
  const frac = Number.isFinite(v) ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0;
  const r = Math.min(b.w / 2, b.h * 0.9) * 0.85;
  const cx = b.x + b.w / 2;
  const cy = b.y + b.h * 0.9;
  const arc = (f: number) => {
    const a = Math.PI * (1 - f);
    return [cx + r * Math.cos(a), cy - r * Math.sin(a)] as const;
  };
  const [sx, sy] = arc(0);
  const [ex, ey] = arc(1);
  const [vx, vy] = arc(frac);
  const color = thresholdColor(p, v);
  return [
    `<path d="M${sx},${sy} A${r},${r} 0 0 1 ${ex},${ey}" fill="none" stroke="${THEME.grid}" stroke-width="${r * 0.18}"/>`,
    frac > 0 ? `<path d="M${sx},${sy} A${r},${r} 0 0 1 ${vx},${vy}" fill="none" stroke="${color}" stroke-width="${r * 0.18}"/>` : "",
    text(cx, cy - r * 0.15, formatValue(v, p.unit, p.decimals), Math.min(30, r * 0.45), color, 'text-anchor="middle" font-weight="bold"'),
  ].join("\n");
}

function timeseries(p: PanelData, b: Box): string {
  const out: string[] = [];
  // Legend: as many rows as needed, at most three.
  const items = p.series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length]! }));
  const rows: { name: string; color: string; x: number }[][] = [[]];
  let cursor = 0;
  for (const item of items) {
    const w = Math.min(b.w, 18 + item.name.length * 11 * 0.58 + 14);
    if (cursor + w > b.w && rows[rows.length - 1]!.length > 0) {
      rows.push([]);
      cursor = 0;
    }
    rows[rows.length - 1]!.push({ ...item, x: cursor });
    cursor += w;
  }
  const legendRows = rows.slice(0, 3);
  const legendH = legendRows.length * 15;
  const plot = { x: b.x + 52, y: b.y + 4, w: b.w - 56, h: b.h - legendH - 22 };

  // Stacked panels draw cumulative sums; NaN counts as 0 there and breaks a line otherwise.
  const times = [...new Set(p.series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, c) => a - c);
  const lookup = p.series.map((s) => new Map(s.points));
  const drawn = p.series.map((_, i) => {
    return times.map((t) => {
      if (!p.stacked) return lookup[i]!.get(t) ?? Number.NaN;
      let sum = 0;
      for (let j = 0; j <= i; j++) {
        const v = lookup[j]!.get(t);
        if (v !== undefined && Number.isFinite(v)) sum += v;
      }
      return lookup[i]!.has(t) ? sum : Number.NaN;
    });
  });
  const finite = drawn.flat().filter(Number.isFinite);
  const lo = p.min ?? Math.min(0, ...finite);
  let hi = p.max ?? Math.max(lo, ...finite);
  // Headroom above the highest point; an all-zero panel gets a 0..1 axis instead of 0..1e-9.
  if (p.max === undefined) hi = hi > lo ? lo + (hi - lo) * 1.08 : lo + 1;
  const t0 = times[0] ?? 0;
  const t1 = times[times.length - 1] ?? 1;
  const sx = (t: number) => plot.x + ((t - t0) / (t1 - t0 || 1)) * plot.w;
  const sy = (v: number) => plot.y + plot.h - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo || 1)) * plot.h;

  for (const tick of niceTicks(lo, hi, 4)) {
    const y = sy(tick);
    out.push(`<line x1="${plot.x}" x2="${plot.x + plot.w}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${THEME.grid}"/>`);
    out.push(text(plot.x - 4, y + 3.5, formatValue(tick, p.unit, undefined), 10, THEME.dim, 'text-anchor="end"'));
  }
  const xticks = Math.max(2, Math.floor(plot.w / 110));
  for (let i = 0; i <= xticks; i++) {
    const t = t0 + ((t1 - t0) * i) / xticks;
    out.push(text(sx(t), plot.y + plot.h + 13, clock(t), 10, THEME.dim, `text-anchor="${i === 0 ? "start" : i === xticks ? "end" : "middle"}"`));
  }

  drawn.forEach((values, i) => {
    const color = items[i]!.color;
    let d = "";
    let open = false;
    values.forEach((v, k) => {
      if (!Number.isFinite(v)) {
        open = false;
        return;
      }
      d += `${open ? "L" : "M"}${sx(times[k]!).toFixed(1)},${sy(v).toFixed(1)}`;
      open = true;
    });
    if (!d) return;
    if (p.stacked) {
      // Area between this series and the one below it.
      const below = i === 0 ? values.map(() => lo) : drawn[i - 1]!;
      const top = values.map((v, k) => [sx(times[k]!), sy(Number.isFinite(v) ? v : (below[k] ?? lo))] as const);
      const base = below.map((v, k) => [sx(times[k]!), sy(Number.isFinite(v) ? v : lo)] as const).reverse();
      const poly = [...top, ...base].map(([x, y], k) => `${k ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
      out.push(`<path d="${poly}Z" fill="${color}" fill-opacity="0.3" stroke="none"/>`);
    }
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5" stroke-linejoin="round"/>`);
  });

  legendRows.forEach((row, r) => {
    const y = b.y + b.h - legendH + r * 15 + 8;
    for (const item of row) {
      out.push(`<rect x="${b.x + item.x}" y="${y - 3}" width="12" height="3" fill="${item.color}"/>`);
      out.push(text(b.x + item.x + 16, y + 1, fit(item.name, b.w - item.x - 20, 11), 11, THEME.text));
    }
  });
  return out.join("\n");
}
