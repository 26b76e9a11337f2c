/**
 * The `tracesift` command line. Each command lives in its own module and is loaded on demand, so
 * `tracesift normalize` does not pay for connecting to Kafka.
 */
import { createLogger } from "@tracesift/runtime";

export type CommandContext = { argv: string[]; logger: ReturnType<typeof createLogger> };
export type Command = { summary: string; run: (ctx: CommandContext) => Promise<number> };

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import("./demo.ts")).command,
  eval: async () => (await import("./eval.ts")).command,
  label: async () => (await import("./label.ts")).command,
  review: async () => (await import("./review.ts")).command,
  "export-sft": async () => (await import("./export-sft.ts")).command,
  normalize: async () => (await import("./normalize.ts")).command,
  replay: async () => (await import("./replay.ts")).command,
  redrive: async () => (await import("./redrive.ts")).command,
  recover: async () => (await import("./recover.ts")).command,
  canary: async () => (await import("./canary.ts")).command,
};

function usage(): string {
  return `tracesift <command> [options]\n\nCommands:\n${Object.keys(COMMANDS)
    .map((c) => `  ${c}`)
    .join("\n")}\n\nRun "tracesift <command> --help" for a command's options.\n`;
}

const [name, ...argv] = process.argv.slice(2);
const load = name ? COMMANDS[name] : undefined;
if (!load) {
  process.stderr.write(usage());
  process.exitCode = name && name !== "--help" ? 2 : 0;
} else {
  const logger = createLogger({ service: `cli-${name}`, level: process.env.LOG_LEVEL ?? "info" });
  try {
    process.exitCode = await (await load()).run({ argv, logger });
  } catch (err) {
    // Expected failures (bad arguments, bad config) print one line; anything else keeps its stack.
    process.stderr.write(`tracesift ${name}: ${err instanceof Error && err.name === "UsageError" ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
