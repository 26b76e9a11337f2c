/**
 * @tracesift/evaluation: judge quality. Labelled datasets, metrics against labels, panel labelling
 * with arbiters, fine-tuning export, and the cached, rate-limited calls they all share with the fleet.
 */
export { type FleissResult, fleissKappa, type PairAgreement, pairwiseAgreement, type Ratings } from "./agreement.ts";
export {
  ARBITER_HEADER,
  ARBITER_PROMPT_VERSION,
  ARBITER_SYSTEM_PROMPT,
  arbiterPromptVersion,
  buildArbiterMessages,
  type PanelVerdictForArbiter,
  renderArbiterInput,
} from "./arbiter.ts";
export { connectRuntime, RedisUnavailableError, type Runtime } from "./connect.ts";
export {
  conversationToEvent,
  type Dataset,
  DatasetError,
  type DatasetItem,
  type DatasetProblem,
  itemKey,
  Label,
  parseDataset,
  parseDatasetLine,
  readDatasetFiles,
} from "./dataset.ts";
export { type EvalDataset, EvalProgressRecord, type EvalRunOptions, runEvaluation } from "./eval-run.ts";
export { FLIPPED_REASON, type FlipProxy, type FlipRule, flips, judgedMessages, startFlipProxy } from "./flip-proxy.ts";
export {
  assertUniqueNames,
  ConfigError,
  JudgeConfig,
  type JudgeConfigInput,
  JudgesFile,
  PanelFile,
  parseConfigFile,
  readConfigFile,
  resolveApiKey,
  resolvePromptVersion,
} from "./judge-config.ts";
export { JsonlAppender, type JsonlRead, readJsonl } from "./jsonl.ts";
export { type LabelInput, type LabelRunOptions, type LabelRunResult, runLabelling } from "./label-run.ts";
export { agreedVerdict, type Decision, decide, EventRecord, LabelLine, Provenance, QueueLine, Vote, voteVerdict } from "./labeling.ts";
export { type BinaryMetrics, binaryMetrics, type Confusion, cohenKappa, confusionOf, type EvalRecord, type EvalSummary, percentile, summarizeEval } from "./metrics.ts";
export { VerdictOutcome } from "./outcome.ts";
export { runPool } from "./pool.ts";
export {
  type Disagreement,
  type EvalReport,
  type EvalRow,
  fmt,
  type LabelStats,
  renderEvalMarkdown,
  renderEvalTerminal,
  renderLabelStats,
  renderMarkdownTable,
  renderTable,
} from "./report.ts";
export {
  type CachedArbiter,
  type CachedJudge,
  type CallerStats,
  createCachedArbiter,
  createCachedJudge,
  type JudgeInput,
  JudgeUnavailableError,
  type RuntimeDeps,
} from "./runner.ts";
export { DEFAULT_SPLIT_SALT, isHoldout, SftRecord, splitBucket, toSftRecord } from "./sft.ts";
export { type Calibration, calibrationOf, DEFAULT_BAND, type Escalation, escalationOf, inBand, type ReliabilityBin, type ScoredVerdict, UncertainBand } from "./calibration.ts";
export { createSecondOpinion, type SecondOpinion, type SecondOpinionAction, SecondOpinionEnv } from "./second-opinion.ts";
export { CANARY_KEY, CANARY_LABEL_KEY, type CanaryMark, type CanaryScore, canaryEvent, canaryMarkOf, canaryTopicFor, judgeVersionOf, RollingCanaryScore } from "./canary.ts";
