/**
 * Deployment files (deploy/docker, deploy/compose, deploy/k8s) against the services they run:
 * images are built the way the Dockerfile says, Compose and Kubernetes set only variables the
 * services' config schemas know, with valid values, and agree with each other and with the
 * shipped Prometheus config on ports, commands and labels.
 *
 * Needs `docker-compose` (Debian package; `scripts/services.sh tools docker-compose` installs it).
 * Uses `kubectl kustomize` as a second renderer when kubectl is installed.
 */
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { parseEnv } from "@tracesift/runtime";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service as K8sService } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import type { z } from "zod";
import { CollectorEnv } from "../services/collector/src/config.ts";
import { EnvSchema as SimEnv } from "../services/fireworks-sim/src/env.ts";
import { IngestEnv } from "../services/ingest/src/config.ts";
import { WorkerEnv } from "../services/judge-worker/src/config.ts";
import { composeVariables, dockerIgnored, parseDockerfile, readDockerignore, resolveFrom, type Stage } from "./helpers/deploy-files.ts";
import {
  type KObject,
  kustomizationInputs,
  loadYamlDocuments,
  parseEnvFile,
  readKustomization,
  renderKustomization,
  splitImage,
} from "./helpers/deploy-kustomize.ts";

const execFileAsync = promisify(execFile);

const ROOT = resolve(import.meta.dirname, "..");
const DEPLOY = join(ROOT, "deploy");
const DOCKERFILE = join(DEPLOY, "docker/Dockerfile");
const COMPOSE_DIR = join(DEPLOY, "compose");
const COMPOSE_FILE = join(COMPOSE_DIR, "compose.yaml");
const ENV_EXAMPLE = join(COMPOSE_DIR, ".env.example");
const K8S = join(DEPLOY, "k8s");
const read = (path: string) => readFileSync(path, "utf8");

// ------------------------------------------------------------------------------------ services

const FLEET = ["ingest", "judge-worker", "collector"] as const;
type FleetService = (typeof FLEET)[number];
type Service = FleetService | "fireworks-sim";

const SCHEMAS: Record<Service, z.ZodObject> = {
  ingest: IngestEnv,
  "judge-worker": WorkerEnv,
  collector: CollectorEnv,
  "fireworks-sim": SimEnv,
};

function schemaKeys(service: Service): Set<string> {
  return new Set(Object.keys(SCHEMAS[service].shape));
}

/** Parses an environment the way the service does at start-up (throws ConfigError listing every problem). */
function parseServiceEnv(service: Service, env: Record<string, string>): void {
  parseEnv(SCHEMAS[service], env);
}

function servicePackage(service: string): { name: string; scripts?: Record<string, string> } {
  return JSON.parse(read(join(ROOT, "services", service, "package.json")));
}

const metricNames = () => new Set([...read(join(ROOT, "packages/metrics/src/index.ts")).matchAll(/name: "(tracesift_[a-z_]+)"/g)].map((m) => m[1]));

/** An exact release (x.y.z) tag, never latest or a floating major. */
function expectPinned(image: string, what: string): void {
  expect(image, `${what}: no latest`).not.toMatch(/:latest$/);
  expect(image, `${what}: pinned to an exact version tag`).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$/);
}

// ---------------------------------------------------------------------------------- Dockerfile

describe("deploy/docker/Dockerfile", () => {
  const dockerfile = parseDockerfile(read(DOCKERFILE));
  const { stages, globalArgs } = dockerfile;
  const final = stages[stages.length - 1] as Stage;
  const stageNames = new Set(stages.map((s) => s.name).filter((n): n is string => n !== undefined));
  const rootPackage = JSON.parse(read(join(ROOT, "package.json"))) as { packageManager: string };
  const catalog = (parse(read(join(ROOT, "pnpm-workspace.yaml"))) as { catalog: Record<string, string> }).catalog;
  const stageArg = (stage: Stage, name: string) =>
    stage.instructions
      .filter((i) => i.keyword === "ARG" && i.args.startsWith(`${name}=`))
      .map((i) => i.args.slice(name.length + 1).replace(/^"|"$/g, ""))[0];
  const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);

  it("builds every stage on an exactly pinned Node 22 image", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      if (stageNames.has(stage.from)) continue;
      const image = resolveFrom(stage.from, globalArgs);
      expectPinned(image, `FROM ${stage.from}`);
      expect(image, "Node 22 LTS").toMatch(/^node:22\.\d+\.\d+-/);
    }
    expect(stageNames.has(final.from), "the final stage starts from the base image, not from a build stage").toBe(false);
  });

  it("installs pnpm from npm at the workspace's version, and turbo at the catalog's", () => {
    const pnpmVersion = rootPackage.packageManager.replace(/^pnpm@/, "");
    const base = stages.find((s) => stageArg(s, "PNPM_VERSION") !== undefined);
    expect(base && stageArg(base, "PNPM_VERSION"), "ARG PNPM_VERSION = packageManager").toBe(pnpmVersion);
    expect(base && runs(base).some((r) => /npm install -g "?pnpm@\$\{PNPM_VERSION\}"?/.test(r))).toBe(true);
    expect(read(DOCKERFILE)).not.toMatch(/^\s*RUN\b.*corepack/m);
    const prune = stages.find((s) => stageArg(s, "TURBO_VERSION") !== undefined);
    expect(prune && stageArg(prune, "TURBO_VERSION"), "ARG TURBO_VERSION = catalog turbo").toBe(catalog.turbo);
    expect(prune && runs(prune).some((r) => r.includes("turbo prune") && r.includes("--docker"))).toBe(true);
  });

  it("runs the final stage as a non-root user", () => {
    const users = final.instructions.filter((i) => i.keyword === "USER").map((i) => i.args);
    expect(users.length, "USER in the final stage").toBeGreaterThan(0);
    const user = users[users.length - 1] ?? "";
    expect(user.split(":")[0]).not.toMatch(/^(root|0)$/);
  });

  it("has a HEALTHCHECK on /healthz with node's fetch", () => {
    const hc = final.instructions.filter((i) => i.keyword === "HEALTHCHECK");
    expect(hc.length).toBe(1);
    expect(hc[0]?.args).not.toMatch(/^NONE/i);
    expect(hc[0]?.args).toMatch(/CMD \["node", "\/app\/healthcheck\.mjs"\]/);
    expect(hc[0]?.args).not.toMatch(/curl|wget/);
    const script = read(join(DEPLOY, "docker/healthcheck.mjs"));
    expect(script).toContain("/healthz");
    expect(script).toContain("fetch(");
    expect(final.instructions.some((i) => i.keyword === "COPY" && i.args.includes("deploy/docker/healthcheck.mjs"))).toBe(true);
  });

  it("ships production dependencies only: the final stage installs nothing and copies a --prod install", () => {
    for (const r of runs(final)) expect(r, "no package installs in the final stage").not.toMatch(/\b(pnpm|npm|yarn)\s+(install|i|add|ci)\b/);
    const copies = final.instructions.filter((i) => i.keyword === "COPY" && /--from=/.test(i.args));
    const nodeModules = copies.filter((c) => /node_modules/.test(c.args));
    expect(nodeModules.length, "node_modules come from one stage").toBe(1);
    const from = /--from=(\S+)/.exec(nodeModules[0]?.args ?? "")?.[1];
    const source = stages.find((s) => s.name === from);
    expect(source, `stage ${from}`).toBeDefined();
    const installs = runs(source as Stage).filter((r) => /\bpnpm\b.*\b(install|deploy)\b/.test(r));
    expect(installs.length).toBeGreaterThan(0);
    for (const r of installs) {
      expect(r, "--prod").toMatch(/(^|\s)(--prod|-P)(\s|$)/);
      expect(r, "exactly the locked versions").toMatch(/--frozen-lockfile|\bdeploy\b/);
    }
    // Whatever else the final stage takes from the build stage is the bundle and its manifest.
    for (const c of copies.filter((c) => !nodeModules.includes(c))) expect(c.args).toMatch(/\/dist |package\.json /);
    expect(final.instructions.some((i) => i.keyword === "ENV" && /NODE_ENV=production/.test(i.args))).toBe(true);
  });

  it("starts the bundle", () => {
    const cmd = final.instructions.filter((i) => i.keyword === "CMD").at(-1);
    expect(JSON.parse(cmd?.args ?? "[]")).toEqual(dockerCmd());
  });

  it("keeps what the build needs in the context and leaves out what it must not see", () => {
    const ignore = readDockerignore(read(join(DEPLOY, "docker/Dockerfile.dockerignore")));
    const fromContext = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith("--")).slice(0, -1))
      .filter((src) => src !== ".");
    expect(fromContext.length).toBeGreaterThan(0);
    for (const src of fromContext) {
      expect(existsSync(join(ROOT, src)), `${src} exists`).toBe(true);
      expect(dockerIgnored(src, ignore), `${src} is sent to the build`).toBe(false);
    }
    for (const kept of ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "turbo.json", "services/ingest/src/main.ts", "packages/runtime/src/index.ts"]) {
      expect(dockerIgnored(kept, ignore), kept).toBe(false);
    }
    for (const dropped of [
      "node_modules/x",
      "services/ingest/node_modules/x",
      "services/ingest/dist/main.js",
      ".git/HEAD",
      ".cache/kafka/x",
      ".env",
      "deploy/compose/.env",
      "deploy/k8s/overlays/production/fireworks.env",
    ]) {
      expect(dockerIgnored(dropped, ignore), dropped).toBe(true);
    }
  });

  it("builds images for services that have a build script", () => {
    for (const service of [...FLEET, "fireworks-sim"]) {
      expect(servicePackage(service).scripts?.build, `services/${service} build script`).toMatch(/bundle\.mjs/);
    }
  });
});

/** The Dockerfile's CMD: what Compose and Kubernetes must run too. */
function dockerCmd(): string[] {
  const { stages } = parseDockerfile(read(DOCKERFILE));
  const cmd = stages.at(-1)?.instructions.filter((i) => i.keyword === "CMD").at(-1);
  return JSON.parse(cmd?.args ?? "[]") as string[];
}

describe("deploy/docker scripts", () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "tracesift-deploy-"));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("healthcheck.mjs exits 0 only when /healthz on METRICS_PORT answers 200", async () => {
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? "");
      res.writeHead(status).end();
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const port = (server.address() as AddressInfo).port;
    const run = (env: Record<string, string>) =>
      execFileAsync(process.execPath, [join(DEPLOY, "docker/healthcheck.mjs")], { env: { PATH: process.env.PATH ?? "", ...env } }).then(
        () => 0,
        (err: { code?: number }) => err.code ?? -1,
      );
    try {
      expect(await run({ TRACESIFT_SERVICE: "judge-worker", METRICS_PORT: String(port) })).toBe(0);
      expect(paths.at(-1)).toBe("/healthz");
      expect(await run({ TRACESIFT_SERVICE: "fireworks-sim", SIM_PORT: String(port) })).toBe(0);
      expect(paths.at(-1)).toBe("/_sim/stats");
      status = 503;
      expect(await run({ TRACESIFT_SERVICE: "ingest", METRICS_PORT: String(port) })).toBe(1);
    } finally {
      server.close();
    }
    expect(await run({ TRACESIFT_SERVICE: "collector", METRICS_PORT: String(port) }), "nothing listening").toBe(1);
    expect(await run({ TRACESIFT_SERVICE: "nope" })).toBe(2);
  });

  it("check-bundle.mjs fails the build when a package the bundle imports is not installed", () => {
    copyFileSync(join(DEPLOY, "docker/check-bundle.mjs"), join(tmp, "check-bundle.mjs"));
    mkdirSync(join(tmp, "node_modules/present"), { recursive: true });
    writeFileSync(join(tmp, "node_modules/present/package.json"), JSON.stringify({ name: "present", type: "module", exports: "./index.js" }));
    writeFileSync(join(tmp, "node_modules/present/index.js"), "export const x = 1;\n");
    mkdirSync(join(tmp, "dist"), { recursive: true });
    const check = (source: string) => {
      writeFileSync(join(tmp, "dist/main.js"), source);
      try {
        return { code: 0, out: execFileSync(process.execPath, ["check-bundle.mjs", "dist/main.js"], { cwd: tmp, encoding: "utf8", stdio: "pipe" }) };
      } catch (err) {
        const e = err as { status: number; stderr: string };
        return { code: e.status, out: e.stderr };
      }
    };
    expect(check('import { x } from "present";\nimport { readFileSync } from "node:fs";\nimport "fs";\n').code).toBe(0);
    const missing = check('import { x } from "present";\nimport pino from "pino-not-installed";\nconst m = await import("also-missing");\n');
    expect(missing.code).toBe(1);
    expect(missing.out).toContain("pino-not-installed");
    expect(missing.out).toContain("also-missing");
  });
});

// ------------------------------------------------------------------------------------- Compose

type ComposeService = {
  image?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  command?: string[] | string;
  environment?: Record<string, string | number | null>;
  ports?: string[];
  healthcheck?: { test?: string[] | string };
  profiles?: string[];
  scale?: number;
  stop_grace_period?: string;
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
};
type ComposeFile = { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };

function dockerCompose(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  try {
    // A clean environment: variables exported in the shell would override the .env file.
    const stdout = execFileSync("docker-compose", args, { cwd: ROOT, encoding: "utf8", stdio: "pipe", env: { PATH: process.env.PATH ?? "", HOME: tmpdir(), ...env } });
    return { code: 0, stdout, stderr: "" };
  } catch (err) {
    const e = err as { status: number | null; stdout: string; stderr: string };
    return { code: e.status ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

function hasDockerCompose(): boolean {
  try {
    execFileSync("docker-compose", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Seconds of a Compose duration like 45s, 1m30s. */
function durationSeconds(d: string): number {
  let total = 0;
  for (const m of d.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) {
    const n = Number(m[1]);
    total += m[2] === "h" ? n * 3600 : m[2] === "m" ? n * 60 : m[2] === "s" ? n : m[2] === "ms" ? n / 1000 : n / 1e6;
  }
  return total;
}

/** host → ports that deploy/prometheus/prometheus.yml scrapes (static targets and DNS SD names). */
function prometheusTargets(file: string): Map<string, number[]> {
  const config = parse(read(file)) as {
    scrape_configs?: { static_configs?: { targets?: string[] }[]; dns_sd_configs?: { names?: string[]; port?: number }[] }[];
  };
  const out = new Map<string, number[]>();
  const add = (host: string, port: number) => out.set(host, [...(out.get(host) ?? []), port]);
  for (const sc of config.scrape_configs ?? []) {
    for (const s of sc.static_configs ?? []) {
      for (const t of s.targets ?? []) {
        const [host, port] = t.split(":");
        add(host ?? "", Number(port));
      }
    }
    for (const d of sc.dns_sd_configs ?? []) for (const name of d.names ?? []) add(name, Number(d.port));
  }
  return out;
}

describe("deploy/compose", () => {
  const raw = read(COMPOSE_FILE);
  const compose = parse(raw, { merge: true }) as ComposeFile;
  const services = compose.services;
  const fleetServices = () =>
    Object.entries(services)
      .filter(([, s]) => s.build?.args?.SERVICE !== undefined)
      .map(([name, s]) => ({ name, s, service: s.build?.args?.SERVICE as Service }));

  it("validates with docker-compose config -q, with and without the sim profile", () => {
    if (!hasDockerCompose()) {
      throw new Error("docker-compose is not installed: run `scripts/services.sh tools docker-compose` (Debian package docker-compose)");
    }
    for (const profiles of ["sim", ""]) {
      const r = dockerCompose(["--env-file", ENV_EXAMPLE, "-f", COMPOSE_FILE, "config", "-q"], { COMPOSE_PROFILES: profiles });
      expect(r.stderr, `docker-compose config -q (COMPOSE_PROFILES=${profiles})`).toBe("");
      expect(r.code).toBe(0);
    }
  });

  it("refuses to start without FIREWORKS_API_KEY instead of passing an empty key", () => {
    if (!hasDockerCompose()) throw new Error("docker-compose is not installed: run `scripts/services.sh tools docker-compose`");
    const dir = mkdtempSync(join(tmpdir(), "tracesift-env-"));
    const envFile = join(dir, "no-key.env");
    writeFileSync(envFile, "GRAFANA_ADMIN_PASSWORD=x\n");
    const r = dockerCompose(["--env-file", envFile, "-f", COMPOSE_FILE, "config", "-q"]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("FIREWORKS_API_KEY");
  });

  it("runs Kafka (KRaft), Redis, Prometheus, Grafana, the simulator (profile sim), ingest, two judge workers and one collector", () => {
    for (const name of ["kafka", "redis", "prometheus", "grafana", "fireworks-sim", "ingest", "judge-worker", "collector"]) {
      expect(services[name], name).toBeDefined();
    }
    expect(services["fireworks-sim"]?.profiles).toEqual(["sim"]);
    const workers = fleetServices().filter((f) => f.service === "judge-worker");
    expect(workers.reduce((n, w) => n + (w.s.scale ?? 1), 0), "judge worker replicas").toBeGreaterThanOrEqual(2);
    const collectors = fleetServices().filter((f) => f.service === "collector");
    expect(collectors.map((c) => c.s.scale ?? 1)).toEqual([1]);
    expect(fleetServices().filter((f) => f.service !== "fireworks-sim" && f.s.profiles !== undefined), "the fleet needs no profile").toEqual([]);
    expect(services.kafka?.environment?.KAFKA_PROCESS_ROLES).toBe("broker,controller");
  });

  it("pins every image; Kafka at the version scripts/services.sh tests kafkajs against", () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build) expect(s.image, `${name} image`).toMatch(/^tracesift\/[\w-]+:\$\{TRACESIFT_TAG:-dev\}$/);
      else expectPinned(s.image ?? "", name);
    }
    const kafkaVersion = /KAFKA_VERSION_DEFAULT=(\S+)/.exec(read(join(ROOT, "scripts/services.sh")))?.[1];
    expect(services.kafka?.image).toBe(`apache/kafka:${kafkaVersion}`);
  });

  it("configures Redis for BullMQ: AOF on, maxmemory-policy noeviction", () => {
    const command = [services.redis?.command ?? []].flat().join(" ");
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
  });

  it("builds each fleet service from the Dockerfile and runs its bundle", () => {
    const fleet = fleetServices();
    expect(new Set(fleet.map((f) => f.service))).toEqual(new Set([...FLEET, "fireworks-sim"]));
    for (const { name, s, service } of fleet) {
      expect(resolve(COMPOSE_DIR, s.build?.context ?? ""), `${name} build context`).toBe(ROOT);
      expect(resolve(ROOT, s.build?.dockerfile ?? ""), `${name} dockerfile`).toBe(DOCKERFILE);
      expect(existsSync(join(ROOT, "services", service, "src/main.ts")), `services/${service}`).toBe(true);
      expect(s.image, `${name} image`).toContain(`tracesift/${service}:`);
      expect(s.command, `${name} command`).toEqual(dockerCmd());
    }
  });

  it("sets only variables each service's config schema knows", () => {
    for (const { name, s, service } of fleetServices()) {
      const keys = schemaKeys(service);
      const unknown = Object.keys(s.environment ?? {}).filter((k) => !keys.has(k));
      expect(unknown, `${name}: variables its schema does not define`).toEqual([]);
    }
  });

  it("gives every service a valid configuration (the resolved file, parsed with the services' schemas)", () => {
    if (!hasDockerCompose()) throw new Error("docker-compose is not installed: run `scripts/services.sh tools docker-compose`");
    const r = dockerCompose(["--env-file", ENV_EXAMPLE, "-f", COMPOSE_FILE, "config"], { COMPOSE_PROFILES: "sim" });
    expect(r.code, r.stderr).toBe(0);
    const resolved = parse(r.stdout) as ComposeFile;
    for (const { name, service } of fleetServices()) {
      const env = Object.fromEntries(Object.entries(resolved.services[name]?.environment ?? {}).map(([k, v]) => [k, v === null ? "" : String(v)]));
      expect(() => parseServiceEnv(service, env), name).not.toThrow();
    }
  });

  it("agrees on metrics ports: env, healthcheck, published port and Prometheus target", () => {
    const promFile = join(DEPLOY, "prometheus/prometheus.yml");
    expect(existsSync(promFile), "deploy/prometheus/prometheus.yml (mounted by compose)").toBe(true);
    const targets = prometheusTargets(promFile);
    for (const { name, s, service } of fleetServices()) {
      if (service === "fireworks-sim") continue;
      const port = Number(s.environment?.METRICS_PORT);
      expect(port, `${name} sets METRICS_PORT`).toBeGreaterThan(0);
      const test = [s.healthcheck?.test ?? []].flat().join(" ");
      expect(test, `${name} healthcheck`).toContain(`http://127.0.0.1:${port}/healthz`);
      for (const p of s.ports ?? []) expect(p.split(":").at(-1), `${name} publishes its metrics port`).toBe(String(port));
      expect(targets.get(name), `${name} is scraped on ${port} by deploy/prometheus/prometheus.yml`).toEqual([port]);
    }
    for (const host of targets.keys()) expect(services[host], `Prometheus target ${host} is a compose service`).toBeDefined();
  });

  it("points the workers at the simulator's port and checks the simulator on it", () => {
    const sim = services["fireworks-sim"] as ComposeService;
    const simPort = Number(sim.environment?.SIM_PORT);
    expect(sim.environment?.SIM_HOST).toBe("0.0.0.0");
    expect([sim.healthcheck?.test ?? []].flat().join(" ")).toContain(`http://127.0.0.1:${simPort}/_sim/stats`);
    for (const p of sim.ports ?? []) expect(p.split(":").at(-1)).toBe(String(simPort));
    const example = parseEnvFile(read(ENV_EXAMPLE));
    expect(example.JUDGE_BASE_URL).toBe(`http://fireworks-sim:${simPort}/inference/v1`);
    expect(String(services["judge-worker"]?.environment?.JUDGE_BASE_URL)).toContain(`http://fireworks-sim:${simPort}/inference/v1`);
  });

  it("gives draining services a stop grace period longer than DRAIN_DEADLINE_MS", () => {
    for (const { name, s, service } of fleetServices()) {
      if (service !== "ingest" && service !== "judge-worker") continue;
      const drainMs = Number(s.environment?.DRAIN_DEADLINE_MS ?? 30_000);
      expect(durationSeconds(s.stop_grace_period ?? "10s") * 1000, `${name} stop_grace_period`).toBeGreaterThan(drainMs);
    }
  });

  it("mounts the shipped Prometheus and Grafana provisioning", () => {
    const mounts = [...(services.prometheus?.volumes ?? []), ...(services.grafana?.volumes ?? [])].filter((v) => v.startsWith("."));
    const byTarget = new Map(mounts.map((v) => [v.split(":")[1] ?? "", v.split(":")[0] ?? ""]));
    const expected: Record<string, string> = {
      "/etc/prometheus/prometheus.yml": "deploy/prometheus/prometheus.yml",
      "/etc/prometheus/rules": "deploy/prometheus/rules",
      "/etc/grafana/provisioning/datasources": "deploy/grafana/provisioning/datasources",
      "/etc/grafana/provisioning/dashboards": "deploy/grafana/provisioning/dashboards",
      "/var/lib/grafana/dashboards": "deploy/grafana/dashboards",
    };
    for (const [target, source] of Object.entries(expected)) {
      expect(relative(ROOT, resolve(COMPOSE_DIR, byTarget.get(target) ?? "")), target).toBe(source);
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
    }
    // The dashboards provider must read the directory the dashboards are mounted at.
    const providers = parse(read(join(DEPLOY, "grafana/provisioning/dashboards/dashboards.yml"))) as { providers?: { options?: { path?: string } }[] };
    for (const p of providers.providers ?? []) expect(p.options?.path ?? "", "dashboards provider path").toMatch(/^\/var\/lib\/grafana\/dashboards(\/|$)/);
    const datasources = read(join(DEPLOY, "grafana/provisioning/datasources/datasource.yml"));
    expect(datasources, "Grafana reaches Prometheus by its compose name").toContain("http://prometheus:9090");
    // Rule files are found relative to the config file's directory (/etc/prometheus).
    const ruleFiles = (parse(read(join(DEPLOY, "prometheus/prometheus.yml"))) as { rule_files?: string[] }).rule_files ?? [];
    for (const r of ruleFiles) expect(r, "rule_files under /etc/prometheus/rules").toMatch(/^(\/etc\/prometheus\/)?rules\//);
  });

  it("lists every interpolated variable in .env.example, with no real key", () => {
    const used = composeVariables(raw);
    const example = parseEnvFile(read(ENV_EXAMPLE));
    const listed = new Set(Object.keys(example));
    expect([...used].filter((v) => !listed.has(v)), "used but not in .env.example").toEqual([]);
    const composeOwn = new Set(["COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"]);
    expect([...listed].filter((v) => !used.has(v) && !composeOwn.has(v)), "in .env.example but unused").toEqual([]);
    expect(example.COMPOSE_PROFILES).toBe("sim");
    expect(example.FIREWORKS_API_KEY).not.toMatch(/^fw_/);
  });
});

// ---------------------------------------------------------------------------------- Kubernetes

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Namespace": Namespace,
  "v1/Service": K8sService,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
};

function validateManifest(o: KObject, where: string): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`${where}: no schema for ${o.apiVersion} ${o.kind} in this test; add one to MODELS`);
  try {
    new Model(o as never).validate();
  } catch (err) {
    throw new Error(`${where}: ${o.kind} ${o.metadata?.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(f) ? [path] : [];
  });
}

function hasKubectl(): boolean {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
};
type Probe = { httpGet?: { path?: string; port?: string | number } };
type K8sContainer = {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
};
type PodSpec = { containers: K8sContainer[]; terminationGracePeriodSeconds?: number; securityContext?: { runAsNonRoot?: boolean } };
type DeploymentSpec = {
  replicas?: number;
  strategy?: { type?: string };
  selector: { matchLabels: Record<string, string> };
  template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
};

const OVERLAYS = readdirSync(join(K8S, "overlays")).map((d) => `overlays/${d}`);

describe.each(["base", ...OVERLAYS])("deploy/k8s/%s", (dir) => {
  const objects = renderKustomization(join(K8S, dir), { envFileExamples: true });
  const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const deployment = (name: FleetService) => {
    const d = find("Deployment", name);
    if (!d) throw new Error(`no Deployment ${name}`);
    return d.spec as DeploymentSpec;
  };
  const container = (name: FleetService) => {
    const c = deployment(name).template.spec.containers.find((x) => x.name === name);
    if (!c) throw new Error(`Deployment ${name} has no container ${name}`);
    return c;
  };
  /** The container's environment as the process sees it: envFrom ConfigMaps, then env (secrets resolved). */
  const containerEnv = (name: FleetService): Record<string, string> => {
    const c = container(name);
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) {
      expect(from.secretRef, `${name}: secrets by key (secretKeyRef), not envFrom`).toBeUndefined();
      const cm = find("ConfigMap", from.configMapRef?.name ?? "");
      expect(cm, `${name}: ConfigMap ${from.configMapRef?.name}`).toBeDefined();
      Object.assign(env, cm?.data as Record<string, string>);
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        const secret = find("Secret", ref.name);
        expect(secret, `${name}: Secret ${ref.name}`).toBeDefined();
        const data = secret?.data as Record<string, string> | undefined;
        const stringData = secret?.stringData as Record<string, string> | undefined;
        const value = stringData?.[ref.key] ?? (data?.[ref.key] !== undefined ? Buffer.from(data[ref.key] ?? "", "base64").toString() : undefined);
        expect(value, `${name}: Secret ${ref.name} key ${ref.key}`).toBeDefined();
        env[e.name] = value ?? "";
      } else if (e.valueFrom?.configMapKeyRef) {
        const ref = e.valueFrom.configMapKeyRef;
        const value = (find("ConfigMap", ref.name)?.data as Record<string, string> | undefined)?.[ref.key];
        expect(value, `${name}: ConfigMap ${ref.name} key ${ref.key}`).toBeDefined();
        env[e.name] = value ?? "";
      } else if (e.valueFrom?.fieldRef) env[e.name] = `pod-${e.valueFrom.fieldRef.fieldPath}`;
    }
    return env;
  };

  it("validates every rendered manifest against the Kubernetes (and KEDA) schemas", () => {
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) validateManifest(o, dir);
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(ids).size, "no duplicate resources").toBe(ids.length);
  });

  it.runIf(hasKubectl())("renders like kubectl kustomize", () => {
    // A copy, with the git-ignored env files (real secrets, if a developer has them) replaced by their examples.
    const tmp = mkdtempSync(join(tmpdir(), "tracesift-k8s-"));
    try {
      cpSync(K8S, tmp, { recursive: true });
      for (const f of kustomizationInputs(join(tmp, dir)).envFiles) copyFileSync(`${f}.example`, f);
      const theirs = parseAllDocuments(execFileSync("kubectl", ["kustomize", join(tmp, dir)], { encoding: "utf8" })).map((d) => d.toJS() as KObject);
      const key = (o: KObject) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      const sort = (list: KObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
      expect(sort(objects)).toEqual(sort(theirs));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("runs ingest, judge workers and the collector from their images and bundles", () => {
    for (const name of FLEET) {
      const c = container(name);
      const { name: image, tag } = splitImage(c.image);
      expect(image.split("/").at(-1), `${name} image`).toBe(name);
      expect(tag, `${name} image tag`).toMatch(/^\d+\.\d+\.\d+/);
      expect(c.command, `${name} command`).toEqual(dockerCmd());
    }
  });

  it("sets only variables each service's config schema knows, with valid values", () => {
    for (const name of FLEET) {
      const env = containerEnv(name);
      const keys = schemaKeys(name);
      expect(Object.keys(env).filter((k) => !keys.has(k)), `${name}: variables its schema does not define`).toEqual([]);
      expect(() => parseServiceEnv(name, env), name).not.toThrow();
    }
  });

  it("agrees on the metrics port: env, container port, probes and scrape annotations", () => {
    const keep = prometheusKubernetesKeep();
    for (const name of FLEET) {
      const spec = deployment(name);
      const c = container(name);
      const port = Number(containerEnv(name).METRICS_PORT);
      expect(port, `${name} sets METRICS_PORT`).toBeGreaterThan(0);
      const metrics = c.ports?.find((p) => p.containerPort === port);
      expect(metrics, `${name} exposes METRICS_PORT`).toBeDefined();
      const annotations = spec.template.metadata.annotations ?? {};
      expect(annotations["prometheus.io/scrape"]).toBe("true");
      expect(annotations["prometheus.io/port"]).toBe(String(port));
      expect(annotations["prometheus.io/path"]).toBe("/metrics");
      const probePort = (p?: Probe) => (p?.httpGet?.port === metrics?.name ? port : p?.httpGet?.port);
      expect(c.livenessProbe?.httpGet?.path, `${name} liveness`).toBe("/healthz");
      expect(probePort(c.livenessProbe)).toBe(port);
      expect(c.readinessProbe?.httpGet?.path, `${name} readiness`).toBe("/readyz");
      expect(probePort(c.readinessProbe)).toBe(port);
      if (c.startupProbe) expect(probePort(c.startupProbe)).toBe(port);
      // deploy/prometheus/prometheus.kubernetes.yml keeps pods by app.kubernetes.io/name.
      const label = spec.template.metadata.labels["app.kubernetes.io/name"] ?? "";
      expect(keep.test(label), `${name}: pod label app.kubernetes.io/name=${label} is scraped`).toBe(true);
    }
  });

  it("sets resource requests and limits, a non-root pod and a grace period longer than the drain deadline", () => {
    for (const name of FLEET) {
      const spec = deployment(name).template.spec;
      const c = container(name);
      for (const kind of ["requests", "limits"] as const) {
        expect(c.resources?.[kind]?.cpu, `${name} ${kind}.cpu`).toBeDefined();
        expect(c.resources?.[kind]?.memory, `${name} ${kind}.memory`).toBeDefined();
      }
      expect(spec.securityContext?.runAsNonRoot, `${name} runAsNonRoot`).toBe(true);
      const drainMs = name === "collector" ? 10_000 : Number(containerEnv(name).DRAIN_DEADLINE_MS ?? 30_000);
      expect((spec.terminationGracePeriodSeconds ?? 30) * 1000, `${name} terminationGracePeriodSeconds`).toBeGreaterThan(drainMs);
    }
  });

  it("caps ingest replicas at the input topic's partitions, runs one collector and lets KEDA size the workers", () => {
    const partitions = Number(containerEnv("ingest").INPUT_PARTITIONS ?? 3);
    expect(deployment("ingest").replicas ?? 1).toBeLessThanOrEqual(partitions);
    expect(deployment("collector").replicas).toBe(1);
    expect(deployment("collector").strategy?.type, "never two collectors, even during a rollout").toBe("Recreate");
    expect(deployment("judge-worker").replicas, "no replicas: the ScaledObject owns them").toBeUndefined();
  });

  it("has disruption budgets that select the ingest and judge worker pods", () => {
    const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget");
    for (const name of ["ingest", "judge-worker"] as const) {
      const labels = deployment(name).template.metadata.labels;
      const pdb = pdbs.find((p) => {
        const match = (p.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ?? {};
        return Object.keys(match).length > 0 && Object.entries(match).every(([k, v]) => labels[k] === v);
      });
      expect(pdb, `a PodDisruptionBudget for ${name}`).toBeDefined();
    }
  });

  it("scales judge workers with a KEDA Prometheus trigger on the queue backlog", () => {
    const so = objects.find((o) => o.kind === "ScaledObject");
    expect(so).toBeDefined();
    const spec = so?.spec as {
      scaleTargetRef: { name: string; kind?: string };
      minReplicaCount: number;
      maxReplicaCount: number;
      triggers: { type: string; metadata: Record<string, string> }[];
    };
    expect(spec.scaleTargetRef.name).toBe("judge-worker");
    expect(spec.scaleTargetRef.kind ?? "Deployment").toBe("Deployment");
    expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(spec.maxReplicaCount).toBeGreaterThan(spec.minReplicaCount);
    expect(spec.maxReplicaCount).toBeLessThanOrEqual(200);
    expect(spec.triggers.length).toBeGreaterThan(0);
    const known = metricNames();
    for (const t of spec.triggers) {
      expect(t.type).toBe("prometheus");
      expect(t.metadata.serverAddress).toMatch(/^https?:\/\//);
      expect(Number(t.metadata.threshold)).toBeGreaterThan(0);
      const used = [...(t.metadata.query ?? "").matchAll(/tracesift_[a-z_]+/g)].map((m) => m[0]);
      expect(used.length).toBeGreaterThan(0);
      for (const m of used) expect(known.has(m), `${m} is a metric of packages/metrics`).toBe(true);
      expect(used.some((m) => m === "tracesift_queue_jobs" || m === "tracesift_queue_drain_seconds")).toBe(true);
    }
  });

  it("holds no real Fireworks key", () => {
    for (const secret of objects.filter((o) => o.kind === "Secret")) {
      const values = [
        ...Object.values((secret.stringData as Record<string, string> | undefined) ?? {}),
        ...Object.values((secret.data as Record<string, string> | undefined) ?? {}).map((v) => Buffer.from(v, "base64").toString()),
      ];
      for (const v of values) expect(v).not.toMatch(/^fw_/);
    }
  });
});

/** The keep regex for app.kubernetes.io/name in deploy/prometheus/prometheus.kubernetes.yml (anchored, like Prometheus). */
function prometheusKubernetesKeep(): RegExp {
  const file = join(DEPLOY, "prometheus/prometheus.kubernetes.yml");
  const config = parse(read(file)) as { scrape_configs?: { relabel_configs?: { source_labels?: string[]; regex?: string; action?: string }[] }[] };
  for (const sc of config.scrape_configs ?? []) {
    for (const r of sc.relabel_configs ?? []) {
      if (r.action === "keep" && r.source_labels?.join() === "__meta_kubernetes_pod_label_app_kubernetes_io_name") return new RegExp(`^(?:${r.regex ?? ".*"})$`);
    }
  }
  return /^.*$/;
}

describe("deploy/k8s files", () => {
  const files = yamlFiles(K8S);
  const kustomizations = files.filter((f) => f.endsWith("kustomization.yaml"));
  const inputs = kustomizations.map((f) => kustomizationInputs(resolve(f, "..")));
  const patches = new Set(inputs.flatMap((i) => i.patches));

  it("every YAML document of every file is a valid manifest, a kustomization or a patch one of them uses", () => {
    const resources = new Set(inputs.flatMap((i) => i.resources));
    for (const file of files) {
      const where = relative(ROOT, file);
      if (kustomizations.includes(file)) {
        expect(() => readKustomization(resolve(file, "..")), where).not.toThrow();
      } else if (patches.has(file)) {
        for (const doc of loadYamlDocuments(file)) {
          if (Array.isArray(doc)) for (const op of doc as { op: string; path: string }[]) expect(["add", "replace", "remove"], where).toContain(op.op);
          else expect((doc as KObject).metadata?.name, `${where}: a patch names its target`).toBeDefined();
        }
      } else {
        expect(resources.has(file), `${where} is listed in a kustomization`).toBe(true);
        for (const doc of loadYamlDocuments(file)) validateManifest(doc as KObject, where);
      }
    }
  });

  it("keeps the Fireworks key out of git: the base Secret is a placeholder, overlays read git-ignored env files", () => {
    const base = loadYamlDocuments(join(K8S, "base/secret.yaml")) as KObject[];
    expect(base.map((s) => (s.stringData as Record<string, string>).FIREWORKS_API_KEY)).toEqual([expect.stringMatching(/placeholder/)]);
    for (const overlay of OVERLAYS) {
      const k = readKustomization(join(K8S, overlay)) as { secretGenerator?: { name: string; behavior?: string; envs?: string[] }[] };
      const gen = k.secretGenerator?.find((g) => g.name === "tracesift-fireworks");
      expect(gen?.behavior, `${overlay} replaces the placeholder`).toBe("replace");
      for (const env of gen?.envs ?? []) {
        const ignored = read(join(K8S, overlay, ".gitignore")).split("\n").map((l) => l.trim());
        expect(ignored, `${overlay}/.gitignore lists ${env}`).toContain(env);
        const example = parseEnvFile(read(join(K8S, overlay, `${env}.example`)));
        expect(example.FIREWORKS_API_KEY).toBeDefined();
        expect(example.FIREWORKS_API_KEY).not.toMatch(/^fw_/);
      }
    }
  });
});

// ------------------------------------------------------------------------------------ alerts

describe("deploy/prometheus alerts, runbook and exporters", () => {
  type Rule = { alert?: string; record?: string; annotations?: Record<string, string> };
  const rules = (parse(read(join(DEPLOY, "prometheus/rules/tracesift.rules.yml"))) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
  const alerts = rules.filter((r) => r.alert);
  const runbook = read(join(DEPLOY, "RUNBOOK.md"));
  // GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped.
  const anchors = new Set([...runbook.matchAll(/^#{1,6} (.+)$/gm)].map((m) => (m[1] ?? "").toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-")));

  it("links every alert to its own runbook entry, which says what it means, how to confirm and what to do", () => {
    expect(alerts.length).toBeGreaterThanOrEqual(20);
    for (const a of alerts) {
      const url = a.annotations?.runbook_url ?? "";
      expect(url, `${a.alert} runbook_url`).toBe(`deploy/RUNBOOK.md#${a.alert?.toLowerCase()}`);
      expect(anchors.has(url.split("#")[1] ?? ""), `${a.alert}: RUNBOOK.md has a heading for it`).toBe(true);
      const entry = runbook.split(/^## /m).find((s) => s.startsWith(`${a.alert}\n`)) ?? "";
      for (const part of ["**Means:**", "**Confirm:**", "**Do:**"]) expect(entry, `${a.alert} entry: ${part}`).toContain(part);
    }
  });

  it("unit-tests every alert both firing and not firing (promtool test rules)", () => {
    type AlertTest = { alertname: string; exp_alerts?: unknown[] };
    const doc = parse(read(join(DEPLOY, "prometheus/tests/tracesift.rules.test.yml"))) as { tests: { alert_rule_test?: AlertTest[] }[] };
    const checks = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const a of alerts) {
      const mine = checks.filter((c) => c.alertname === a.alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${a.alert} tested firing`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${a.alert} tested not firing`).toBe(true);
    }
  });

  it("scrapes the Pushgateway (keeping pushed labels), the Redis exporter and the broker's JMX agent", () => {
    const prom = parse(read(join(DEPLOY, "prometheus/prometheus.yml"))) as { scrape_configs: { job_name: string; honor_labels?: boolean; static_configs?: { targets: string[] }[] }[] };
    const job = (name: string) => prom.scrape_configs.find((j) => j.job_name === name);
    expect(job("tracesift-pushgateway")?.honor_labels).toBe(true);
    expect(job("tracesift-pushgateway")?.static_configs?.[0]?.targets).toEqual(["pushgateway:9091"]);
    expect(job("redis")?.static_configs?.[0]?.targets).toEqual(["redis-exporter:9121"]);
    expect(job("kafka")?.static_configs?.[0]?.targets).toEqual(["kafka:9404"]);
  });

  it("runs the exporters in Compose, the broker with the JMX agent version scripts/services.sh uses", () => {
    const compose = parse(read(COMPOSE_FILE)) as ComposeFile;
    const version = /JMX_EXPORTER_VERSION=([\d.]+)/.exec(read(join(ROOT, "scripts/services.sh")))?.[1];
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const kafka = compose.services.kafka;
    expect(String(kafka?.environment?.KAFKA_OPTS)).toContain(`-javaagent:/opt/jmx/jmx_prometheus_javaagent-${version}.jar=9404:/etc/kafka-jmx/jmx-exporter.yml`);
    expect(kafka?.volumes).toContain("../kafka/jmx-exporter.yml:/etc/kafka-jmx/jmx-exporter.yml:ro");
    expect(JSON.stringify(compose.services["jmx-agent"]?.command)).toContain(`jmx_prometheus_javaagent:${version}`);
    expect(compose.services["redis-exporter"]?.environment?.REDIS_ADDR).toBe("redis://redis:6379");
    expect(compose.services.pushgateway).toBeDefined();
    expect(compose.services.collector?.environment?.KAFKA_BROKERS).toBe("kafka:9092");
  });
});
