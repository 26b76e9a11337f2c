/**
 * What a batch backfill has done so far, kept in a file next to its request and result files so a
 * stopped command resumes the same jobs instead of paying again. Written atomically (temp file +
 * rename) after every step that created something at the provider or published something.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";

export const ChunkStage = z.enum(["planned", "uploaded", "submitted", "downloaded", "done"]);
export type ChunkStage = z.infer<typeof ChunkStage>;

export const Chunk = z.object({
  index: z.number().int().nonnegative(),
  /** Which submission of these requests this is: requests a job left unanswered go into a new chunk. */
  attempt: z.number().int().positive(),
  custom_ids: z.array(z.string()),
  dataset_id: z.string(),
  output_dataset_id: z.string(),
  job_id: z.string(),
  stage: ChunkStage,
  job_state: z.string().optional(),
  job_message: z.string().optional(),
  processed: z.number().int().nonnegative().default(0),
  submitted_at: z.iso.datetime({ offset: true }).optional(),
  finished_at: z.iso.datetime({ offset: true }).optional(),
});
export type Chunk = z.infer<typeof Chunk>;

export const BatchState = z.object({
  version: z.literal(1),
  name: z.string(),
  topic: z.string(),
  model: z.string(),
  prompt_version: z.string(),
  /** Offsets covered, per partition, as [start, end). */
  ranges: z.array(z.object({ partition: z.number().int(), start: z.string(), end: z.string() })),
  /** The range was read to its end and every conversation of it is in the jobs file. */
  collected: z.boolean(),
  /** Requests were split into chunks (after dropping what was already judged). */
  planned: z.boolean(),
  totals: z.object({
    events_read: z.number().int().nonnegative(),
    skipped_not_judgeable: z.number().int().nonnegative(),
    skipped_already_judged: z.number().int().nonnegative(),
    dead_lettered: z.number().int().nonnegative(),
  }),
  chunks: z.array(Chunk),
});
export type BatchState = z.infer<typeof BatchState>;

export function loadState(path: string): BatchState | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  return BatchState.parse(JSON.parse(text));
}

export function saveState(path: string, state: BatchState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 1)}\n`);
  renameSync(tmp, path);
}
