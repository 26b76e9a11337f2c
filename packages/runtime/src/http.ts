import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

export type ReadinessCheck = { name: string; check: () => Promise<void> };

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * `/metrics` for Prometheus, `/healthz` (the process answers) and `/readyz` (its dependencies answer).
 * Liveness deliberately ignores Kafka and Redis: restarting a pod does not fix a broker outage.
 */
export async function startOpsServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  readiness: ReadinessCheck[];
}): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/metrics") {
        res.writeHead(200, { "content-type": options.registry.contentType });
        res.end(await options.registry.metrics());
      } else if (path === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("ok\n");
      } else if (path === "/readyz") {
        const failures: string[] = [];
        await Promise.all(
          options.readiness.map(async (r) => {
            try {
              await withTimeout(r.check(), 2_000, r.name);
            } catch (err) {
              failures.push(`${r.name}: ${err instanceof Error ? err.message : String(err)}`);
            }
          }),
        );
        res.writeHead(failures.length === 0 ? 200 : 503, { "content-type": "text/plain" });
        res.end(failures.length === 0 ? "ready\n" : `${failures.join("\n")}\n`);
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}
