import { ResultIndex } from "@tracesift/result-index";
import { Redis } from "ioredis";
import type { RuntimeDeps } from "./runner.ts";

export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

export type Runtime = { deps: RuntimeDeps; close: () => Promise<void> };

/**
 * Connects to the fleet's Redis for the limiter and the result cache. Fails fast when Redis is not
 * there, rather than queueing commands forever.
 */
export async function connectRuntime(options: Omit<RuntimeDeps, "redis" | "index"> & { redisUrl: string }): Promise<Runtime> {
  const { redisUrl, ...rest } = options;
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3, connectTimeout: 5_000 });
  let lastError: Error | undefined;
  // ioredis reconnects by itself; without a listener every failed attempt is an "unhandled" print.
  redis.on("error", (err: Error) => {
    lastError = err;
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new RedisUnavailableError(`cannot reach Redis at ${redisUrl} (REDIS_URL): ${(lastError ?? (err as Error)).message}`);
  }
  return {
    deps: { ...rest, redis, index: new ResultIndex(redis, options.prefix) },
    close: async () => {
      await redis.quit();
    },
  };
}
