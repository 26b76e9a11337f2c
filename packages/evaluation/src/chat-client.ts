/**
 * A verdict call with caller-built messages, for prompts other than the judge's (the arbiter).
 * `@tracesift/judge`'s client builds the judge prompt itself, so this mirrors its call: same
 * settings (no SDK retries, temperature 0, JSON by schema), the same usage reading and verdict
 * parsing, and errors classified into the same `JudgeCallError` kinds.
 */
import { type JudgeCall, JudgeCallError, type JudgeClientOptions, parseVerdict, readUsage, retryAfterMs, VERDICT_JSON_SCHEMA } from "@tracesift/judge";
import OpenAI from "openai";

export type ChatMessage = { role: "system" | "user"; content: string };

export function createVerdictChatClient(options: JudgeClientOptions) {
  const client = new OpenAI({ baseURL: options.baseURL, apiKey: options.apiKey, maxRetries: 0, timeout: options.timeoutMs });

  async function call(messages: ChatMessage[]): Promise<JudgeCall> {
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
            options.responseFormat === "json_schema" ? { type: "json_schema", json_schema: VERDICT_JSON_SCHEMA } : { type: "json_object" },
        })
        .withResponse();
      completion = data;
      headers = response.headers;
    } catch (err) {
      throw classify(err);
    }
    const latencyMs = performance.now() - started;
    const raw = completion.choices[0]?.message?.content ?? "";
    return { verdict: parseVerdict(raw), usage: readUsage(completion, headers), latencyMs, raw, headers };
  }

  return { call, model: options.model };
}

export type VerdictChatClient = ReturnType<typeof createVerdictChatClient>;

function classify(err: unknown): JudgeCallError {
  if (err instanceof OpenAI.APIConnectionError) {
    return new JudgeCallError(`connection error: ${err.message}`, "transient", undefined, undefined, undefined);
  }
  if (err instanceof OpenAI.APIError) {
    const { status, headers } = err;
    const message = `HTTP ${status ?? "?"}: ${err.message}`;
    if (status === 429) return new JudgeCallError(message, "rate_limited", status, retryAfterMs(headers), headers);
    if (status === 503) return new JudgeCallError(message, "overloaded", status, retryAfterMs(headers), headers);
    if (status === 408 || status === 409 || (status !== undefined && status >= 500)) {
      return new JudgeCallError(message, "transient", status, undefined, headers);
    }
    return new JudgeCallError(message, "fatal", status, undefined, headers);
  }
  return new JudgeCallError(err instanceof Error ? err.message : String(err), "transient", undefined, undefined, undefined);
}
