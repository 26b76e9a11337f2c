import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

export type ParsedArgs = { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };

/** parseArgs with a --help flag and errors that read as usage mistakes, not crashes. Null after --help. */
export function parseCommandArgs(argv: string[], options: NonNullable<ParseArgsConfig["options"]>, help: string): ParsedArgs | null {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean" } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)}\n\n${help}`);
  }
  if (parsed.values.help) {
    process.stdout.write(help);
    return null;
  }
  return parsed;
}

export function stringArg(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === "string" ? v : undefined;
}

export function requiredArg(args: ParsedArgs, name: string, help: string): string {
  const v = stringArg(args, name);
  if (v === undefined) throw new UsageError(`--${name} is required\n\n${help}`);
  return v;
}
