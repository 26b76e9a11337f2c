/**
 * What a new user gets: the repository's HEAD cloned into an empty folder with nothing beside it,
 * installed offline from the pnpm store the outer run filled, then the parts of the test command
 * that make sense nested — typecheck, lint, the unit tests and the normalize tests (which must find
 * every fixture inside the repository). Kafka and Redis are the outer run's, so the nested run
 * skips the integration suites, and the guard variable stops it from cloning again.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../services/cli/src/fleet.ts";

const NESTED = process.env.TRACESIFT_FRESH_CLONE === "1";

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, TRACESIFT_FRESH_CLONE: "1", CI: "true" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d) => {
      output += d;
    });
    child.stderr?.on("data", (d) => {
      output += d;
    });
    child.once("exit", (code) => resolve({ code, output }));
  });
}

/** The last lines are where a runner says what failed. */
const tail = (text: string) => text.split("\n").slice(-60).join("\n");

describe.skipIf(NESTED)("a fresh clone with nothing beside it", () => {
  it("installs offline, typechecks, lints and passes the unit and normalize tests", { timeout: 20 * 60_000 }, async () => {
    const parent = mkdtempSync(join(tmpdir(), "tracesift-fresh-"));
    const repo = join(parent, "tracesift");
    try {
      const clone = await run("git", ["clone", "--quiet", REPO_ROOT, repo], parent);
      expect(clone.code, clone.output).toBe(0);
      expect(readdirSync(parent)).toEqual(["tracesift"]);

      const steps: [string, string[]][] = [
        ["pnpm", ["install", "--frozen-lockfile", "--offline", "--reporter=silent"]],
        ["pnpm", ["exec", "turbo", "run", "typecheck", "--output-logs=errors-only"]],
        ["pnpm", ["exec", "biome", "check", "."]],
        ["pnpm", ["exec", "vitest", "run", "--project", "unit"]],
        // The normalize package's own integration-named suites read fixtures only (no Kafka, no Redis).
        ["pnpm", ["exec", "vitest", "run", "packages/normalize"]],
      ];
      for (const [cmd, args] of steps) {
        const r = await run(cmd, args, repo);
        expect(r.code, `${cmd} ${args.join(" ")} in a fresh clone:\n${tail(r.output)}`).toBe(0);
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
