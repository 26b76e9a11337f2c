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
});
