/**
 * A verdict-flipping HTTP proxy in front of an OpenAI-compatible endpoint (the simulator), for
 * demos and tests that need models that disagree. The simulator's verdict does not depend on the
 * model id; this proxy makes it so: for a model with a rule, it flips the verdict of a fixed,
 * pseudo-random share of conversations (chosen by a hash of the judged messages and the rule's
 * salt), and passes everything else through unchanged. Deterministic: the same conversation and
 * rule always flip the same way, for the judge prompt and the arbiter prompt alike.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type FlipRule = { share: number; salt: string };

export const FLIPPED_REASON = {
  toError: "The user appears unsatisfied with the assistant's answer (simulated dissent).",
  toNoError: "The user does not signal any problem with the assistant's replies (simulated dissent).",
} as const;

/** Whether `rule` flips the verdict on the conversation made of `messages` (role + content only). */
export function flips(rule: FlipRule, messages: readonly { role: string; content: string }[]): boolean {
  const canonical = JSON.stringify(messages.map((m) => ({ role: m.role, content: m.content })));
  const digest = createHash("sha256").update(`${rule.salt}\u0000${canonical}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32 < rule.share;
}

/** The judged conversation inside a judge or arbiter request: the last user message is "header\n{json with messages}". */
export function judgedMessages(body: unknown): { role: string; content: string }[] | null {
  const messages = (body as { messages?: unknown })?.messages;
  if (!Array.isArray(messages)) return null;
  const user = [...messages].reverse().find((m) => (m as { role?: unknown })?.role === "user") as { content?: unknown } | undefined;
  if (typeof user?.content !== "string") return null;
  try {
    const data = JSON.parse(user.content.slice(user.content.indexOf("\n") + 1)) as { messages?: unknown };
    if (!Array.isArray(data.messages)) return null;
    return data.messages.filter(
      (m): m is { role: string; content: string } => typeof (m as { role?: unknown }).role === "string" && typeof (m as { content?: unknown }).content === "string",
    );
  } catch {
    return null;
  }
}

export type FlipProxy = { url: string; port: number; flipped: () => number; close: () => Promise<void> };

const PASS_HEADERS = /^(content-type|retry-after(-ms)?|x-ratelimit-.*|fireworks-.*)$/i;

/**
 * @example
 * const proxy = await startFlipProxy({ upstream: sim.url, rules: { "sim-judge-b": { share: 0.25, salt: "b" } } });
 * // point a judge at proxy.url with model "sim-judge-b": a quarter of its verdicts are flipped
 */
export async function startFlipProxy(options: { upstream: string; rules: Record<string, FlipRule>; port?: number; host?: string }): Promise<FlipProxy> {
  const upstream = new URL(options.upstream);
  let flipped = 0;
  const server: Server = createServer((req, res) => {
    handle(req).then(
      ({ status, headers, body }) => {
        res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
        res.end(body);
      },
      (err: unknown) => {
        res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: `flip proxy: ${(err as Error).message}` } }));
      },
    );
  });

  async function handle(req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const requestBody = Buffer.concat(chunks).toString("utf8");
    // Paths are relative to the upstream base: <proxy>/inference/v1/x -> <upstream>/inference/v1/x.
    const target = new URL(req.url ?? "/", upstream.origin);
    const response = await fetch(target, {
      method: req.method ?? "GET",
      headers: {
        "content-type": req.headers["content-type"] ?? "application/json",
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      },
      ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: requestBody }),
    });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, key) => {
      if (PASS_HEADERS.test(key)) headers[key] = value;
    });
    let body = await response.text();
    if (response.status === 200 && req.url?.endsWith("/chat/completions")) body = maybeFlip(requestBody, body);
    return { status: response.status, headers, body };
  }

  function maybeFlip(requestBody: string, responseBody: string): string {
    let request: { model?: unknown };
    let completion: { choices?: { message?: { content?: unknown } }[] };
    try {
      request = JSON.parse(requestBody);
      completion = JSON.parse(responseBody);
    } catch {
      return responseBody;
    }
    const rule = typeof request.model === "string" ? options.rules[request.model] : undefined;
    const messages = judgedMessages(request);
    const choice = completion.choices?.[0]?.message;
    if (!rule || !messages || !choice || typeof choice.content !== "string" || !flips(rule, messages)) return responseBody;
    let verdict: { perceived_error?: unknown };
    try {
      verdict = JSON.parse(choice.content);
    } catch {
      return responseBody; // a malformed answer stays malformed
    }
    if (typeof verdict.perceived_error !== "boolean") return responseBody;
    const pe = !verdict.perceived_error;
    choice.content = JSON.stringify({ perceived_error: pe, reason: pe ? FLIPPED_REASON.toError : FLIPPED_REASON.toNoError });
    flipped++;
    return JSON.stringify(completion);
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? "127.0.0.1"}:${port}${upstream.pathname.replace(/\/$/, "")}`,
    port,
    flipped: () => flipped,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
