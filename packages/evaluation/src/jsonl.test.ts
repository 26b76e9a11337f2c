import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { JsonlAppender, readJsonl } from "./jsonl.ts";

const Rec = z.object({ n: z.number() });
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "jsonl-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("append-only JSONL", () => {
  it("skips a line cut short by a crash and never glues the next record to it", () => {
    const path = join(tmp(), "sub", "progress.jsonl");
    new JsonlAppender(path).append({ n: 1 });
    writeFileSync(path, `${readFileSync(path, "utf8")}{"n": 2, "cut`, { flag: "w" });
    const appender = new JsonlAppender(path);
    appender.append({ n: 3 });
    expect(readJsonl(path, Rec)).toEqual({ records: [{ n: 1 }, { n: 3 }], badLines: [2] });
  });

  it("reads a missing file as empty", () => {
    expect(readJsonl(join(tmp(), "none.jsonl"), Rec)).toEqual({ records: [], badLines: [] });
  });
});
