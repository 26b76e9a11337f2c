import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BoolEnv, ConfigError, parseEnv, redactConfig } from "./env.ts";

describe("parseEnv", () => {
  const schema = z.object({ PORT: z.coerce.number().int().default(9465), DEBUG: BoolEnv.default(false), NAME: z.string() });

  it("applies defaults, treats empty values as unset and coerces", () => {
    expect(parseEnv(schema, { PORT: "", DEBUG: "yes", NAME: "x" })).toEqual({ PORT: 9465, DEBUG: true, NAME: "x" });
  });

  it("lists every bad variable at once", () => {
    expect(() => parseEnv(schema, { PORT: "abc", DEBUG: "maybe" })).toThrow(ConfigError);
    try {
      parseEnv(schema, { PORT: "abc", DEBUG: "maybe" });
    } catch (err) {
      expect((err as Error).message).toMatch(/PORT[\s\S]*DEBUG[\s\S]*NAME/);
    }
  });
});

describe("redactConfig", () => {
  it("masks secrets and keeps everything else", () => {
    expect(
      redactConfig({ FIREWORKS_API_KEY: "fw_secret", KAFKA_SASL_PASSWORD: "pw", apiKey: "k", JUDGE_MODEL: "m", SIM_API_KEY: undefined }),
    ).toEqual({ FIREWORKS_API_KEY: "[redacted]", KAFKA_SASL_PASSWORD: "[redacted]", apiKey: "[redacted]", JUDGE_MODEL: "m", SIM_API_KEY: undefined });
  });

  it("masks the password inside URLs, and only the password", () => {
    expect(redactConfig({ REDIS_URL: "redis://default:hunter2@redis.internal:6379/0" })).toEqual({ REDIS_URL: "redis://default:[redacted]@redis.internal:6379/0" });
    expect(redactConfig({ REDIS_URL: "rediss://:s3cr%40t@r:6380" })).toEqual({ REDIS_URL: "rediss://:[redacted]@r:6380" });
    expect(redactConfig({ REDIS_URL: "redis://127.0.0.1:6379", KAFKA_BROKERS: "a:9092,b:9092" })).toEqual({ REDIS_URL: "redis://127.0.0.1:6379", KAFKA_BROKERS: "a:9092,b:9092" });
  });
});
