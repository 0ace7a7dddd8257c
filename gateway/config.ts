// The gateway's config (YAML), validated once with zod; every wrong field is reported on its own
// line. Secrets are never in it: API keys appear only as salted hashes, and the custodial signing
// key of each API key's client account is an encrypted keystore (password in an environment
// variable) or the name of an environment variable holding the key.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { parseDocument } from "yaml";
import { z } from "zod";

import { apiKeyRecordSchema } from "./api-keys.ts";
import { configIssues } from "../sdk/config-issues.ts";

/**
 * How long a node's heartbeat lives (heartbeats.max_age_ms): older, it is no candidate. The
 * keeper's SLA watch takes the same default for a lost heartbeat.
 */
export const DEFAULT_HEARTBEAT_MAX_AGE_MS = 15_000;

const httpUrl = z
  .string()
  .regex(/^https?:\/\/[^\s/]+(\/[^\s]*)?$/, "expected an http(s) URL such as http://127.0.0.1:8545")
  .transform((url) => url.replace(/\/+$/, ""));

const bucketSchema = z.strictObject({
  capacity: z.number().int().min(1, "at least 1 call").max(1_000_000),
  refill_per_second: z.number().positive("must be above 0").max(1_000_000),
});

const clientKeySchema = z.union([
  z.strictObject({ keystore: z.string().min(1, "must not be empty") }),
  z.strictObject({ private_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "expected an environment variable name") }),
]);

const apiKeySchema = apiKeyRecordSchema.extend({
  /** The client account the gateway signs work units for when this key is used (custodial mode). */
  client: clientKeySchema,
  rate_limit: bucketSchema.optional(),
});

const modelPolicySchema = z.strictObject({
  min_tier: z.number().int().min(0).max(255).default(0),
  redundancy: z.number().int().min(1).max(16).default(1),
  memory_bytes: z.number().int().nonnegative().default(0),
  gpu: z.boolean().default(false),
});

export const gatewayConfigSchema = z.strictObject({
  listen: z.strictObject({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int("expected a whole port number").min(0).max(65535, "expected 0..65535"),
  }),
  chain: z.strictObject({
    rpc_url: httpUrl,
    /** deployments/<network>.json as written by `npx hardhat deploy`. */
    deployment: z.string().min(1, "must not be empty"),
  }),
  redis: z.strictObject({
    url: z.string().regex(/^rediss?:\/\//, "expected redis://host:port"),
    /** Key prefix; gateways that must agree share it. */
    prefix: z.string().min(1).max(64).default("inframesh:gw:"),
  }),
  api_keys: z.array(apiKeySchema).default([]),
  /** Per-model routing policy by model name; models not listed get the defaults. */
  models: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "expected a model name"), modelPolicySchema).default({}),
  routing: z
    .strictObject({
      forward_timeout_ms: z.number().int().min(10).max(600_000).default(10_000),
      max_attempts: z.number().int().min(1).max(16).default(3),
      down_cooldown_ms: z.number().int().min(0).max(3_600_000).default(5_000),
      node_refresh_ms: z.number().int().min(10).max(60_000).default(500),
      max_redundancy: z.number().int().min(1).max(16).default(5),
      /** Calls in flight from this instance that count as a fully loaded node. */
      node_capacity: z.number().int().min(1).max(100_000).default(8),
    })
    .default({
      forward_timeout_ms: 10_000,
      max_attempts: 3,
      down_cooldown_ms: 5_000,
      node_refresh_ms: 500,
      max_redundancy: 5,
      node_capacity: 8,
    }),
  heartbeats: z
    .strictObject({
      max_age_ms: z.number().int().min(100).max(3_600_000).default(DEFAULT_HEARTBEAT_MAX_AGE_MS),
      max_future_ms: z.number().int().min(0).max(600_000).default(5_000),
    })
    .default({ max_age_ms: DEFAULT_HEARTBEAT_MAX_AGE_MS, max_future_ms: 5_000 }),
  /**
   * Validator sampling (docs/keeper.md): how long each served job (input, signed work unit, proof)
   * stays in Redis for the keeper to re-run; 0 keeps nothing (sampling cannot run).
   */
  sampling: z
    .strictObject({
      retain_ms: z
        .number()
        .int()
        .min(0)
        .max(7 * 86_400_000)
        .default(0),
      /** Served-job ids kept in the stream the keeper reads (approximate, trimmed by Redis). */
      stream_max: z.number().int().min(100).max(10_000_000).default(100_000),
    })
    .default({ retain_ms: 0, stream_max: 100_000 }),
  /** Seconds a work unit signed by the gateway stays valid. */
  work_unit_ttl_s: z.number().int().min(5).max(86_400).default(300),
  /** Default bucket per API key and per client account of signed work units. */
  rate_limit: bucketSchema.default({ capacity: 100, refill_per_second: 50 }),
  /**
   * How long an instance may hold rate-limit tokens it leased from the shared bucket (0: one Redis
   * round trip per call). See gateway/rate-limit.ts.
   */
  rate_limit_lease_ms: z.number().int().min(0).max(10_000).default(1_000),
  /**
   * How long per-call Redis writes (attempt records, node statistics, kept jobs) wait to be sent
   * together in one pipeline; 0 sends them right after the answers of the same event-loop turn.
   */
  write_batch_ms: z.number().int().min(0).max(1_000).default(5),
  block_poll_ms: z.number().int().min(50).max(60_000).default(1_000),
  log_level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
});

export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type ModelPolicy = z.output<typeof modelPolicySchema>;

export class GatewayConfigError extends Error {
  readonly issues: readonly { path: string; message: string }[];
  constructor(source: string, issues: readonly { path: string; message: string }[], options?: ErrorOptions) {
    super(`invalid gateway config ${source}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`, options);
    this.name = "GatewayConfigError";
    this.issues = issues;
  }
}

/** Validates a parsed config; relative paths resolve against `baseDir`. Pure. */
export function parseGatewayConfig(value: unknown, baseDir: string, source = "(inline)"): GatewayConfig {
  const parsed = gatewayConfigSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    throw new GatewayConfigError(source, configIssues(parsed.error), { cause: parsed.error });
  }
  const c = parsed.data;
  const ids = new Set<string>();
  for (const [i, k] of c.api_keys.entries()) {
    if (ids.has(k.id)) {
      throw new GatewayConfigError(source, [{ path: `api_keys.${i}.id`, message: `duplicate key id ${k.id}` }]);
    }
    ids.add(k.id);
  }
  return {
    ...c,
    chain: { ...c.chain, deployment: path.resolve(baseDir, c.chain.deployment) },
    api_keys: c.api_keys.map((k) =>
      "keystore" in k.client ? { ...k, client: { keystore: path.resolve(baseDir, k.client.keystore) } } : k,
    ),
  };
}

/** Reads and validates a YAML config file. */
export async function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, "utf8");
  } catch (error) {
    throw new GatewayConfigError(absolute, [{ path: "(file)", message: "cannot be read" }], { cause: error });
  }
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new GatewayConfigError(
      absolute,
      document.errors.map((e) => ({ path: "(yaml)", message: e.message.split("\n")[0]! })),
      { cause: document.errors[0] },
    );
  }
  return parseGatewayConfig(document.toJS({ maxAliasCount: 100 }), path.dirname(absolute), absolute);
}
