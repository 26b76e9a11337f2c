/**
 * Readers for test/deploy.test.ts: Dockerfile instructions by stage, .dockerignore matching and
 * Compose variable interpolation.
 */

export type Instruction = { keyword: string; args: string; line: number };
export type Stage = { name?: string; from: string; instructions: Instruction[] };
export type Dockerfile = { globalArgs: Record<string, string>; stages: Stage[] };

/** Instructions (continuations joined, comments dropped) grouped by build stage. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let current: { text: string; line: number } | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && !current)) return;
    const continued = line.endsWith("\\");
    const body = continued ? line.slice(0, -1).trim() : line;
    current = current ? { text: `${current.text} ${body}`, line: current.line } : { text: body, line: i + 1 };
    if (!continued) {
      const m = /^(\w+)\s*(.*)$/.exec(current.text);
      if (m) instructions.push({ keyword: (m[1] ?? "").toUpperCase(), args: (m[2] ?? "").trim(), line: current.line });
      current = undefined;
    }
  });

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ from: m[1] ?? "", ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === "ARG") {
        const [name, value] = ins.args.split("=", 2);
        if (name && value !== undefined) globalArgs[name] = value.replace(/^"|"$/g, "");
      }
    } else {
      stages[stages.length - 1]?.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

/** A FROM image with ${ARG} / $ARG replaced by the global ARG defaults. */
export function resolveFrom(from: string, args: Record<string, string>): string {
  return from.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => args[a ?? b ?? ""] ?? "");
}

/** Whether a context path is excluded by .dockerignore patterns (last matching pattern wins). */
export function dockerIgnored(path: string, patterns: string[]): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, "");
    // A pattern matches the path itself or any directory above it.
    const re = new RegExp(`^${globToRegex(pattern)}(?:/.*)?$`);
    if (re.test(path)) ignored = !negated;
  }
  return ignored;
}

export function readDockerignore(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

function globToRegex(glob: string): string {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? "";
    if (c === "*" && glob[i + 1] === "*") {
      // `**/` matches zero or more directories; a trailing `**` anything.
      if (glob[i + 2] === "/") {
        out += "(?:.*/)?";
        i += 2;
      } else {
        out += ".*";
        i += 1;
      }
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return out;
}

/** Names of the variables a Compose file interpolates (`$$` is a literal dollar). */
export function composeVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.replace(/\$\$/g, "").matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)) {
    names.add(m[1] ?? m[2] ?? "");
  }
  return names;
}
