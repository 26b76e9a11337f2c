import { describe, expect, it } from "vitest";
import type { RequestEvent } from "./options.ts";
import { createSimulator } from "./simulator.ts";
import { client, judgeRequest, OpenAI, thanked } from "./test-client.ts";

describe("simulator lifecycle", () => {
  it("close() releases requests hanging on a timeout fault", async () => {
    const sim = createSimulator({});
    const { url } = await sim.listen(0);
    sim.injectNext([{ kind: "timeout" }]);
    const hanging = client(url, { timeout: 60_000 }).chat.completions.create(judgeRequest(thanked));
    await expect.poll(() => sim.stats().inFlight).toBe(1);
    await sim.close();
    await expect(hanging).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    expect(sim.stats()).toMatchObject({ inFlight: 0, timeouts: 1 });
  });

  it("applies latencyMs, reports each request to onRequest, and counts clients that leave early", async () => {
    const events: RequestEvent[] = [];
    const sim = createSimulator({ latencyMs: 120, onRequest: (e) => events.push(e) });
    const { url } = await sim.listen(0);
    try {
      const started = performance.now();
      await client(url).chat.completions.create(judgeRequest(thanked));
      expect(performance.now() - started).toBeGreaterThanOrEqual(110);
      expect(events[0]).toMatchObject({ method: "POST", path: "/inference/v1/chat/completions", status: 200 });

      await expect(client(url, { timeout: 30 }).chat.completions.create(judgeRequest(thanked))).rejects.toBeInstanceOf(
        OpenAI.APIConnectionTimeoutError,
      );
      // 499 as nginx logs it: the client hung up before the answer.
      await expect.poll(() => sim.stats().byStatus["499"]).toBe(1);
      expect(sim.stats().inFlight).toBe(0);
    } finally {
      await sim.close();
    }
  });

  it("refuses to listen twice and can listen again after close", async () => {
    const sim = createSimulator({});
    const first = await sim.listen(0);
    await expect(sim.listen(0)).rejects.toThrow(/already listening/);
    await sim.close();
    const second = await sim.listen(0);
    await expect(client(second.url).chat.completions.create(judgeRequest(thanked))).resolves.toBeDefined();
    await sim.close();
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/inference\/v1$/);
  });

  it("rejects bad options at creation", () => {
    expect(() => createSimulator({ rpm: 0 })).toThrow();
    expect(() => createSimulator({ latencyMs: -1 })).toThrow();
  });
});
