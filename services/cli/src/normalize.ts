import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { FORMAT_NAMES, FormatName, isJudgeable, mergeFragments, NormalizeError, normalizeEvent, type TraceFragment } from "@tracesift/normalize";
import type { Command } from "./main.ts";
import { parseCommandArgs, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift normalize [file] [--format <name>] [--json]

Reads trace events (one JSON event per line, or one JSON document per file; stdin when no file
is given) in any supported format, assembles them into conversations exactly as ingest does, and
prints each conversation as the judge would read it. Use it to check your own data before
streaming it.

  --format <name>   read every event as this format (${FORMAT_NAMES.join(", ")}); default: detect
  --json            print conversations as JSON lines instead of text
`;

export const command: Command = {
  summary: "show the conversations Tracesift assembles from a file of trace events",
  run: async ({ argv }) => {
    const args = parseCommandArgs(argv, { format: { type: "string" }, json: { type: "boolean" } }, HELP);
    if (!args) return 0;
    const formatArg = stringArg(args, "format");
    const format = formatArg === undefined ? undefined : FormatName.safeParse(formatArg);
    if (format && !format.success) throw new UsageError(`unknown format "${formatArg}"\n\n${HELP}`);
    const file = args.positionals[0];
    const text = await readAll(file);
    const events = splitEvents(text);

    const byKey = new Map<string, TraceFragment[]>();
    let failures = 0;
    for (const [i, raw] of events.entries()) {
      try {
        for (const f of normalizeEvent(raw, format?.success ? { format: format.data } : {})) {
          byKey.set(f.conversation_key, [...(byKey.get(f.conversation_key) ?? []), f]);
        }
      } catch (err) {
        failures++;
        const reason = err instanceof NormalizeError ? `${err.code}: ${err.message}` : String(err);
        process.stderr.write(`event ${i + 1}: would be dead-lettered (${reason})\n`);
      }
    }
    for (const fragments of byKey.values()) {
      const c = mergeFragments(fragments);
      if (args.values.json) {
        process.stdout.write(`${JSON.stringify(c)}\n`);
        continue;
      }
      const status = isJudgeable(c) ? "judgeable" : "not judgeable (no user message after an assistant message)";
      process.stdout.write(`\n=== ${c.id}  [${c.source}, ${fragments.length} fragment(s), ${c.messages.length} messages, ${status}]\n`);
      if (Object.keys(c.metadata).length > 0) process.stdout.write(`    metadata: ${JSON.stringify(c.metadata)}\n`);
      for (const m of c.messages) process.stdout.write(`${m.role.padStart(9)}: ${m.content.replace(/\n/g, "\n           ")}\n`);
    }
    process.stderr.write(`\n${events.length} event(s), ${byKey.size} conversation(s), ${failures} unreadable\n`);
    return failures > 0 ? 1 : 0;
  },
};

async function readAll(file: string | undefined): Promise<string> {
  const input = file ? createReadStream(file, "utf8") : process.stdin;
  const chunks: string[] = [];
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) chunks.push(line);
  return chunks.join("\n");
}

/** A whole-file JSON document (a fixture, an export) or JSON Lines. */
function splitEvents(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  try {
    JSON.parse(trimmed);
    return [trimmed];
  } catch {
    return trimmed.split("\n").filter((l) => l.trim() !== "");
  }
}
