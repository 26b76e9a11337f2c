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

/**
 * The body as text. Plain listeners rather than `for await`, which costs noticeably more per request;
 * they are not removed afterwards, since a settled promise ignores later calls. Most bodies arrive in
 * one chunk, which needs no concatenation.
 */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // As leaving a `for await` early did: the rest of the body is not worth reading.
        req.destroy();
        reject(new HttpError(413, "PAYLOAD_TOO_LARGE", `request body exceeds ${MAX_BODY_BYTES} bytes`));
      } else chunks.push(chunk);
    });
    let ended = false;
    req.on("end", () => {
      ended = true;
      resolve((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString("utf8"));
    });
    // The client hung up mid-body: 'close' before 'end', maybe with an 'error' first. Every request
    // closes, so the Error (whose stack trace is costly) is made only when it is needed.
    req.on("error", reject);
    req.on("close", () => {
      if (!ended) reject(new Error("the request closed before its body ended"));
    });
  });
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "INVALID_ARGUMENT", `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Sends `body` as JSON with `headers`, to which it adds content-type and content-length. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // The client may have given up (timeouts, aborted retries) while we waited out the latency.
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(body);
  // Added in place, not spread into a new object: spreading header-like keys costs ~1 µs in V8.
  headers["content-type"] = "application/json";
  headers["content-length"] = String(Buffer.byteLength(payload));
  res.writeHead(status, headers);
  res.end(payload);
}

export function sendError(res: ServerResponse, err: HttpError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, errorBody(err.type, err.code, err.message), headers);
}

/**
 * Whether a chat request was abandoned: its client hung up before the answer, or the simulator closed.
 * Creating an AbortSignal costs ~5 µs on Node 20 (AbortSignal.any() ~15 µs), more than the rest of an
 * instant answer, so a signal is made only for requests that wait (latency, a hanging fault); the
 * others only read `aborted`.
 */
export class Hangup {
  aborted = false;
  reason: unknown;
  private controller: AbortController | undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /** Aborts with the request, and is already aborted if the request was. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }
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
