/**
 * A real Prometheus for integration tests (the Debian package's binary), plus readers of what
 * deploy/ ships: the Prometheus config and rules, and the PromQL of every Grafana panel.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parse, stringify } from "yaml";
import { REPO_ROOT, waitForHttp } from "../../services/cli/src/fleet.ts";
import { freePort } from "./fleet.ts";

export const PROMETHEUS_DIR = join(REPO_ROOT, "deploy/prometheus");
export const DASHBOARD_DIR = join(REPO_ROOT, "deploy/grafana/dashboards");
export const RULES_FILE = join(PROMETHEUS_DIR, "rules/tracesift.rules.yml");

/** The binary's path; throws with the install command when the Debian package is missing. */
export function requireBinary(name: "prometheus" | "promtool" | "prometheus-pushgateway" | "prometheus-redis-exporter"): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not in this directory
    }
  }
  const pkg = name === "promtool" ? "prometheus" : name;
  throw new Error(`${name} not found on PATH: run \`scripts/services.sh tools ${pkg}\` (installs the Debian package ${pkg})`);
}

export function promtool(args: string[], cwd = PROMETHEUS_DIR): { code: number | null; output: string } {
  const res = spawnSync(requireBinary("promtool"), args, { cwd, encoding: "utf8" });
  return { code: res.status, output: `${res.stdout}${res.stderr}` };
}

// ---------------------------------------------------------------- what deploy/ ships

export type PanelQuery = { dashboard: string; panel: string; refId: string; expr: string; instant: boolean };
type Target = { refId?: string; expr?: string; instant?: boolean; hide?: boolean };
type Panel = { type: string; title?: string; targets?: Target[]; panels?: Panel[] };
type Dashboard = { title: string; panels: Panel[]; templating?: { list: { name: string; query: string | { query: string } }[] } };

export function readDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(join(DASHBOARD_DIR, file), "utf8")) as Dashboard;
}

/** Every visible PromQL target of every panel, rows (collapsed ones hold their panels) included. */
export function dashboardQueries(dashboard: Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  const visit = (panels: Panel[]) => {
    for (const p of panels) {
      if (p.panels) visit(p.panels);
      for (const t of p.targets ?? []) {
        if (t.hide || !t.expr) continue;
        out.push({ dashboard: dashboard.title, panel: p.title ?? "(untitled)", refId: t.refId ?? "A", expr: t.expr, instant: t.instant === true });
      }
    }
  };
  visit(dashboard.panels);
  return out;
}

/** Template variables defined by `label_values(selector, label)` queries. */
export function dashboardVariables(dashboard: Dashboard): { name: string; selector: string; label: string }[] {
  return (dashboard.templating?.list ?? []).map((v) => {
    const query = typeof v.query === "string" ? v.query : v.query.query;
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(query.trim());
    if (!m) throw new Error(`variable ${v.name}: only label_values(selector, label) is supported, got ${query}`);
    return { name: v.name, selector: m[1]!, label: m[2]! };
  });
}

/**
 * Grafana's interpolation for a test: `$var`, `${var}`, `${var:fmt}` and `[[var]]`. Longer names
 * first, so `$__rate_interval` is not read as `$__rate`.
 */
export function substitute(expr: string, values: Record<string, string>): string {
  let out = expr;
  for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
    const v = values[name]!;
    out = out
      .replaceAll(new RegExp(`\\$\\{${name}(?::[^}]*)?\\}`, "g"), v)
      .replaceAll(`[[${name}]]`, v)
      .replaceAll(new RegExp(`\\$${name}(?![A-Za-z0-9_])`, "g"), v);
  }
  const left = /\$\{?[A-Za-z_]\w*/.exec(out);
  if (left) throw new Error(`unsubstituted variable ${left[0]} in ${expr}`);
  return out;
}

export function ruleExpressions(file = RULES_FILE): { name: string; kind: "record" | "alert"; expr: string }[] {
  const doc = parse(readFileSync(file, "utf8")) as { groups: { rules: { record?: string; alert?: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) =>
    g.rules.map((r) => ({ name: (r.record ?? r.alert)!, kind: r.record ? ("record" as const) : ("alert" as const), expr: String(r.expr) })),
  );
}

type ScrapeConfig = { job_name: string; static_configs?: { targets: string[]; labels?: Record<string, string> }[]; [k: string]: unknown };

/**
 * The shipped prometheus.yml with each job's discovery replaced by local targets: labels,
 * relabelling and rules stay as shipped, so the test exercises what Compose deploys.
 */
export function localConfig(
  targets: Record<string, string[]>,
  options: { scrapeInterval: string; extraJobs?: ScrapeConfig[]; omitJobs?: string[] },
): object {
  const shipped = parse(readFileSync(join(PROMETHEUS_DIR, "prometheus.yml"), "utf8")) as {
    global: Record<string, unknown>;
    rule_files: string[];
    scrape_configs: ScrapeConfig[];
  };
  const scrape_configs = shipped.scrape_configs.filter((job) => !options.omitJobs?.includes(job.job_name)).map((job) => {
    const local = targets[job.job_name];
    if (!local) throw new Error(`no local targets for job ${job.job_name}`);
    const labels = job.static_configs?.[0]?.labels ?? {};
    const copy: ScrapeConfig = { ...job };
    for (const key of Object.keys(copy)) if (key.endsWith("_sd_configs")) delete copy[key];
    return { ...copy, static_configs: [{ targets: local, labels }] };
  });
  return {
    ...shipped,
    global: { ...shipped.global, scrape_interval: options.scrapeInterval, evaluation_interval: options.scrapeInterval },
    rule_files: shipped.rule_files.map((f) => join(PROMETHEUS_DIR, f)),
    scrape_configs: [...scrape_configs, ...(options.extraJobs ?? [])],
  };
}

// ---------------------------------------------------------------- exporters

/**
 * A Debian-packaged exporter or gateway on a free local port (the Pushgateway, the Redis
 * exporter), with its output in logDir; `stop()` ends it.
 */
export async function startExporter(
  name: "prometheus-pushgateway" | "prometheus-redis-exporter",
  args: (port: number) => string[],
  options: { logDir: string },
): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const binary = requireBinary(name);
  const port = await freePort();
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(binary, args(port), { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/metrics`, 30_000, { name, child, logFile, exited, stop: async () => null });
  return {
    url,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      log.end();
    },
  };
}

// ---------------------------------------------------------------- a running Prometheus

export type Sample = { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] };
export type QueryResult = { ok: true; series: Sample[] } | { ok: false; error: string };

export type RunningPrometheus = Awaited<ReturnType<typeof startPrometheus>>;

export async function startPrometheus(config: object, options: { logDir: string }) {
  const binary = requireBinary("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "tracesift-prom-"));
  const configFile = join(dir, "prometheus.yml");
  writeFileSync(configFile, stringify(config));
  const port = await freePort();
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, "prometheus.log");
  const log = createWriteStream(logFile, { flags: "a" });
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=1d",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  const url = `http://127.0.0.1:${port}`;
  const service = { name: "prometheus", child, logFile, exited, stop: async () => null };
  await waitForHttp(`${url}/-/ready`, 30_000, service);

  async function api(path: string, params: Record<string, string | string[]>): Promise<QueryResult & { data?: unknown }> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
    const res = await fetch(`${url}${path}`, { method: "POST", body });
    const json = (await res.json()) as { status: string; data?: { result?: Sample[] } | string[]; error?: string };
    if (json.status !== "success") return { ok: false, error: json.error ?? `HTTP ${res.status}` };
    const data = json.data;
    return { ok: true, series: Array.isArray(data) ? [] : (data?.result ?? []), data };
  }

  return {
    url,
    logFile,
    configFile,
    /** Instant query; a scalar result counts as one series. */
    async query(expr: string, time?: number): Promise<QueryResult> {
      const r = await api("/api/v1/query", { query: expr, ...(time ? { time: String(time) } : {}) });
      if (!r.ok) return r;
      const data = r.data as { resultType: string; result: unknown };
      if (data.resultType === "scalar" || data.resultType === "string") {
        return { ok: true, series: [{ metric: {}, value: data.result as [number, string] }] };
      }
      return { ok: true, series: data.result as Sample[] };
    },
    async queryRange(expr: string, start: number, end: number, step: number): Promise<QueryResult> {
      return api("/api/v1/query_range", { query: expr, start: String(start), end: String(end), step: String(step) });
    },
    async labelValues(label: string, match: string): Promise<string[]> {
      const res = await fetch(`${url}/api/v1/label/${encodeURIComponent(label)}/values?${new URLSearchParams({ "match[]": match })}`);
      const json = (await res.json()) as { status: string; data?: string[]; error?: string };
      if (json.status !== "success") throw new Error(`label values of ${label} for ${match}: ${json.error}`);
      return json.data ?? [];
    },
    async targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string }[]> {
      const res = await fetch(`${url}/api/v1/targets?state=active`);
      const json = (await res.json()) as { data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] } };
      return json.data.activeTargets;
    },
    async rules(): Promise<{ name: string; type: string; health: string; lastError?: string }[]> {
      const res = await fetch(`${url}/api/v1/rules`);
      const json = (await res.json()) as { data: { groups: { rules: { name: string; type: string; health: string; lastError?: string }[] }[] } };
      return json.data.groups.flatMap((g) => g.rules);
    },
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
      log.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
