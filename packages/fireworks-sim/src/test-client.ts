// Test-only helpers. The real `openai` SDK is the client, so the tests prove the simulator speaks its
// protocol. It is not a dependency of this package (installs are the lead's call), so it is imported
// from the workspace's test package; once `openai` is a devDependency here, import it from "openai".
import OpenAI from "openai";
import type { TranscriptMessage } from "./verdict.ts";

export { OpenAI };

export const MODEL = "accounts/tracesift/models/perceived-error-judge";
export const SYSTEM_PROMPT =
  "You judge whether the user of an AI assistant perceived an error. Answer with JSON: " +
  '{"perceived_error": boolean, "reason": string}. Look for corrections, repeats and rejections.';

/** The judge's user message: a header line, then the transcript as JSON. */
export function transcript(messages: TranscriptMessage[]): string {
  return `Conversation to judge (${messages.length} messages):\n${JSON.stringify({ messages })}`;
}

export function judgeRequest(messages: TranscriptMessage[], overrides: { model?: string; max_tokens?: number } = {}) {
  return {
    model: overrides.model ?? MODEL,
    messages: [
      { role: "system" as const, content: SYSTEM_PROMPT },
      { role: "user" as const, content: transcript(messages) },
    ],
    temperature: 0,
    max_tokens: overrides.max_tokens ?? 64,
    response_format: { type: "json_object" as const },
  };
}

export function client(baseURL: string, options: { apiKey?: string; maxRetries?: number; timeout?: number } = {}) {
  return new OpenAI({
    baseURL,
    apiKey: options.apiKey ?? "test-key",
    maxRetries: options.maxRetries ?? 0,
    timeout: options.timeout ?? 5_000,
  });
}

export const corrected: TranscriptMessage[] = [
  { role: "user", content: "What is the capital of Australia?" },
  { role: "assistant", content: "Sydney." },
  { role: "user", content: "That's wrong, it is Canberra." },
];

export const thanked: TranscriptMessage[] = [
  { role: "user", content: "What is the capital of Australia?" },
  { role: "assistant", content: "Canberra." },
  { role: "user", content: "Thanks!" },
];
