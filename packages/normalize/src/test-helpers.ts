/** Test-only helpers (not exported from the package): where the fixtures live. */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Inside the package, so a fresh clone runs every test (see fixtures/README.md for sources and licences). */
export const FIXTURES_DIR = fileURLToPath(new URL("../fixtures/", import.meta.url));

export function fixturePath(rel: string): string {
  return `${FIXTURES_DIR}${rel}`;
}

export function readFixture(rel: string): unknown {
  const text = readFileSync(fixturePath(rel), "utf8");
  return JSON.parse(rel.endsWith(".jsonc") ? stripJsonComments(text) : text);
}

export function listFixtures(dir: string, filter: (name: string) => boolean = () => true): string[] {
  return readdirSync(fixturePath(dir))
    .filter(filter)
    .sort()
    .map((f) => `${dir}/${f}`);
}

/** Roles and texts only: what the judge reads. */
export function rt(messages: { role: string; content: string }[]): [string, string][] {
  return messages.map((m) => [m.role, m.content.trim()]);
}

/** JSONC (the semconv examples have `//` comments): drop comment lines outside strings. */
function stripJsonComments(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") {
        out += text[i + 1] ?? "";
        i++;
      } else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
    } else out += c;
  }
  return out;
}
