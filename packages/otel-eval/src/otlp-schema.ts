/**
 * The OTLP/JSON shape of `ExportLogsServiceRequest` (opentelemetry-proto
 * `collector/logs/v1/logs_service.proto`, `logs/v1/logs.proto`, `common/v1/common.proto`,
 * `resource/v1/resource.proto`) under the OTLP/HTTP JSON mapping: lowerCamelCase field names,
 * 64-bit integers as decimal strings, trace and span ids as hex (not base64), enums as numbers.
 * Strict objects: a field the protos do not define is a failure. Used to check what we export.
 */
import { z } from "zod";

const uint64 = z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]);
const int64 = z.union([z.string().regex(/^-?\d+$/), z.number().int()]);

export type AnyValue =
  | Record<string, never>
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string | number }
  | { doubleValue: number }
  | { arrayValue: { values: AnyValue[] } }
  | { kvlistValue: { values: KeyValue[] } }
  | { bytesValue: string };
export type KeyValue = { key: string; value?: AnyValue };

export const AnyValue: z.ZodType<AnyValue> = z.lazy(() =>
  z.union([
    // A oneof left unset (the SDK's body of an event without one) is an empty message.
    z.strictObject({}),
    z.strictObject({ stringValue: z.string() }),
    z.strictObject({ boolValue: z.boolean() }),
    z.strictObject({ intValue: int64 }),
    z.strictObject({ doubleValue: z.number() }),
    z.strictObject({ arrayValue: z.strictObject({ values: z.array(AnyValue) }) }),
    z.strictObject({ kvlistValue: z.strictObject({ values: z.array(KeyValue) }) }),
    z.strictObject({ bytesValue: z.base64() }),
  ]),
);
export const KeyValue: z.ZodType<KeyValue> = z.lazy(() => z.strictObject({ key: z.string(), value: AnyValue.optional() }));

const attributes = z.array(KeyValue).optional();
const dropped = z.number().int().nonnegative().optional();

export const LogRecord = z.strictObject({
  timeUnixNano: uint64.optional(),
  observedTimeUnixNano: uint64.optional(),
  severityNumber: z.number().int().min(0).max(24).optional(),
  severityText: z.string().optional(),
  body: AnyValue.optional(),
  attributes,
  droppedAttributesCount: dropped,
  flags: z.number().int().nonnegative().optional(),
  // bytes trace_id = 16 bytes, span_id = 8 bytes; empty means "not set".
  traceId: z.union([z.literal(""), z.string().regex(/^[0-9a-f]{32}$/)]).optional(),
  spanId: z.union([z.literal(""), z.string().regex(/^[0-9a-f]{16}$/)]).optional(),
  eventName: z.string().optional(),
});

export const ExportLogsServiceRequest = z.strictObject({
  resourceLogs: z.array(
    z.strictObject({
      resource: z.strictObject({ attributes, droppedAttributesCount: dropped, entityRefs: z.array(z.unknown()).optional() }).optional(),
      scopeLogs: z.array(
        z.strictObject({
          scope: z
            .strictObject({ name: z.string().optional(), version: z.string().optional(), attributes, droppedAttributesCount: dropped })
            .optional(),
          logRecords: z.array(LogRecord),
          schemaUrl: z.string().optional(),
        }),
      ),
      schemaUrl: z.string().optional(),
    }),
  ),
});
export type ExportLogsServiceRequest = z.infer<typeof ExportLogsServiceRequest>;
