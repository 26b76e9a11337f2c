import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createSimulator } from "./simulator.ts";
import type { SimStats } from "./stats.ts";
import { client, judgeRequest, MODEL, type OpenAI, thanked } from "./test-client.ts";

const sim = createSimulator({});
let url = "";
let root = "";

beforeAll(async () => {
  ({ url } = await sim.listen(0));
  root = url.replace(/\/inference\/v1$/, "");
});
afterAll(() => sim.close());
afterEach(() => sim.reset());

const post = (path: string, body: unknown) =>
  fetch(`${root}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const stats = async () => (await (await fetch(`${root}/_sim/stats`)).json()) as SimStats;
const ask = () => client(url).chat.completions.create(judgeRequest(thanked));

describe("/_sim admin API", () => {
  it("GET /_sim/stats counts requests, statuses and tokens per model", async () => {
    await ask();
    const s = await stats();
    expect(s).toMatchObject({ requests: 1, inFlight: 0, byStatus: { "200": 1, "429": 0 } });
    expect(s.tokens.prompt).toBeGreaterThan(0);
    expect(s.byModel[MODEL]).toMatchObject({ requests: 1, byStatus: { "200": 1 } });
    expect(s.byModel[MODEL]!.tokens).toEqual(s.tokens);
  });

  it("POST /_sim/configure changes only the fields sent; null removes a limit", async () => {
    expect((await post("/_sim/configure", { rpm: 1, sendRetryAfter: true })).status).toBe(200);
    await ask();
    const err = (await ask().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.RateLimitError>;
    expect(err.status).toBe(429);
    expect(err.headers.get("retry-after")).toBe("60");
    expect((await post("/_sim/configure", { rpm: null })).status).toBe(200);
    await expect(ask()).resolves.toBeDefined();
  });

  it("POST /_sim/configure answers 400 with a clear message on bad input", async () => {
    for (const [body, pattern] of [
      [{ rpm: -1 }, /rpm/],
      [{ rpmm: 5 }, /rpmm/],
      [{ faults: { rate503: 2 } }, /faults\.rate503/],
      [[1, 2], /options/],
    ] as const) {
      const res = await post("/_sim/configure", body);
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { message: string } };
      expect(error.message).toMatch(pattern);
    }
    const notJson = await fetch(`${root}/_sim/configure`, { method: "POST", body: "{" });
    expect(notJson.status).toBe(400);
  });

  it("POST /_sim/inject queues faults (a list or {faults}) and validates them", async () => {
    expect(await (await post("/_sim/inject", [{ kind: "503" }])).json()).toEqual({ ok: true, injected: 1 });
    expect((await post("/_sim/inject", { faults: [{ kind: "500" }] })).status).toBe(200);
    await expect(ask()).rejects.toMatchObject({ status: 503 });
    await expect(ask()).rejects.toMatchObject({ status: 500 });
    const bad = await post("/_sim/inject", [{ kind: "teapot" }]);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/kind/);
  });

  it("POST /_sim/reset restores creation options and zeroes the counters", async () => {
    await post("/_sim/configure", { rpm: 1 });
    await post("/_sim/inject", [{ kind: "500" }]);
    await ask().catch(() => undefined);
    expect((await post("/_sim/reset", {})).status).toBe(200);
    expect((await stats()).requests).toBe(0);
    await ask();
    await expect(ask()).resolves.toBeDefined();
  });

  it("answers 404 for unknown routes and 405 for a wrong method", async () => {
    expect((await fetch(`${root}/_sim/nope`)).status).toBe(404);
    expect((await fetch(`${root}/_sim/reset`)).status).toBe(405);
    expect((await fetch(`${url}/chat/completions`)).status).toBe(405);
    expect((await fetch(`${root}/elsewhere`)).status).toBe(404);
  });
});
