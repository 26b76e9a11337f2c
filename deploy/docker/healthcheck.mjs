// Container HEALTHCHECK: exit 0 when the service's /healthz answers 200 (slim images have no curl).
// Liveness only — /readyz (Kafka and Redis reachable) is for readiness probes, not for restarts.
// The port follows the same variables and defaults as the services' own config schemas.
const DEFAULT_METRICS_PORT = { ingest: 9465, "judge-worker": 9466, collector: 9464 };

const service = process.env.TRACESIFT_SERVICE ?? "";
const env = (name) => (process.env[name] ? process.env[name] : undefined);

let url;
if (service === "fireworks-sim") {
  // The simulator has no /healthz; its read-only stats endpoint answers whenever it is up.
  url = `http://127.0.0.1:${env("SIM_PORT") ?? 8787}/_sim/stats`;
} else if (service in DEFAULT_METRICS_PORT) {
  url = `http://127.0.0.1:${env("METRICS_PORT") ?? DEFAULT_METRICS_PORT[service]}/healthz`;
} else {
  console.error(`healthcheck: unknown TRACESIFT_SERVICE "${service}"`);
  process.exit(2);
}

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  if (!res.ok) {
    console.error(`healthcheck: ${url} answered ${res.status}`);
    process.exit(1);
  }
} catch (err) {
  console.error(`healthcheck: ${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
