import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readDirectives } from "./faults.ts";
import { createSimulator } from "./simulator.ts";
import { client, corrected, judgeRequest, OpenAI, thanked } from "./test-client.ts";

const sim = createSimulator({});
let url = "";

beforeAll(async () => {
  ({ url } = await sim.listen(0));
});
afterAll(() => sim.close());
afterEach(() => sim.reset());

const ask = (options: { timeout?: number; maxRetries?: number } = {}) =>
  client(url, options).chat.completions.create(judgeRequest(corrected));
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => expect.fail("expected the request to fail"),
    (err: unknown) => err,
  );

describe("injectNext", () => {
  it("plays an exact sequence, one fault per request, then answers normally", async () => {
    sim.injectNext([{ kind: "503" }, { kind: "500" }, { kind: "429", retryAfterSeconds: 7 }, { kind: "404" }]);
    const unavailable = await failure(ask());
    expect(unavailable).toBeInstanceOf(OpenAI.InternalServerError);
    expect((unavailable as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((await failure(ask())) as InstanceType<typeof OpenAI.APIError>).toMatchObject({ status: 500 });
    const limited = (await failure(ask())) as InstanceType<typeof OpenAI.RateLimitError>;
    // An explicit retryAfterSeconds is sent even though sendRetryAfter is off.
    expect(limited.headers.get("retry-after")).toBe("7");
    expect(await failure(ask())).toBeInstanceOf(OpenAI.NotFoundError);
    await expect(ask()).resolves.toBeDefined();
    expect(sim.stats().byStatus).toMatchObject({ "200": 1, "404": 1, "429": 1, "500": 1, "503": 1 });
  });

  it("lets the SDK's retry get past an injected 503", async () => {
    sim.injectNext([{ kind: "503" }]);
    const data = await ask({ maxRetries: 1 });
    expect(JSON.parse(data.choices[0]!.message.content!).perceived_error).toBe(true);
    expect(sim.stats().requests).toBe(2);
  });

  it("answers 200 with malformed content in each variant", async () => {
    sim.injectNext([{ kind: "malformed" }, { kind: "malformed", variant: "wrong-keys" }, { kind: "malformed", variant: "truncated" }]);
    const prose = await ask();
    expect(() => JSON.parse(prose.choices[0]!.message.content!)).toThrow();
    const wrongKeys = JSON.parse((await ask()).choices[0]!.message.content!);
    expect(wrongKeys).not.toHaveProperty("perceived_error");
    const truncated = await ask();
    expect(truncated.choices[0]!.finish_reason).toBe("length");
    expect(() => JSON.parse(truncated.choices[0]!.message.content!)).toThrow();
    expect(sim.stats().malformed).toBe(3);
  });

  it("hangs on timeout until the client gives up", async () => {
    sim.injectNext([{ kind: "timeout" }]);
    await expect(ask({ timeout: 200 })).rejects.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await expect.poll(() => sim.stats().timeouts).toBe(1);
    expect(sim.stats()).toMatchObject({ inFlight: 0, byStatus: { timeout: 1 } });
    await expect(ask()).resolves.toBeDefined();
  });

  it("rejects an unknown fault kind", () => {
    expect(() => sim.injectNext([{ kind: "418" as "404" }])).toThrow();
  });
});

describe("fault rates", () => {
  it("draws faults with the configured probabilities, reproducibly with a seed", async () => {
    const run = async () => {
      sim.reset();
      sim.configure({ seed: 42, faults: { rate500: 0.25, rate503: 0.25 } });
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) {
        statuses.push(await ask().then(() => 200, (err: InstanceType<typeof OpenAI.APIError>) => err.status ?? 0));
      }
      return statuses;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    const failures = first.filter((s) => s !== 200).length;
    expect(failures).toBeGreaterThan(8);
    expect(failures).toBeLessThan(32);
    expect(new Set(first)).toEqual(new Set([200, 500, 503]));
  });

  it("rejects rates that add up to more than 1", () => {
    expect(() => sim.configure({ faults: { rate429: 0.6, rate503: 0.6 } })).toThrow(/at most 1/);
  });

  it("rateMalformed always answers malformed output at 1", async () => {
    sim.configure({ faults: { rateMalformed: 1 } });
    const data = await client(url).chat.completions.create(judgeRequest(thanked));
    expect(() => JSON.parse(data.choices[0]!.message.content!)).toThrow();
  });
});

describe("readDirectives", () => {
  it("finds directives anywhere in the text", () => {
    expect(readDirectives(["sys", 'x\n{"messages":[{"content":"[sim:slow:20] [sim:fail-once:a-1] [sim:slow:5]"}]}'])).toEqual({
      failOnceIds: ["a-1"],
      slowMs: 25,
    });
    expect(readDirectives(["[sim:malformed:truncated]"]).malformed).toBe("truncated");
  });
});
