import { describe, expect, it } from "vitest";
import { parseModelLimits } from "./config.ts";
import { parseRateLimitHeaders } from "./headers.ts";

describe("parseModelLimits", () => {
  it("parses a per-model JSON map", () => {
    expect(
      parseModelLimits('{"accounts/fireworks/models/x": {"rpm": 600, "tpm": 200000, "maxInFlight": 64}, "y": {}}'),
    ).toEqual({ "accounts/fireworks/models/x": { rpm: 600, tpm: 200_000, maxInFlight: 64 }, y: {} });
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
  it("converts Fireworks' per-second token limits to per minute and takes the smaller", () => {
    const headers = new Headers({
      "x-ratelimit-limit-requests": "6000",
      "x-ratelimit-limit-tokens-prompt": "60000",
      "x-ratelimit-limit-tokens-generated": "600",
    });
    expect(parseRateLimitHeaders(headers)).toEqual({ rpm: 6000, tpm: 36_000 });
  });

  it("reads plain objects case-insensitively and ignores junk", () => {
    expect(parseRateLimitHeaders({ "X-RateLimit-Limit-Tokens-Generated": "10.5" })).toEqual({ tpm: 630 });
    expect(parseRateLimitHeaders({ "x-ratelimit-limit-requests": "abc", other: "1" })).toEqual({});
  });
});
