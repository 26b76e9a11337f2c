export {
  type CallOptions,
  type ChatMessage,
  createJudgeClient, type JudgeCall, JudgeCallError, type JudgeClient, type JudgeClientOptions, readUsage,
  retryAfterMs,
  SESSION_HEADER,
  sessionIdFor,
} from "./client.ts";
export { callCostUsd, DEFAULT_PRICES, GpuHourPrice, Price, PricingTable, priceFor, TokenPrice, tokenCostUsd } from "./pricing.ts";
export {
  buildChatMessages,
  estimateChatTokens,
  estimatePromptTokens,
  judgeMessages,
  PROMPT_VERSION,
  renderTranscript,
  SYSTEM_PROMPT,
  TRANSCRIPT_HEADER,
  VERDICT_JSON_SCHEMA,
} from "./prompt.ts";
export { type BilledCall, InvalidOutputError, parseVerdict } from "./verdict.ts";
export { readTokenLogprobs, type TokenLogprob, verdictConfidence } from "./confidence.ts";
