import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJudgeClient, JudgeCallError, SESSION_HEADER } from "./client.ts";
import { createHttpFetch } from "./http.ts";
import { InvalidOutputError } from "./verdict.ts";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let handler: Handler = (_req, _body, res) => res.end();
let server: Server;
let baseURL = "";
const seen: { headers: IncomingMessage["headers"]; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/inference/v1`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const completion = (content: string) =>
  JSON.stringify({
    id: "c1",
    object: "chat.completion",
    created: 1,
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, prompt_tokens_details: { cached_tokens: 64 } },
  });

const client = (timeoutMs = 5_000) =>
  createJudgeClient({ baseURL, apiKey: "secret-key", model: "m", timeoutMs, maxTokens: 64, responseFormat: "json_schema" });

describe("createHttpFetch under the openai SDK", () => {
  it("sends the whole request and reads status, headers and body", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/json", "x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "200000" });
      res.end(completion('{"perceived_error": true, "reason": "The user corrects the date."}'));
    };
    const call = await client().judge({ messages: [{ role: "user", content: "héllo ✓" }, { role: "assistant", content: "hi" }] });
    expect(call.verdict).toEqual({ perceived_error: true, reason: "The user corrects the date." });
    expect(call.usage).toEqual({ prompt_tokens: 100, cached_prompt_tokens: 64, completion_tokens: 20, total_tokens: 120 });
    expect(call.headers.get("x-ratelimit-limit-tokens")).toBe("200000");
    const last = seen.at(-1);
    expect(last?.headers.authorization).toBe("Bearer secret-key");
    expect(Number(last?.headers["content-length"])).toBe(Buffer.byteLength(last?.body ?? ""));
    expect(JSON.parse(last?.body ?? "{}").messages[1].content).toContain("héllo ✓");
  });

  it("sends a stable, opaque session id per conversation for prompt-cache affinity", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(completion('{"perceived_error": false, "reason": "No sign of a problem."}'));
    };
    const messages = [{ role: "user" as const, content: "x" }];
    await client().judge({ id: "conv-42", messages });
    await client().judge({ id: "conv-42", messages: [...messages, { role: "assistant" as const, content: "y" }] });
    await client().judge({ messages });
    const ids = seen.slice(-3).map((r) => r.headers[SESSION_HEADER]);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[0]).not.toContain("conv-42");
    expect(ids[2]).toBeUndefined();
  });

  it("throws malformed output as InvalidOutputError carrying what the provider billed", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/json", "x-ratelimit-limit-tokens-generated": "600" });
      res.end(completion("Sure! The user seems upset."));
    };
    const err = await client().judge({ messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOutputError);
    const invalid = err as InvalidOutputError;
    expect(invalid.raw).toBe("Sure! The user seems upset.");
    expect(invalid.usage).toEqual({ prompt_tokens: 100, cached_prompt_tokens: 64, completion_tokens: 20, total_tokens: 120 });
    expect(invalid.latencyMs).toBeGreaterThan(0);
    expect(invalid.headers?.get("x-ratelimit-limit-tokens-generated")).toBe("600");
  });

  it("turns a 429 with retry-after into a rate-limit error the fleet can pause on", async () => {
    handler = (_req, _body, res) => {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "7" });
      res.end(JSON.stringify({ error: { message: "slow down" } }));
    };
    const err = await client().judge({ messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JudgeCallError);
    expect(err).toMatchObject({ kind: "rate_limited", status: 429, retryAfterMs: 7000 });
  });

  it("times out a hanging endpoint as a transient error", async () => {
    handler = () => undefined; // never answers
    const err = await client(200).judge({ messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "transient" });
    expect((err as Error).message).toMatch(/^timeout/);
  });

  it("reports a refused connection as a transient error", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const c = createJudgeClient({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "k", model: "m", timeoutMs: 2_000, maxTokens: 8, responseFormat: "json_object" });
    const err = await c.judge({ messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: "transient" });
    expect((err as Error).message).toMatch(/^connection error/);
  });

  it("answers 204 without a body and refuses oversized bodies", async () => {
    const f = createHttpFetch({ maxResponseBytes: 1024 });
    handler = (_req, _body, res) => {
      res.writeHead(204);
      res.end();
    };
    const empty = await f(`${baseURL}/x`);
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe("");
    handler = (_req, _body, res) => res.end("x".repeat(4096));
    await expect(f(`${baseURL}/x`)).rejects.toThrow(/exceeds 1024 bytes/);
    f.close();
  });
});

describe("createHttpFetch responses", () => {
  it("are standard Responses whose body reads as text, JSON or bytes, with the request URL", async () => {
    const f = createHttpFetch();
    handler = (_req, _body, res) => {
      res.writeHead(201, { "content-type": "application/json", "x-a": "1" });
      res.end('{"ok":"✓"}');
    };
    const res = await f(`${baseURL}/thing?q=1`, { method: "POST", body: "{}" });
    expect(res).toBeInstanceOf(Response);
    expect([res.status, res.ok, res.headers.get("x-a"), res.url]).toEqual([201, true, "1", `${baseURL}/thing?q=1`]);
    expect(await res.json()).toEqual({ ok: "✓" });
    expect(await res.text()).toBe('{"ok":"✓"}');
    expect(new TextDecoder().decode(await res.arrayBuffer())).toBe('{"ok":"✓"}');
    handler = (_req, _body, r) => r.end("not json");
    await expect((await f(`${baseURL}/x`)).json()).rejects.toThrow(SyntaxError);
    f.close();
  });
});
