import { describe, expect, it } from "vitest";
import { renderMarkdownTable, renderTable } from "./report.ts";

describe("tables", () => {
  it("aligns text left and numbers right", () => {
    expect(renderTable(["judge", "n"], [["a", "10"], ["long-name", "5"]])).toBe(
      ["judge       n", "---------  --", "a          10", "long-name   5"].join("\n"),
    );
  });

  it("escapes Markdown cells", () => {
    expect(renderMarkdownTable(["a"], [["x | y\nz"]])).toBe("| a |\n| --- |\n| x \\| y z |");
  });
});
