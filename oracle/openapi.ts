// The OpenAPI 3.1 document of the oracle API, generated from the zod schemas that validate the
// requests (sdk/receipt.ts and the schemas below), so the document cannot drift from the checks.
import { z } from "zod";

import { bytes32Schema, receiptJsonSchema } from "../sdk/receipt.ts";
import { REJECTION_CODES } from "./rules/reasons.ts";

export const errorSchema = z.object({
  error: z.string().describe("stable machine-readable code"),
  reason: z.string().describe("what was wrong and what to do"),
});

export const receiptStatusSchema = z.object({
  job_id: z.string(),
  status: z.enum(["queued", "verified", "rejected", "settled"]),
  reason_code: z.enum(REJECTION_CODES).nullable(),
  reason: z.string().nullable(),
  fee: z.string().nullable(),
  epoch: z.string().nullable(),
});

export const epochNumberSchema = z.string().regex(/^(0|[1-9][0-9]{0,18})$/, "an epoch is a non-negative integer");

/** POST /v1/epochs/close: optionally the epoch the caller means (a number or a decimal string). */
export const closeRequestSchema = z.strictObject({
  epoch: z
    .union([z.number().int().nonnegative().transform(String), epochNumberSchema])
    .pipe(epochNumberSchema)
    .optional(),
});

export const settlementJsonSchema = z.strictObject({
  epoch: z.string().regex(/^[0-9]{1,20}$/),
  earningsRoot: bytes32Schema,
  totalDebits: z.string().regex(/^[0-9]{1,78}$/),
  fees: z.string().regex(/^[0-9]{1,78}$/),
  royalties: z.string().regex(/^[0-9]{1,78}$/),
  redistributedSlash: z.string().regex(/^[0-9]{1,78}$/),
  receiptCount: z.string().regex(/^[0-9]{1,20}$/),
  batchSha256: bytes32Schema,
});

/** What a committee leader sends a follower: the proposed settlement (its batch is in the blob store). */
export const signRequestSchema = z.strictObject({
  settlement: settlementJsonSchema,
});

const json = (schema: z.ZodType) => ({ "application/json": { schema: z.toJSONSchema(schema, { io: "input" }) } });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: "error", content: json(errorSchema) }]));

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "Inframesh reward oracle",
      version: "1.0.0",
      description: "Accepts receipts (work unit + proof of serving), verifies them and settles epochs on chain.",
    },
    paths: {
      "/v1/receipts": {
        post: {
          summary: "Submit a receipt; 202 once it is durably recorded as queued",
          requestBody: { required: true, content: json(receiptJsonSchema) },
          responses: {
            "202": { description: "recorded, queued for verification", content: json(receiptStatusSchema) },
            "200": { description: "the same receipt was already recorded", content: json(receiptStatusSchema) },
            ...errors(400, 409, 413, 415, 503),
          },
        },
      },
      "/v1/receipts/{jobId}": {
        get: {
          summary: "Status of a receipt",
          parameters: [
            { name: "jobId", in: "path", required: true, schema: z.toJSONSchema(bytes32Schema, { io: "input" }) },
          ],
          responses: { "200": { description: "status", content: json(receiptStatusSchema) }, ...errors(400, 404) },
        },
      },
      "/v1/epochs/{n}": {
        get: {
          summary: "An epoch's settlement state",
          parameters: [{ name: "n", in: "path", required: true, schema: z.toJSONSchema(epochNumberSchema) }],
          responses: { "200": { description: "the epoch" }, ...errors(400, 404) },
        },
      },
      "/v1/epochs/{n}/batch": {
        get: {
          summary:
            "The receipt batch the epoch's settlement commits to (its sha256 is batchSha256); auditors' fallback",
          parameters: [{ name: "n", in: "path", required: true, schema: z.toJSONSchema(epochNumberSchema) }],
          responses: {
            "200": { description: "the batch: canonical JSON lines", content: { "application/x-ndjson": {} } },
            ...errors(400, 404),
          },
        },
      },
      "/v1/epochs/close": {
        post: {
          summary:
            'Close the open epoch (or drive the pending one); admin token. With {"epoch": "N"}: close N only if it is the open epoch, else report N\'s state',
          security: [{ bearer: [] }],
          requestBody: { required: false, content: json(closeRequestSchema) },
          responses: { "200": { description: "the epoch" }, ...errors(400, 401, 403, 409) },
        },
      },
      "/v1/epochs/{n}/sign": {
        post: {
          summary: "Committee follower: re-verify a proposed settlement and return this oracle's signature",
          requestBody: { required: true, content: json(signRequestSchema) },
          responses: { "200": { description: "signature" }, ...errors(400, 409) },
        },
      },
      "/v1/stats": {
        get: { summary: "Receipts by status", responses: { "200": { description: "counts" } } },
      },
      "/healthz": { get: { summary: "Process alive", responses: { "200": { description: "ok" } } } },
      "/readyz": {
        get: {
          summary: "Database and queue reachable",
          responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
        },
      },
      "/metrics": { get: { summary: "Prometheus metrics", responses: { "200": { description: "text format" } } } },
    },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  };
}
