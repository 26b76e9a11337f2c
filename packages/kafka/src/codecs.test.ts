import { CompressionCodecs, CompressionTypes } from "kafkajs";
import { describe, expect, it } from "vitest";
import { snappyDecompress } from "./codecs.ts";

const payload = Buffer.from("Book Dana on Tuesday. ".repeat(500));

describe("compression codecs", () => {
  it("registers snappy, lz4 and zstd with kafkajs", () => {
    for (const type of [CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD] as const) {
      expect(() => CompressionCodecs[type]()).not.toThrow();
    }
  });

  it("round-trips snappy and lz4", async () => {
    for (const type of [CompressionTypes.Snappy, CompressionTypes.LZ4] as const) {
      const codec = CompressionCodecs[type]() as { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> };
      const compressed = await codec.compress({ buffer: payload });
      expect(compressed.length).toBeLessThan(payload.length / 10);
      expect((await codec.decompress(compressed)).equals(payload)).toBe(true);
    }
  });

  it("reads xerial-framed snappy as Java clients write it, block by block", async () => {
    const codec = CompressionCodecs[CompressionTypes.Snappy]() as { compress(e: { buffer: Buffer }): Promise<Buffer> };
    const halves = [payload.subarray(0, 4000), payload.subarray(4000)];
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]);
    const blocks = await Promise.all(halves.map((h) => codec.compress({ buffer: h })));
    const framed = Buffer.concat([header, ...blocks.flatMap((b) => [lengthOf(b), b])]);
    expect(snappyDecompress(framed).equals(payload)).toBe(true);
    expect(() => snappyDecompress(framed.subarray(0, framed.length - 3))).toThrow(/truncated/);
  });
});

function lengthOf(block: Buffer): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(block.length);
  return b;
}
