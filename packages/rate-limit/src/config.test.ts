import { describe, expect, it } from "vitest";
import { parseModelLimits } from "./config.ts";
import { parseRateLimitHeaders } from "./headers.ts";

describe("parseModelLimits", () => {
  it("parses a per-model JSON map", () => {
    expect(
      parseModelLimits('{"accounts/fireworks/models/x": {"rpm": 600, "promptTpm": 200000, "generatedTpm": 900, "maxInFlight": 64}, "y": {}}'),
    ).toEqual({ "accounts/fireworks/models/x": { rpm: 600, promptTpm: 200_000, generatedTpm: 900, maxInFlight: 64 }, y: {} });
  });

  it("treats unset or blank as no configured limits", () => {
    expect(parseModelLimits(undefined)).toEqual({});
    expect(parseModelLimits("  ")).toEqual({});
  });

  it("names every bad field", () => {
    expect(() => parseModelLimits('{"x": {"rpm": -1, "tmp": 5}}')).toThrow(/x\.rpm[\s\S]*x/);
    expect(() => parseModelLimits("{nope")).toThrow(/invalid JSON/);
  });
});

describe("parseRateLimitHeaders", () => {
  it("keeps Fireworks' three per-second token meters apart, per minute", () => {
    const headers = new Headers({
      "x-ratelimit-limit-requests": "6000",
      "x-ratelimit-limit-tokens-prompt": "60000",
      "x-ratelimit-limit-tokens-cache-adjusted-prompt": "15000",
      "x-ratelimit-limit-tokens-generated": "600",
    });
    // Not min(prompt, generated) × 60 = 36,000 total tokens: that would use ~1% of the prompt allowance.
    expect(parseRateLimitHeaders(headers)).toEqual({ rpm: 6000, promptTpm: 3_600_000, uncachedPromptTpm: 900_000, generatedTpm: 36_000 });
  });

  it("reads plain objects case-insensitively and ignores junk", () => {
    expect(parseRateLimitHeaders({ "X-RateLimit-Limit-Tokens-Generated": "10.5" })).toEqual({ generatedTpm: 630 });
    expect(parseRateLimitHeaders({ "x-ratelimit-limit-requests": "abc", other: "1" })).toEqual({});
  });
});
