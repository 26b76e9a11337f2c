export { type ModelLimits, type ModelLimitsMap, ModelLimitsMapSchema, ModelLimitsSchema, parseModelLimits } from "./config.ts";
export { type HeadersLike, type LearnedLimits, parseRateLimitHeaders } from "./headers.ts";
export { ADAPTIVE_INITIAL, ADAPTIVE_MAX, FleetRateLimiter } from "./limiter.ts";
export {
  type Lease,
  type LimiterOptions,
  type LimiterSnapshot,
  METER_LIMIT,
  METERS,
  type Meter,
  type MeterValues,
  type Priority,
  RequestTooLargeError,
  type SettleUsage,
} from "./types.ts";
