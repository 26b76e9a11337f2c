export { BatchApiError, type BatchApiOptions, BatchJob, type CreateJobInput, FireworksBatchApi, JobState, TERMINAL_STATES } from "./api.ts";
export { DEFAULT_FILE_LIMITS, type FileLimits, type RequestLine, type RequestOptions, requestBody, requestLine, splitRequests } from "./requests.ts";
export { BATCH_DISCOUNT, type BatchOutcome, batchCostUsd, batchPrice, readOutputFiles } from "./results.ts";
export { BatchState, Chunk, ChunkStage, loadState, saveState } from "./state.ts";
