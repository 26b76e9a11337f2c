export { createSimulator, type Simulator } from "./simulator.ts";
export {
  decideVerdict,
  parseTranscript,
  verdictContent,
  ASSISTANT_CUES,
  USER_CUES,
  NO_PROBLEM_REASON,
  type TranscriptMessage,
  type Verdict,
} from "./verdict.ts";
export {
  FAULT_KINDS,
  SimOptionsSchema,
  InjectedFaultSchema,
  type InjectedFault,
  type RequestEvent,
  type SimConfig,
  type SimOptionsInput,
  type SimulatorOptions,
} from "./options.ts";
export type { ModelStats, SimStats, StatusCounts, TokenCounts } from "./stats.ts";
export { CHARS_PER_TOKEN, messageTokens, promptTokens, textTokens } from "./tokens.ts";
export { seededRandom } from "./tokens.ts";
