/**
 * Kafka's compression codecs beyond the GZIP that kafkajs 2.2.4 ships: real producers (Java
 * clients, the OTel Collector's Kafka exporter, librdkafka) write snappy, lz4 and zstd batches, and
 * without a codec kafkajs throws inside the consumer's fetch loop and the consumer stops.
 *
 * Reading is what the fleet needs. Snappy (snappyjs) and zstd (fzstd) decode in pure JS; LZ4 uses
 * lz4-napi, whose prebuilt binary comes inside its npm package.
 */
import { createRequire } from "node:module";
import { decompress as zstdDecompress } from "fzstd";
import kafkajs from "kafkajs";
import { compressFrame as lz4CompressFrame, decompressFrame as lz4DecompressFrame } from "lz4-napi";

// kafkajs is CommonJS and Node's ESM loader cannot see these two as named exports.
const { CompressionCodecs, CompressionTypes } = kafkajs;

// snappyjs ships no type declarations.
const snappy = createRequire(import.meta.url)("snappyjs") as {
  compress(input: Uint8Array): Uint8Array;
  uncompress(input: Uint8Array): Uint8Array;
};

type Encoder = { buffer: Buffer };
type Codec = { compress(encoder: Encoder): Promise<Buffer>; decompress(buffer: Buffer): Promise<Buffer> };

/** Java clients frame snappy the xerial way (a magic header, then length-prefixed blocks); librdkafka writes raw snappy. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

export function snappyDecompress(buffer: Buffer): Buffer {
  if (buffer.length < XERIAL_HEADER_BYTES || !buffer.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return Buffer.from(snappy.uncompress(buffer));
  }
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER_BYTES;
  while (at < buffer.length) {
    if (at + 4 > buffer.length) throw new Error("truncated xerial snappy block header");
    const size = buffer.readUInt32BE(at);
    at += 4;
    if (at + size > buffer.length) throw new Error("truncated xerial snappy block");
    blocks.push(Buffer.from(snappy.uncompress(buffer.subarray(at, at + size))));
    at += size;
  }
  return Buffer.concat(blocks);
}

const snappyCodec: Codec = {
  compress: async (encoder) => Buffer.from(snappy.compress(encoder.buffer)),
  decompress: async (buffer) => snappyDecompress(buffer),
};

// Record batches (message format v2, Kafka ≥ 0.11) carry standard LZ4 frames.
const lz4Codec: Codec = {
  compress: (encoder) => lz4CompressFrame(encoder.buffer),
  decompress: (buffer) => lz4DecompressFrame(buffer),
};

const zstdCodec: Codec = {
  // No maintained pure-JS zstd encoder exists and Node 20's zlib has none; the fleet's own
  // producers do not compress, so only reading is supported.
  compress: async () => {
    throw new Error("zstd compression is not supported for producing (reading zstd batches is)");
  },
  decompress: async (buffer) => Buffer.from(zstdDecompress(buffer)),
};

// Process-wide, on import: every Kafka client of the fleet is created through this package.
CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;
CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec;
