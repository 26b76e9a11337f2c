import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import {
  explainEvent,
  FORMAT_NAMES,
  FormatName,
  isJudgeable,
  mergeFragments,
  messageSources,
  NormalizeError,
  parseJsonExact,
  type SpanNote,
  type TraceFragment,
} from "@tracesift/normalize";
import type { Command } from "./main.ts";
import { parseCommandArgs, stringArg, UsageError } from "./usage.ts";

const HELP = `tracesift normalize [file] [--format <name>] [--json] [--explain] [--sub-agents skip|separate]

Reads trace events (one JSON event per line, or one JSON document per file; stdin when no file
is given) in any supported format, assembles them into conversations exactly as ingest does, and
prints each conversation as the judge would read it. Use it to check your own data before
streaming it. Lines of the eval dataset ({"event": <event>, "label": ...}) are read as their event.

  --format <name>   read every event as this format (${FORMAT_NAMES.join(", ")}); default: detect
  --json            print conversations as JSON lines instead of text
  --explain         for each message, the span/run/observation it came from; for each span
                    dropped, why
  --sub-agents <m>  model calls of nested agents: skip (default) or separate (own conversations)
`;

export const command: Command = {
  summary: "show the conversations Tracesift assembles from a file of trace events",
  run: async ({ argv }) => {
    const args = parseCommandArgs(
      argv,
      { format: { type: "string" }, json: { type: "boolean" }, explain: { type: "boolean" }, "sub-agents": { type: "string" } },
      HELP,
    );
    if (!args) return 0;
    const formatArg = stringArg(args, "format");
    const format = formatArg === undefined ? undefined : FormatName.safeParse(formatArg);
    if (format && !format.success) throw new UsageError(`unknown format "${formatArg}"\n\n${HELP}`);
    const subAgents = stringArg(args, "sub-agents") ?? "skip";
    if (subAgents !== "skip" && subAgents !== "separate") throw new UsageError(`--sub-agents must be skip or separate\n\n${HELP}`);
    const explain = args.values.explain === true;
    const file = args.positionals[0];
    const text = await readAll(file);
    const events = splitEvents(text);

    const byKey = new Map<string, TraceFragment[]>();
    const notes: { event: number; note: SpanNote }[] = [];
    let failures = 0;
    for (const [i, raw] of events.entries()) {
      try {
        const { fragments, spans } = explainEvent(evalEvent(raw), { subAgents, ...(format?.success ? { format: format.data } : {}) });
        for (const note of spans) notes.push({ event: i + 1, note });
        for (const f of fragments) {
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
      const sources = explain ? messageSources(fragments, c) : [];
      for (const [i, m] of c.messages.entries()) {
        const from = explain ? `  ← ${nameOf(sources[i], notes)}` : "";
        process.stdout.write(`${m.role.padStart(9)}: ${m.content.replace(/\n/g, "\n           ")}${from}\n`);
      }
    }
    if (explain) {
      const dropped = notes.filter((n) => !n.note.kept || n.note.reason !== undefined);
      process.stdout.write(`\n=== spans not in the conversations above, or in a separate one (${dropped.length})\n`);
      for (const { event, note } of dropped) {
        const what = note.name !== undefined ? `${note.name} (${note.id})` : note.id;
        process.stdout.write(`  event ${event}: ${what}: ${note.kept ? "kept" : "dropped"}: ${note.reason ?? ""}\n`);
      }
    }
    process.stderr.write(`\n${events.length} event(s), ${byKey.size} conversation(s), ${failures} unreadable\n`);
    return failures > 0 ? 1 : 0;
  },
};

function nameOf(id: string | undefined, notes: { note: SpanNote }[]): string {
  const n = notes.find((x) => x.note.id === id)?.note;
  return n?.name !== undefined ? `${n.name} (${id})` : (id ?? "?");
}

/** Parsed exactly (big integer ids keep their digits) and handed on as the parsed value. */
function evalEvent(raw: string): unknown {
  let value: unknown;
  try {
    value = parseJsonExact(raw);
  } catch {
    return raw; // normalizeEvent reports it as invalid_json
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const rec = value as Record<string, unknown>;
  const keys = Object.keys(rec);
  // As `tracesift eval` reads its dataset: `{event, label}` wraps any format; a top-level `label`
  // is taken off the event.
  if ("event" in rec && keys.every((k) => k === "event" || k === "label")) return rec.event;
  if ("label" in rec) {
    const { label: _label, ...event } = rec;
    return event;
  }
  return value;
}

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
