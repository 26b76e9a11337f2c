/**
 * Append-only JSONL files: the progress, label and review files the tools resume from. One line is
 * one committed record; a line cut short by a crash is skipped on read and never glued to the next.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { z } from "zod";

export type JsonlRead<T> = { records: T[]; /** 1-based lines that did not parse or validate. */ badLines: number[] };

export function readJsonl<T extends z.ZodType>(path: string, schema: T): JsonlRead<z.output<T>> {
  if (!existsSync(path)) return { records: [], badLines: [] };
  const records: z.output<T>[] = [];
  const badLines: number[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (line.trim() === "") return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        badLines.push(i + 1);
        return;
      }
      const parsed = schema.safeParse(value);
      if (parsed.success) records.push(parsed.data);
      else badLines.push(i + 1);
    });
  return { records, badLines };
}

/** Appends one JSON line per record, synchronously, so a record is on disk before the next call starts. */
export class JsonlAppender {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    // A crash mid-write leaves a partial last line: end it, so the next record starts clean.
    if (existsSync(path) && statSync(path).size > 0 && lastByte(path) !== 0x0a) appendFileSync(path, "\n");
  }

  append(record: unknown): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }
}

function lastByte(path: string): number {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(1);
    readSync(fd, buf, 0, 1, statSync(path).size - 1);
    return buf[0]!;
  } finally {
    closeSync(fd);
  }
}
