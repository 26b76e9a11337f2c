/**
 * A `fetch` for the `openai` SDK built on node:http(s) with a keep-alive agent.
 *
 * Why not the platform fetch: the judge makes one small, non-streaming request per conversation,
 * and on a busy worker the WHATWG fetch machinery (web streams for the request and response
 * bodies, per-request dispatcher bookkeeping) cost about a third more CPU per call than the
 * whole rest of the SDK call (measured with bench/overhead). This sends the body in one write
 * and buffers the answer, which is all the SDK needs for a non-streaming call: it reads
 * `status`, `headers` and `text()`/`json()` of a standard `Response`.
 */
import http from "node:http";
import https from "node:https";

export type HttpFetchOptions = {
  /** Sockets kept open per host; more requests than this queue in the agent. */
  maxSockets?: number;
  /** Cap on a response body, so a misbehaving endpoint cannot exhaust memory. */
  maxResponseBytes?: number;
};

/** Responses that must not carry a body (the Response constructor rejects one). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * A standard Response whose body is already in memory: read without the web-stream machinery a
 * streamed body goes through (a measurable share of a small call's CPU). It can be read more than
 * once, unlike a streamed one; `body` is null.
 */
function bufferedResponse(body: Buffer, url: string, init: ResponseInit): Response {
  const response = new Response(null, init);
  const text = () => body.toString("utf8");
  Object.defineProperties(response, {
    url: { value: url },
    text: { value: () => Promise.resolve(text()) },
    json: { value: () => new Promise((resolve) => resolve(JSON.parse(text()))) },
    arrayBuffer: { value: () => Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) },
  });
  return response;
}

export function createHttpFetch(options: HttpFetchOptions = {}): typeof fetch & { close(): void } {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: "lifo" as const };
  const agents = { "http:": new http.Agent(agentOptions), "https:": new https.Agent(agentOptions) };
  const maxBytes = options.maxResponseBytes ?? 16 * 1024 * 1024;

  async function httpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    if (input instanceof Request) throw new TypeError("httpFetch takes a URL and init, not a Request");
    const url = typeof input === "string" ? new URL(input) : input;
    const protocol = url.protocol;
    if (protocol !== "http:" && protocol !== "https:") throw new TypeError(`unsupported protocol ${protocol}`);
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array)) {
      throw new TypeError("httpFetch sends string or byte bodies only");
    }
    const headers: Record<string, string> = {};
    (init.headers instanceof Headers ? init.headers : new Headers(init.headers)).forEach((value, name) => {
      headers[name] = value;
    });
    if (body !== undefined && body !== null) headers["content-length"] = String(Buffer.byteLength(body));
    init.signal?.throwIfAborted();

    return new Promise<Response>((resolve, reject) => {
      const transport = protocol === "https:" ? https : http;
      const req = transport.request(
        url,
        { method: init.method ?? "GET", headers, agent: agents[protocol], ...(init.signal ? { signal: init.signal } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              res.destroy(new Error(`response body exceeds ${maxBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.once("error", reject);
          res.once("end", () => {
            const status = res.statusCode ?? 0;
            const responseHeaders = new Headers();
            const raw = res.rawHeaders;
            for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i] as string, raw[i + 1] as string);
            try {
              const body = NULL_BODY_STATUS.has(status) ? Buffer.alloc(0) : Buffer.concat(chunks, size);
              resolve(bufferedResponse(body, url.href, { status, statusText: res.statusMessage ?? "", headers: responseHeaders }));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.once("error", reject);
      req.end(body ?? undefined);
    });
  }

  return Object.assign(httpFetch as typeof fetch, {
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  });
}
