import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    env: { KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    projects: [
      {
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "test/**/*.test.ts", "bench/**/*.test.ts"],
          exclude: ["**/*.int.test.ts", "**/node_modules/**"],
          // A few unit tests shell out (docker-compose config, promtool): slow to start on a busy CI box.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          // Real Kafka and Redis: files share one broker on a 2-core box, so run them one at a time.
          include: ["test/**/*.int.test.ts", "packages/*/src/**/*.int.test.ts", "services/*/src/**/*.int.test.ts"],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
