import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { SimContext } from "./context.ts";
import { malformedContent, readDirectives } from "./faults.ts";
import { describeIssues, type Hangup, HttpError, readJson, sendError, sendJson, sleep } from "./http.ts";
import type { InjectedFault, MalformedVariant } from "./options.ts";
import { simLogprobs } from "./logprobs.ts";
import { type Limits, WINDOW_MS } from "./rate-limiter.ts";
import { promptTokens, textTokens } from "./tokens.ts";
import { decideVerdict, parseTranscript, verdictContent } from "./verdict.ts";

const ContentSchema = z.union([
  z.string(),
  z.array(z.looseObject({ type: z.string(), text: z.string().optional() })),
  z.null(),
]);

/** Lenient like the real API: unknown fields (temperature, response_format, seed...) pass through. */
const ChatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(z.looseObject({ role: z.string(), content: ContentSchema.optional() })).min(1),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  stream: z.boolean().nullish(),
});

type ChatRequest = z.output<typeof ChatRequestSchema>;

export const MODEL_NOT_FOUND = new HttpError(404, "NOT_FOUND", "Model not found, inaccessible, and/or not deployed");

/** What the handler decided, for stats and the onRequest hook. */
type Outcome = { status: number | "timeout"; fault?: string; malformed?: boolean; tokens?: Tokens };
type Tokens = { prompt: number; cached: number; completion: number };

/** Answers one chat-completion request, in the order a real gateway would refuse it. */
export async function handleChat(
  ctx: SimContext,
  req: IncomingMessage,
  res: ServerResponse,
  hangup: Hangup,
): Promise<{ outcome: Outcome; model?: string }> {
  let model: string | undefined;
  try {
    authorize(ctx, req);
    const body = parseRequest(await readJson(req));
    model = body.model;
    const session = req.headers["x-multi-turn-session-id"];
    const outcome = await answer(ctx, body, res, hangup, typeof session === "string" ? session : undefined);
    return { outcome, model };
  } catch (err) {
    if (err instanceof HttpError) {
      sendError(res, err);
      return { outcome: { status: err.status }, ...(model ? { model } : {}) };
    }
    // 499 (nginx's "client closed request"): the client or the simulator hung up first.
    if (hangup.aborted) return { outcome: { status: 499 }, ...(model ? { model } : {}) };
    throw err;
  }
}

function authorize(ctx: SimContext, req: IncomingMessage): void {
  const key = ctx.config.apiKey;
  if (key === undefined) return;
  const header = req.headers.authorization ?? "";
  if (header !== `Bearer ${key}`) {
    throw new HttpError(401, "UNAUTHORIZED", header ? "The API key you provided is invalid." : "Missing API key.");
  }
}

function parseRequest(json: unknown): ChatRequest {
  const parsed = ChatRequestSchema.safeParse(json);
  if (!parsed.success) {
    throw new HttpError(400, "INVALID_ARGUMENT", `invalid chat completion request: ${describeIssues(parsed.error)}`);
  }
  if (parsed.data.stream) throw new HttpError(400, "INVALID_ARGUMENT", "the simulator does not support stream=true");
  return parsed.data;
}

async function answer(ctx: SimContext, body: ChatRequest, res: ServerResponse, hangup: Hangup, session: string | undefined): Promise<Outcome> {
  const { config } = ctx;
  const limits = limitsOf(config);
  const drawn = ctx.faults.next(config.faults, ctx.random);
  let malformed: MalformedVariant | undefined;
  if (drawn) {
    const { fault, source } = drawn;
    if (fault.kind === "timeout") {
      // Hang: no bytes at all, until the client's timeout fires or the simulator closes.
      if (!hangup.aborted) {
        const signal = hangup.signal;
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      }
      return { status: "timeout", fault: source };
    }
    if (fault.kind === "malformed") malformed = fault.variant ?? "prose";
    else {
      sendError(res, faultError(fault), faultHeaders(ctx, fault, body.model));
      return { status: Number(fault.kind), fault: source };
    }
  }
  if (config.models !== undefined && !config.models.includes(body.model)) throw MODEL_NOT_FOUND;

  const contents = body.messages.map((m) => textOf(m.content));
  const directives = readDirectives(contents);
  const fault = malformed ? drawn?.source : directives.malformed ? "[sim:malformed]" : undefined;
  malformed ??= directives.malformed;

  const verdict = decideVerdict(parseTranscript(judgedText(body)));
  let content = malformed ? malformedContent(malformed, verdict) : verdictContent(verdict);
  let finishReason = malformed === "truncated" ? "length" : "stop";
  let completion = textTokens(content);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  if (maxTokens !== undefined && completion > maxTokens) {
    content = content.slice(0, maxTokens * 4);
    completion = maxTokens;
    finishReason = "length";
  }
  const prompt = promptTokens(contents);
  // The replica decides what is cached: the same session always lands on the same one.
  const replica = session === undefined ? Math.floor(ctx.random() * config.replicas) : replicaFor(session, config.replicas);
  const blocks = ctx.cache.blocks(
    replica,
    body.model,
    body.messages.map((m, i) => ({ role: m.role, content: contents[i] ?? "" })),
  );
  const cached = Math.min(prompt, ctx.cache.lookup(blocks));
  const charge = {
    tokens: prompt + (config.tpmCompletion === "max_tokens" && maxTokens !== undefined ? maxTokens : completion),
    prompt,
    uncachedPrompt: prompt - cached,
    generated: completion,
  };

  const decision = ctx.limiter.admit(body.model, charge, limits);
  if (!decision.ok) {
    const headers = { ...decision.headers };
    if (config.sendRetryAfter) headers["retry-after"] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
    const message = `Rate limit exceeded: ${decision.limit} ${decision.exceeded} per ${WINDOW_MS / 1000} s for model ${body.model}`;
    sendError(res, new HttpError(429, "RATE_LIMIT_EXCEEDED", message, "rate_limit_error"), headers);
    return { status: 429, fault: `rate limit (${decision.exceeded})` };
  }
  ctx.cache.store(blocks);

  if (directives.failOnceIds.length > 0 && ctx.faults.failOnce(directives.failOnceIds)) {
    sendError(res, faultError({ kind: "500" }));
    return { status: 500, fault: "[sim:fail-once]" };
  }

  const latency =
    config.latencyMs +
    (config.latencyPerKTokensMs * (prompt + completion)) / 1000 +
    config.latencyJitterMs * ctx.random() +
    directives.slowMs;
  // With no latency (the benchmarks' instant model) there is nothing to wait for, nor a signal to make.
  if (latency > 0) await sleep(latency, hangup.signal);
  else if (hangup.aborted) throw hangup.reason;

  const tokens = { prompt, cached, completion };
  const headers: Record<string, string> = {
    "fireworks-prompt-tokens": String(prompt),
    "fireworks-cached-prompt-tokens": String(cached),
  };
  if (config.sendRateLimitHeaders) Object.assign(headers, decision.headers);
  const logprobs = body.logprobs === true ? simLogprobs(content, judgedText(body), Number(body.top_logprobs ?? 0)) : null;
  sendJson(res, 200, completionBody(ctx, body.model, content, finishReason, tokens, logprobs), headers);
  return { status: 200, tokens, malformed: malformed !== undefined, ...(fault ? { fault } : {}) };
}

function completionBody(ctx: SimContext, model: string, content: string, finishReason: string, t: Tokens, logprobs: unknown = null) {
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: "chat.completion",
    created: Math.floor(ctx.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: finishReason, logprobs }],
    usage: {
      prompt_tokens: t.prompt,
      completion_tokens: t.completion,
      total_tokens: t.prompt + t.completion,
      prompt_tokens_details: { cached_tokens: t.cached },
    },
  };
}

function faultError(fault: InjectedFault): HttpError {
  switch (fault.kind) {
    case "429":
      return new HttpError(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded (injected by the simulator)", "rate_limit_error");
    case "503":
      return new HttpError(503, "SERVICE_UNAVAILABLE", "The server is overloaded, please retry later", "service_unavailable");
    case "404":
      return MODEL_NOT_FOUND;
    default:
      return new HttpError(500, "INTERNAL", "Internal server error (injected by the simulator)", "internal_server_error");
  }
}

function faultHeaders(ctx: SimContext, fault: InjectedFault, model: string): Record<string, string> {
  const headers = fault.kind === "429" ? ctx.limiter.peek(model, limitsOf(ctx.config)) : {};
  const retryable = fault.kind === "429" || fault.kind === "503";
  if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
  else if (retryable && ctx.config.sendRetryAfter) headers["retry-after"] = "1";
  return headers;
}

function textOf(content: z.output<typeof ContentSchema> | undefined): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content.map((part) => part.text ?? "").join("");
}

/** The judge puts the transcript in the (last) user message. */
function judgedText(body: ChatRequest): string {
  const user = body.messages.findLast((m) => m.role === "user");
  return textOf(user?.content);
}

function limitsOf(config: SimContext["config"]): Limits {
  return {
    rpm: config.rpm,
    tpm: config.tpm,
    promptTps: config.promptTokensPerSec,
    uncachedPromptTps: config.uncachedPromptTokensPerSec,
    generatedTps: config.generatedTokensPerSec,
    accountRpm: config.accountRpm,
    rampStartShare: config.rampStartShare,
    rampMs: config.rampMs,
  };
}

/** The replica a session is pinned to (FNV-1a: a cheap, stable spread of session ids). */
export function replicaFor(session: string, replicas: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < session.length; i++) h = Math.imul(h ^ session.charCodeAt(i), 0x01000193);
  return (h >>> 0) % replicas;
}
