import { UnrecoverableError } from "bullmq";
import { describe, expect, it } from "vitest";
import { describeFailure, failure, terminal } from "./failures.ts";

describe("describeFailure", () => {
  it("reads the code, reason and raw output the processor encoded", () => {
    const err = failure("invalid_model_output", "model output is not JSON", "{nope");
    expect(describeFailure(err.message, 5)).toEqual({ code: "invalid_model_output", reason: "after 5 attempts: model output is not JSON", rawOutput: "{nope" });
  });

  it("keeps terminal failures unretried and named", () => {
    const err = terminal("request_too_large", "needs 90000 tokens, the window holds 60000");
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(describeFailure(err.message, 1)).toEqual({ code: "request_too_large", reason: "needs 90000 tokens, the window holds 60000" });
  });

  it("names a job that lost its workers to kill -9 as worker_lost", () => {
    expect(describeFailure("job stalled more than allowable limit", 1).code).toBe("worker_lost");
  });

  it("falls back to judge_failed with BullMQ's own text", () => {
    expect(describeFailure("Connection is closed.", 3)).toEqual({ code: "judge_failed", reason: "after 3 attempts: Connection is closed." });
    expect(describeFailure(undefined, 0).code).toBe("judge_failed");
  });
});
