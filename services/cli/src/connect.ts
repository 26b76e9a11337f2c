/**
 * How the CLI reaches Kafka and Redis. A service retries forever and logs every attempt, which is
 * right for a fleet that waits for its dependencies; a person at a terminal needs one short line
 * naming what is unreachable or missing, a non-zero exit, and both within a few seconds.
 */
import { createKafka, type Kafka, KafkaEnv } from "@tracesift/kafka";
import type { Logger } from "@tracesift/runtime";
import { Redis } from "ioredis";
import { z } from "zod";

/** An expected failure: main prints its message as one line and exits with its code, no stack. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const ConnectEnv = z.object({
  /** How long the CLI waits for Kafka or Redis before it gives up (connect, and each retried request). */
  CONNECT_TIMEOUT_MS: z.coerce.number().int().positive().default(5_000),
});
export type ConnectEnv = z.infer<typeof ConnectEnv>;

/** A Redis URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString().replace(/\/$/, "");
  } catch {
    return url;
  }
}

/** kafkajs wraps errors (retries exceeded, a crash of eachBatch): the innermost one says what happened. */
function innermost(err: unknown): unknown {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error && e.cause instanceof Error; i++) e = e.cause;
  return e;
}

function reasonOf(err: unknown): string {
  const inner = innermost(err);
  const text = inner instanceof Error ? inner.message : String(inner);
  return text.split("\n")[0] ?? text;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => CliError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * kafkajs with its own logger silenced (its connection errors become one CliError line instead)
 * and retries bounded by the connect timeout.
 */
export function cliKafka(env: KafkaEnv & ConnectEnv, clientId: string, logger: Logger): Kafka {
  const timeout = env.CONNECT_TIMEOUT_MS;
  return createKafka(env, clientId, logger.child({}, { level: "silent" }), {
    connectionTimeout: Math.min(timeout, 3_000),
    requestTimeout: Math.max(timeout, 5_000),
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: timeout },
  });
}

/** Kafka answers and every topic exists, or a one-line CliError within the connect timeout. */
export async function checkKafka(kafka: Kafka, env: KafkaEnv & ConnectEnv, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  const unreachable = (why: string) => new CliError(`cannot reach Kafka at ${env.KAFKA_BROKERS} (${why})`);
  try {
    const existing = await withTimeout(
      (async () => {
        await admin.connect();
        return new Set(await admin.listTopics());
      })(),
      env.CONNECT_TIMEOUT_MS,
      () => unreachable(`no answer within ${env.CONNECT_TIMEOUT_MS} ms; CONNECT_TIMEOUT_MS sets the limit`),
    ).catch((err: unknown) => {
      throw err instanceof CliError ? err : unreachable(reasonOf(err));
    });
    await admin.disconnect();
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      throw new CliError(`topic${missing.length > 1 ? "s" : ""} ${missing.map((t) => `"${t}"`).join(", ")} not found on Kafka at ${env.KAFKA_BROKERS}`);
    }
  } catch (err) {
    // Not awaited: disconnecting waits for the request that is hanging, and the command exits now anyway.
    void admin.disconnect().catch(() => undefined);
    throw err;
  }
}

/**
 * A Redis connection that gives up: a few reconnects, then every pending and later command fails
 * (the command then stops with one line), where the services' connections wait for Redis forever.
 * Resolves once Redis answered PING, or throws a CliError within the connect timeout.
 */
export async function cliRedis(url: string, env: ConnectEnv): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: env.CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
    enableReadyCheck: true,
  });
  let lastError: Error | undefined;
  // Without a listener ioredis prints every failed attempt with its stack.
  redis.on("error", (err: Error) => {
    lastError = err;
  });
  const unreachable = (why: string) => new CliError(`cannot reach Redis at ${redactUrl(url)} (${why})`);
  try {
    await withTimeout(
      (async () => {
        await redis.connect();
        await redis.ping();
      })(),
      env.CONNECT_TIMEOUT_MS,
      () => unreachable(lastError ? reasonOf(lastError) : `no answer within ${env.CONNECT_TIMEOUT_MS} ms; CONNECT_TIMEOUT_MS sets the limit`),
    );
  } catch (err) {
    redis.disconnect();
    throw err instanceof CliError ? err : unreachable(reasonOf(lastError ?? err));
  }
  return redis;
}

/**
 * One line for a failure that was not anticipated where it happened: a dependency lost mid-run,
 * a protocol error. Names Kafka or Redis when the error comes from one of them.
 */
export function describeFailure(err: unknown, env: Record<string, string | undefined>): string {
  if (err instanceof CliError) return err.message;
  if (!(err instanceof Error)) return String(err);
  // Usage and configuration errors are written for people already (a configuration error lists every problem).
  if (err.name === "UsageError" || err.name === "ConfigError") return err.message;
  const brokers = env.KAFKA_BROKERS ?? KafkaEnv.shape.KAFKA_BROKERS.parse(undefined);
  const redisUrl = redactUrl(env.REDIS_URL ?? "redis://127.0.0.1:6379");
  const reason = reasonOf(err);
  // Classified by the innermost error: a Redis failure inside a Kafka consumer's batch arrives wrapped by kafkajs.
  const inner = innermost(err);
  const innerName = inner instanceof Error ? inner.name : "";
  if (innerName === "MaxRetriesPerRequestError" || (!innerName.startsWith("KafkaJS") && /Connection is closed|Stream isn't writeable|enableOfflineQueue|max retries per request/i.test(reason))) {
    return `lost Redis at ${redisUrl} (${reason})`;
  }
  if (innerName.startsWith("KafkaJS")) {
    const type = (inner as { type?: unknown }).type ?? (err as { type?: unknown }).type;
    if (type === "UNKNOWN_TOPIC_OR_PARTITION") return `a topic was not found on Kafka at ${brokers} (${reason})`;
    if (/connect|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|timed? ?out|broker/i.test(`${innerName} ${reason}`)) return `cannot reach Kafka at ${brokers} (${reason})`;
    return `Kafka at ${brokers}: ${reason}`;
  }
  // Anything else (also when kafkajs wrapped it): its own first line.
  return reason;
}

/**
 * Every judge's endpoint answers HTTP (any status: a 401 or 404 is the model's business, reported
 * per call). Without this an unreachable endpoint shows as model calls that all failed.
 */
export async function checkEndpoints(judges: { name: string; baseURL: string }[], timeoutMs: number): Promise<void> {
  const byUrl = new Map<string, string>();
  for (const j of judges) if (!byUrl.has(j.baseURL)) byUrl.set(j.baseURL, j.name);
  await Promise.all(
    [...byUrl].map(async ([baseURL, name]) => {
      try {
        const res = await fetch(new URL("models", baseURL.endsWith("/") ? baseURL : `${baseURL}/`), { signal: AbortSignal.timeout(timeoutMs) });
        await res.body?.cancel();
      } catch (err) {
        const why = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${timeoutMs} ms; CONNECT_TIMEOUT_MS sets the limit` : reasonOf(err);
        throw new CliError(`cannot reach the model endpoint ${baseURL} of judge "${name}" (${why})`);
      }
    }),
  );
}
