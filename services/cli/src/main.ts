/**
 * The `tracesift` command line. Each command lives in its own module and is loaded on demand, so
 * `tracesift normalize` does not pay for connecting to Kafka.
 */
import { createLogger } from "@tracesift/runtime";
import { describeFailure } from "./connect.ts";

export type CommandContext = { argv: string[]; logger: ReturnType<typeof createLogger> };
export type Command = { summary: string; run: (ctx: CommandContext) => Promise<number> };

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import("./demo.ts")).command,
  fleet: async () => (await import("./fleet-command.ts")).command,
  eval: async () => (await import("./eval.ts")).command,
  label: async () => (await import("./label.ts")).command,
  review: async () => (await import("./review.ts")).command,
  "export-sft": async () => (await import("./export-sft.ts")).command,
  normalize: async () => (await import("./normalize.ts")).command,
  replay: async () => (await import("./replay.ts")).command,
  redrive: async () => (await import("./redrive.ts")).command,
  recover: async () => (await import("./recover.ts")).command,
  finetune: async () => (await import("./finetune.ts")).command,
  judges: async () => (await import("./judges.ts")).command,
  promote: async () => (await import("./judges.ts")).promote,
  rollback: async () => (await import("./judges.ts")).rollback,
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
  const asked = name === undefined || name === "--help" || name === "-h" || name === "help";
  if (!asked) process.stderr.write(`tracesift: unknown command "${name}"\n\n`);
  (asked ? process.stdout : process.stderr).write(usage());
  process.exitCode = asked ? 0 : 2;
} else {
  const logger = createLogger({ service: `cli-${name}`, level: process.env.LOG_LEVEL ?? "info" });
  try {
    process.exitCode = await (await load()).run({ argv, logger });
  } catch (err) {
    // One line, never a client's stack trace: what failed and where. LOG_LEVEL=debug keeps the stack.
    process.stderr.write(`tracesift ${name}: ${describeFailure(err, process.env)}\n`);
    if (process.env.LOG_LEVEL === "debug" && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    const code = err instanceof Error && "exitCode" in err && typeof err.exitCode === "number" ? err.exitCode : err instanceof Error && err.name === "UsageError" ? 2 : 1;
    // Clients still retrying in the background (a dead broker, a dead Redis) must not hold the exit.
    process.exit(code);
  }
}
