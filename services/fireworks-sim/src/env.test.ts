import { ConfigError } from "@tracesift/runtime";
import { describe, expect, it } from "vitest";
import { readEnv } from "./env.ts";

describe("readEnv", () => {
  it("applies the defaults and leaves limits unset", () => {
    const env = readEnv({});
    expect(env).toMatchObject({ SIM_PORT: 8787, SIM_HOST: "127.0.0.1", SIM_LATENCY_MS: 50, SIM_SEND_RETRY_AFTER: true });
    expect(env.SIM_RPM).toBeUndefined();
    expect(env.SIM_MODELS).toBeUndefined();
    expect(env).toMatchObject({ SIM_ACCOUNT_RPM: 6000, SIM_REPLICAS: 4, SIM_RAMP_START_SHARE: 0.5 });
    expect(env.SIM_PROMPT_TPS).toBeUndefined();
  });

  it("parses Fireworks' per-second token meters", () => {
    const env = readEnv({ SIM_PROMPT_TPS: "60000", SIM_UNCACHED_PROMPT_TPS: "15000", SIM_GENERATED_TPS: "600", SIM_RAMP_START_SHARE: "1" });
    expect(env).toMatchObject({ SIM_PROMPT_TPS: 60_000, SIM_UNCACHED_PROMPT_TPS: 15_000, SIM_GENERATED_TPS: 600, SIM_RAMP_START_SHARE: 1 });
  });

  it("parses limits, booleans and the model list", () => {
    const env = readEnv({ SIM_RPM: "600", SIM_TPM: "100000", SIM_SEND_RETRY_AFTER: "false", SIM_MODELS: "a, b,,c", SIM_API_KEY: "k" });
    expect(env).toMatchObject({ SIM_RPM: 600, SIM_TPM: 100_000, SIM_SEND_RETRY_AFTER: false, SIM_MODELS: ["a", "b", "c"] });
  });

  it("lists every bad variable at once", () => {
    expect(() => readEnv({ SIM_PORT: "http", SIM_RPM: "-1" })).toThrow(ConfigError);
    expect(() => readEnv({ SIM_PORT: "http", SIM_RPM: "-1" })).toThrow(/SIM_PORT[\s\S]*SIM_RPM/);
  });
});
