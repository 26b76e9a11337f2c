export { type ModelLimits, type ModelLimitsMap, ModelLimitsMapSchema, ModelLimitsSchema, parseModelLimits } from "./config.ts";
export { type HeadersLike, type LearnedLimits, parseRateLimitHeaders } from "./headers.ts";
export { ADAPTIVE_INITIAL, ADAPTIVE_MAX, FleetRateLimiter } from "./limiter.ts";
export { type Lease, type LimiterOptions, type LimiterSnapshot, type Priority, RequestTooLargeError } from "./types.ts";
