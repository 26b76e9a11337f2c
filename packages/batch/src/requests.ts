/**
 * Request files: one JSONL line per conversation, `{custom_id, body}`, where `custom_id` is the
 * verdict's `result_id` and `body` is the chat request a live worker sends (same messages,
 * temperature, token budget and response format), minus `model`, which the batch job names.
 */
import { buildChatMessages, VERDICT_JSON_SCHEMA } from "@tracesift/judge";
import { type JudgeJob, judgedResultId, type JudgeIdentity } from "@tracesift/schemas";

export type RequestOptions = { maxTokens: number; responseFormat: "json_schema" | "json_object" };

export function requestBody(conversation: JudgeJob["conversation"], options: RequestOptions) {
  return {
    messages: buildChatMessages(conversation),
    temperature: 0,
    max_tokens: options.maxTokens,
    response_format:
      options.responseFormat === "json_schema" ? { type: "json_schema" as const, json_schema: VERDICT_JSON_SCHEMA } : { type: "json_object" as const },
  };
}

export type RequestLine = { customId: string; line: string };

export function requestLine(job: JudgeJob, judge: JudgeIdentity, options: RequestOptions): RequestLine {
  const customId = judgedResultId(job.conversation.id, job.version, { model: judge.model, prompt_version: judge.prompt_version });
  return { customId, line: JSON.stringify({ custom_id: customId, body: requestBody(job.conversation, options) }) };
}

/**
 * Fireworks takes input datasets under 500 MB (uploads in one request up to 150 MB); the line
 * limit keeps a file's turnaround and a failed job's retry small. Both are configurable because
 * they move.
 */
export type FileLimits = { maxBytes: number; maxLines: number };
export const DEFAULT_FILE_LIMITS: FileLimits = { maxBytes: 100 * 1024 * 1024, maxLines: 50_000 };

/** Splits lines into files under both limits, in order. A line over `maxBytes` on its own is refused. */
export function splitRequests<T extends RequestLine>(lines: readonly T[], limits: FileLimits): T[][] {
  const files: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const l of lines) {
    const size = Buffer.byteLength(l.line) + 1;
    if (size > limits.maxBytes) throw new Error(`request ${l.customId} alone is ${size} bytes, over the file limit of ${limits.maxBytes}`);
    if (current.length > 0 && (current.length >= limits.maxLines || bytes + size > limits.maxBytes)) {
      files.push(current);
      current = [];
      bytes = 0;
    }
    current.push(l);
    bytes += size;
  }
  if (current.length > 0) files.push(current);
  return files;
}
