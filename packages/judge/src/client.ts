import { createHash } from "node:crypto";
import type { Conversation, TokenUsage, VerdictBlock } from "@tracesift/schemas";
import OpenAI from "openai";
import { verdictConfidence } from "./confidence.ts";
import { createHttpFetch } from "./http.ts";
import { buildChatMessages, VERDICT_JSON_SCHEMA } from "./prompt.ts";
import { InvalidOutputError, parseVerdict } from "./verdict.ts";

export type JudgeClientOptions = {
  baseURL: string;
  apiKey: string;
  model: string;
  timeoutMs: number;
  maxTokens: number;
  /** `json_schema` constrains decoding where supported; `json_object` is the fallback for endpoints without it. */
  responseFormat: "json_schema" | "json_object";
  /** The HTTP client under the SDK; a keep-alive node:http client (./http.ts) when absent. */
  fetch?: typeof fetch;
  /** Ask for log-probabilities (`JUDGE_LOGPROBS`) so verdicts carry a `confidence`. */
  logprobs?: boolean;
};

export type ChatMessage = { role: "system" | "user"; content: string };

export type CallOptions = {
  /** The conversation being judged: every call about it carries the same session id, so the
   *  provider routes it to the replica that holds its cached prompt prefix. */
  conversationId?: string;
};

/** Fireworks' prompt-cache affinity header: calls with the same value go to the same replica. */
export const SESSION_HEADER = "x-multi-turn-session-id";

/** An opaque, stable session id: the provider needs affinity, not the conversation id itself. */
export function sessionIdFor(conversationId: string): string {
  return createHash("sha256").update(conversationId).digest("hex").slice(0, 32);
}

export type JudgeCall = {
  /** With `confidence` only when logprobs were asked for and the provider returned them. */
  verdict: VerdictBlock;
  usage: TokenUsage;
  latencyMs: number;
  raw: string;
  headers: Headers;
};

/**
 * Why a call failed, in the terms the fleet acts on: rate limits pause the fleet, transient
 * failures retry, fatal ones (bad key, unknown model) stop calls for the model.
 */
export class JudgeCallError extends Error {
  override name = "JudgeCallError";
  constructor(
    message: string,
    readonly kind: "rate_limited" | "overloaded" | "transient" | "fatal",
    readonly status: number | undefined,
    readonly retryAfterMs: number | undefined,
    readonly headers: Headers | undefined,
  ) {
    super(message);
  }
}

/** Enough alternatives to see both `true` and `false` at the deciding token. */
const TOP_LOGPROBS = 5;

export function createJudgeClient(options: JudgeClientOptions) {
  // BullMQ owns retries: the SDK's own (2 by default, honouring retry-after) would hide 429s from the fleet limiter.
  const client = new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey,
    maxRetries: 0,
    timeout: options.timeoutMs,
    fetch: options.fetch ?? createHttpFetch(),
  });

  /** One verdict call with caller-built messages (the judge's prompt, or another such as an arbiter's). */
  async function complete(messages: ChatMessage[], call: CallOptions = {}): Promise<JudgeCall> {
    const started = performance.now();
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    let headers: Headers;
    try {
      const { data, response } = await client.chat.completions
        .create({
          model: options.model,
          messages,
          temperature: 0,
          max_tokens: options.maxTokens,
          response_format:
            options.responseFormat === "json_schema"
              ? { type: "json_schema", json_schema: VERDICT_JSON_SCHEMA }
              : { type: "json_object" },
          ...(options.logprobs ? { logprobs: true, top_logprobs: TOP_LOGPROBS } : {}),
        },
        call.conversationId === undefined ? undefined : { headers: { [SESSION_HEADER]: sessionIdFor(call.conversationId) } },
        )
        .withResponse();
      completion = data;
      headers = response.headers;
    } catch (err) {
      throw classifyError(err);
    }
    const latencyMs = performance.now() - started;
    const raw = completion.choices[0]?.message?.content ?? "";
    const usage = readUsage(completion, headers);
    // Parse last: invalid output is still billed and metered, so the error carries what the
    // provider charged for the caller's metrics, budget and limiter.
    try {
      const verdict: VerdictBlock = parseVerdict(raw);
      const confidence = options.logprobs ? verdictConfidence(completion.choices[0]?.logprobs, verdict.perceived_error) : undefined;
      if (confidence !== undefined) verdict.confidence = confidence;
      return { verdict, usage, latencyMs, raw, headers };
    } catch (err) {
      if (err instanceof InvalidOutputError) throw new InvalidOutputError(err.message, raw, { usage, latencyMs, headers });
      throw err;
    }
  }

  function judge(conversation: Pick<Conversation, "messages"> & { id?: string }): Promise<JudgeCall> {
    return complete(buildChatMessages(conversation), conversation.id === undefined ? {} : { conversationId: conversation.id });
  }

  return { judge, complete, model: options.model, maxTokens: options.maxTokens };
}
export type JudgeClient = ReturnType<typeof createJudgeClient>;

/** Fireworks reports cached prompt tokens in `usage` or only in a response header: read both. */
export function readUsage(completion: OpenAI.Chat.Completions.ChatCompletion, headers: Headers): TokenUsage {
  const u = completion.usage;
  const headerCached = Number(headers.get("fireworks-cached-prompt-tokens") ?? Number.NaN);
  const prompt = u?.prompt_tokens ?? Number(headers.get("fireworks-prompt-tokens") ?? 0);
  const cached = u?.prompt_tokens_details?.cached_tokens ?? (Number.isFinite(headerCached) ? headerCached : 0);
  const completionTokens = u?.completion_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    cached_prompt_tokens: cached,
    completion_tokens: completionTokens,
    total_tokens: u?.total_tokens ?? prompt + completionTokens,
  };
}

export function retryAfterMs(headers: Headers | undefined): number | undefined {
  const value = headers?.get("retry-after-ms") ?? undefined;
  if (value !== undefined && Number.isFinite(Number(value))) return Number(value);
  const seconds = headers?.get("retry-after");
  if (!seconds) return undefined;
  if (Number.isFinite(Number(seconds))) return Number(seconds) * 1000;
  const date = Date.parse(seconds);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function classifyError(err: unknown): JudgeCallError {
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return new JudgeCallError(`timeout: ${err.message}`, "transient", undefined, undefined, undefined);
  }
  if (err instanceof OpenAI.APIConnectionError) {
    return new JudgeCallError(`connection error: ${err.message}`, "transient", undefined, undefined, undefined);
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    const headers = err.headers;
    const message = `HTTP ${status ?? "?"}: ${err.message}`;
    if (status === 429) return new JudgeCallError(message, "rate_limited", status, retryAfterMs(headers), headers);
    if (status === 503) return new JudgeCallError(message, "overloaded", status, retryAfterMs(headers), headers);
    if (status === 408 || status === 409 || (status !== undefined && status >= 500)) {
      return new JudgeCallError(message, "transient", status, undefined, headers);
    }
    return new JudgeCallError(message, "fatal", status, undefined, headers);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new JudgeCallError(message, "transient", undefined, undefined, undefined);
}
