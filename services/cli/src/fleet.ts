/**
 * Starts the fleet's services as child processes, exactly as they run in production (one process
 * per service, configured by environment), for the demo, tests and benchmarks.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export type ServiceName = "ingest" | "judge-worker" | "fireworks-sim" | "collector";

export type RunningService = {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
};

export function startService(options: {
  service: ServiceName;
  name?: string;
  env: Record<string, string | undefined>;
  logDir: string;
  /** Extra Node flags, e.g. `--cpu-prof` for a benchmark's profile. */
  nodeArgs?: string[];
}): RunningService {
  const name = options.name ?? options.service;
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: "a" });
  const tsx = join(REPO_ROOT, "node_modules/.bin/tsx");
  const child = spawn(tsx, [...(options.nodeArgs ?? []), join(REPO_ROOT, "services", options.service, "src/main.ts")], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Both streams share the file: neither may close it when it ends, or the other's next write fails.
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  child.once("close", () => log.end());
  return {
    name,
    child,
    logFile,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Poll an HTTP endpoint until it answers 2xx: services are ready when their dependencies are. */
export async function waitForHttp(url: string, timeoutMs = 60_000, service?: RunningService): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (service && service.child.exitCode !== null) {
      throw new Error(`${service.name} exited with code ${service.child.exitCode}; see ${service.logFile}`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})${service ? `; see ${service.logFile}` : ""}`);
}

/** A port free on 127.0.0.1 right now, for a service's metrics or a test server. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** True when something already listens on the port (any address): a service started there would die with EADDRINUSE. */
export async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(true));
    srv.listen(port, () => srv.close(() => resolve(false)));
  });
}

/**
 * Rejects when any service exits before `stop` is called: a fleet whose member died must not look
 * healthy (another process on the same port could be answering for it).
 */
export function watchServices(services: RunningService[]): { died: Promise<never>; stopping: () => void } {
  let stopping = false;
  const died = new Promise<never>((_, reject) => {
    for (const s of services) {
      void s.exited.then((code) => {
        if (!stopping) reject(new Error(`${s.name} exited with code ${code}; see ${s.logFile}`));
      });
    }
  });
  // Nobody may await `died` at the moment a service stops on purpose.
  died.catch(() => undefined);
  return {
    died,
    stopping: () => {
      stopping = true;
    },
  };
}
