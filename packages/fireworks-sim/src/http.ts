import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";

/** The judge's requests are a few hundred KB at most; a cap keeps a runaway client from exhausting memory. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type = "invalid_request_error",
  ) {
    super(message);
  }
}

/** The error envelope Fireworks (like OpenAI) uses; the `openai` SDK reads `error.message` from it. */
export function errorBody(type: string, code: string, message: string) {
  return { error: { object: "error", type, code, message } };
}

/** "messages.0.role: expected string; model: required" — one line a client can act on. */
export function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "PAYLOAD_TOO_LARGE", `request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "INVALID_ARGUMENT", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // The client may have given up (timeouts, aborted retries) while we waited out the latency.
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(payload)),
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, err: HttpError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, errorBody(err.type, err.code, err.message), headers);
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts (the client left or the server closes). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return signal.aborted ? Promise.reject(signal.reason) : Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}
