#!/usr/bin/env node
// The `tracesift` binary (`pnpm exec tracesift`, `npx tracesift` in this workspace): the CLI's
// TypeScript sources run through tsx's loader in this same process, so signals reach the command.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= "1";
const { register } = await import("tsx/esm/api");
register();
await import("../src/main.ts");
