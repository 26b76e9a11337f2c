import { describe, expect, it } from "vitest";
import { CliError, describeFailure, redactUrl, withTimeout } from "./connect.ts";

const env = { KAFKA_BROKERS: "10.1.2.3:9092", REDIS_URL: "redis://:hunter2@127.0.0.1:6380/0" };

function kafkaError(name: string, message: string, extra: object = {}): Error {
  return Object.assign(new Error(message), { name }, extra);
}

describe("describeFailure", () => {
  it("names the broker for a kafkajs connection error, from the innermost cause, on one line", () => {
    const inner = kafkaError("KafkaJSConnectionError", "Connection error: connect ECONNREFUSED 10.1.2.3:9092");
    const outer = kafkaError("KafkaJSNumberOfRetriesExceeded", "Connection error: connect ECONNREFUSED 10.1.2.3:9092\n    at stack", { cause: inner });
    expect(describeFailure(outer, env)).toBe("cannot reach Kafka at 10.1.2.3:9092 (Connection error: connect ECONNREFUSED 10.1.2.3:9092)");
  });

  it("says a topic is missing for UNKNOWN_TOPIC_OR_PARTITION", () => {
    const err = kafkaError("KafkaJSProtocolError", "This server does not host this topic-partition", { type: "UNKNOWN_TOPIC_OR_PARTITION" });
    expect(describeFailure(err, env)).toBe("a topic was not found on Kafka at 10.1.2.3:9092 (This server does not host this topic-partition)");
  });

  it("names Redis without its password when the connection is lost mid-run", () => {
    const line = describeFailure(new Error("Connection is closed."), env);
    expect(line).toBe("lost Redis at redis://:***@127.0.0.1:6380/0 (Connection is closed.)");
    expect(line).not.toContain("hunter2");
  });

  it("names Redis, not Kafka, when a Redis failure inside a consumer's batch arrives wrapped by kafkajs", () => {
    const wrapped = kafkaError("KafkaJSNumberOfRetriesExceeded", "Connection is closed.", { cause: new Error("Connection is closed.") });
    expect(describeFailure(wrapped, env)).toBe("lost Redis at redis://:***@127.0.0.1:6380/0 (Connection is closed.)");
    const bug = kafkaError("KafkaJSNumberOfRetriesExceeded", "boom", { cause: new TypeError("x is not a function") });
    expect(describeFailure(bug, env)).toBe("x is not a function");
  });

  it("keeps a CliError's and a configuration error's own text, and only the first line of anything else", () => {
    expect(describeFailure(new CliError("port 9465 (ingest) is in use"), env)).toBe("port 9465 (ingest) is in use");
    const config = Object.assign(new Error("invalid configuration:\n  JUDGE_RPM: expected number"), { name: "ConfigError" });
    expect(describeFailure(config, env)).toBe("invalid configuration:\n  JUDGE_RPM: expected number");
    expect(describeFailure(new TypeError("x is not a function\n    at y (z.ts:1:1)"), env)).toBe("x is not a function");
  });
});

describe("redactUrl and withTimeout", () => {
  it("masks only the password", () => {
    expect(redactUrl("redis://user:secret@host:6379")).toBe("redis://user:***@host:6379");
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
  });

  it("rejects with the given CliError when the promise does not settle in time", async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, () => new CliError("no answer"))).rejects.toThrow("no answer");
    await expect(withTimeout(Promise.resolve(7), 1_000, () => new CliError("late"))).resolves.toBe(7);
  });
});
