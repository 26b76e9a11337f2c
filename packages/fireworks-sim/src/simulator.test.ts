import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createSimulator } from "./simulator.ts";
import { client, corrected, judgeRequest, MODEL, OpenAI, SYSTEM_PROMPT, thanked, transcript } from "./test-client.ts";
import { messageTokens } from "./tokens.ts";
import { decideVerdict, verdictContent } from "./verdict.ts";

let clock = 1_000_000;
const sim = createSimulator({ models: [MODEL], apiKey: "test-key", now: () => clock });
let url = "";

beforeAll(async () => {
  ({ url } = await sim.listen(0));
});
afterAll(() => sim.close());
afterEach(() => sim.reset());

describe("chat completions through the openai SDK", () => {
  it("answers a verdict with usage and Fireworks token headers", async () => {
    const { data, response } = await client(url).chat.completions.create(judgeRequest(corrected)).withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.model).toBe(MODEL);
    expect(data.id).toMatch(/^chatcmpl-/);
    const choice = data.choices[0]!;
    expect(choice.finish_reason).toBe("stop");
    expect(choice.message.role).toBe("assistant");
    expect(JSON.parse(choice.message.content ?? "")).toEqual({
      perceived_error: true,
      reason: 'The user corrects the assistant ("that\'s wrong").',
    });
    const usage = data.usage!;
    expect(usage.prompt_tokens).toBeGreaterThan(Math.ceil((SYSTEM_PROMPT.length + transcript(corrected).length) / 4));
    expect(usage.completion_tokens).toBe(Math.ceil(choice.message.content!.length / 4));
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    expect(usage.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(response.headers.get("fireworks-prompt-tokens")).toBe(String(usage.prompt_tokens));
    expect(response.headers.get("fireworks-cached-prompt-tokens")).toBe("0");
  });

  it("says false for a plain thank-you, with the content decideVerdict predicts", async () => {
    const data = await client(url).chat.completions.create(judgeRequest(thanked));
    expect(data.choices[0]!.message.content).toBe(verdictContent(decideVerdict(thanked)));
    expect(JSON.parse(data.choices[0]!.message.content!)).toEqual({
      perceived_error: false,
      reason: "The user does not signal any problem with the assistant's replies.",
    });
  });

  it("also serves /v1/chat/completions", async () => {
    const root = url.replace(/\/inference\/v1$/, "/v1");
    const data = await client(root).chat.completions.create(judgeRequest(thanked));
    expect(data.choices).toHaveLength(1);
  });

  it("reports the system prompt as cached on the second call within 5 minutes", async () => {
    const c = client(url);
    const first = await c.chat.completions.create(judgeRequest(thanked));
    const { data: second, response } = await c.chat.completions.create(judgeRequest(corrected)).withResponse();
    const systemTokens = messageTokens(SYSTEM_PROMPT);
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(systemTokens);
    expect(response.headers.get("fireworks-cached-prompt-tokens")).toBe(String(systemTokens));
    expect(sim.stats().tokens.cached).toBe(systemTokens);

    clock += 5 * 60_000;
    const expired = await c.chat.completions.create(judgeRequest(thanked));
    expect(expired.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
  });

  it("cuts the answer at max_tokens with finish_reason length", async () => {
    const data = await client(url).chat.completions.create(judgeRequest(corrected, { max_tokens: 3 }));
    expect(data.choices[0]!.finish_reason).toBe("length");
    expect(data.usage?.completion_tokens).toBe(3);
    expect(() => JSON.parse(data.choices[0]!.message.content!)).toThrow();
  });

  it("reads content parts and large multi-byte bodies", async () => {
    const long = "é".repeat(300_000);
    const request = judgeRequest([...thanked.slice(0, 2), { role: "user", content: `${long} That's wrong` }]);
    const parts = { ...request, messages: [request.messages[0]!, { role: "user" as const, content: [{ type: "text" as const, text: request.messages[1]!.content }] }] };
    const data = await client(url).chat.completions.create(parts);
    expect(JSON.parse(data.choices[0]!.message.content!)).toMatchObject({ perceived_error: true });
    expect(data.usage!.prompt_tokens).toBeGreaterThan(long.length / 4);
  });

  it("answers 404 with Fireworks' body for an unknown model", async () => {
    const err = await client(url)
      .chat.completions.create(judgeRequest(thanked, { model: "accounts/x/models/nope" }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).error).toEqual({
      object: "error",
      type: "invalid_request_error",
      code: "NOT_FOUND",
      message: "Model not found, inaccessible, and/or not deployed",
    });
    expect(sim.stats().byStatus["404"]).toBe(1);
  });

  it("answers 401 for a wrong or missing key", async () => {
    const wrong = await client(url, { apiKey: "nope" })
      .chat.completions.create(judgeRequest(thanked))
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    const missing = await fetch(`${url}/chat/completions`, { method: "POST", body: JSON.stringify(judgeRequest(thanked)) });
    expect(missing.status).toBe(401);
    expect(sim.stats().byStatus["401"]).toBe(2);
  });

  it("answers 400 for a body that is not JSON or not a chat request", async () => {
    const post = (body: string) =>
      fetch(`${url}/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer test-key", "content-type": "application/json" },
        body,
      });
    const notJson = await post("{nope");
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { message: string } }).error.message).toMatch(/not valid JSON/);
    const noMessages = await post(JSON.stringify({ model: MODEL }));
    expect(noMessages.status).toBe(400);
    expect(((await noMessages.json()) as { error: { message: string } }).error.message).toMatch(/messages/);
  });
});

describe("content directives", () => {
  const withDirective = (directive: string) => [...thanked.slice(0, 2), { role: "user", content: `Thanks! ${directive}` }];

  it("[sim:malformed] answers prose instead of JSON, [sim:malformed:wrong-keys] JSON with wrong keys", async () => {
    const c = client(url);
    const prose = await c.chat.completions.create(judgeRequest(withDirective("[sim:malformed]")));
    expect(prose.choices[0]!.message.content).toMatch(/^Sure!/);
    const wrongKeys = await c.chat.completions.create(judgeRequest(withDirective("[sim:malformed:wrong-keys]")));
    expect(Object.keys(JSON.parse(wrongKeys.choices[0]!.message.content!))).not.toContain("perceived_error");
    expect(sim.stats().malformed).toBe(2);
  });

  it("[sim:fail-once:<id>] fails the first time only", async () => {
    const c = client(url);
    const request = judgeRequest(withDirective("[sim:fail-once:conv-7]"));
    await expect(c.chat.completions.create(request)).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    const retried = await c.chat.completions.create(request);
    expect(JSON.parse(retried.choices[0]!.message.content!).perceived_error).toBe(false);
    // The SDK's own retry gets through on the second attempt.
    const other = await client(url, { maxRetries: 1 }).chat.completions.create(
      judgeRequest(withDirective("[sim:fail-once:conv-8]")),
    );
    expect(other.choices).toHaveLength(1);
  });

  it("[sim:slow:<ms>] delays the answer", async () => {
    const started = performance.now();
    await client(url).chat.completions.create(judgeRequest(withDirective("[sim:slow:150]")));
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});
