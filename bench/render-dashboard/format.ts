/** Value formatting for the Grafana units the dashboards use, close to what Grafana shows. */

export function formatValue(v: number, unit: string, decimals?: number): string {
  if (Number.isNaN(v)) return "–";
  if (v === Number.POSITIVE_INFINITY) return "∞";
  if (v === Number.NEGATIVE_INFINITY) return "-∞";
  switch (unit) {
    case "percentunit":
      return `${(v * 100).toFixed(decimals ?? (Math.abs(v) < 0.1 ? 1 : 0))}%`;
    case "currencyUSD":
      return `$${fixed(v, decimals)}`;
    case "s":
      return duration(v);
    case "bytes":
      return bytes(v);
    case "cps":
      return `${short(v, decimals)}/s`;
    default:
      return short(v, decimals);
  }
}

/** Fixed decimals when given, else about three significant digits (small costs stay readable). */
function fixed(v: number, decimals?: number): string {
  if (decimals !== undefined && Math.abs(v) >= 10 ** -decimals) return v.toFixed(decimals);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function short(v: number, decimals?: number): string {
  const a = Math.abs(v);
  for (const [size, suffix] of [
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "k"],
  ] as const) {
    if (a >= size) return `${trim((v / size).toFixed(a / size >= 100 ? 0 : 1))}${suffix}`;
  }
  if (decimals !== undefined) return v.toFixed(decimals);
  if (a === 0) return "0";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return trim(v.toFixed(1));
  if (a >= 0.01) return trim(v.toFixed(2));
  return v.toPrecision(2);
}

function duration(s: number): string {
  const a = Math.abs(s);
  if (a === 0) return "0 s";
  if (a < 1) return `${trim((s * 1000).toFixed(a < 0.01 ? 1 : 0))} ms`;
  if (a < 60) return `${trim(s.toFixed(a < 10 ? 2 : 1))} s`;
  if (a < 3600) return `${trim((s / 60).toFixed(1))} min`;
  if (a < 86400) return `${trim((s / 3600).toFixed(1))} h`;
  return `${trim((s / 86400).toFixed(1))} d`;
}

function bytes(v: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let x = v;
  let i = 0;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${trim(x.toFixed(x >= 100 ? 0 : 1))} ${units[i]}`;
}

function trim(s: string): string {
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/** About `count` round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 4): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

export function clock(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}
