// The keeper's and the indexer's configuration: read once from the environment, validated with
// zod, and reported as one error listing every bad variable and what it should be.
import path from "node:path";

import { z } from "zod";

import { DEFAULT_HEARTBEAT_MAX_AGE_MS } from "../gateway/config.ts";
import { PROJECT_ROOT } from "../scripts/lib/local-chain.ts";
import { BPS, DEFAULT_SLA_SLASH_BPS } from "./sla.ts";
import { samplingConfig, type SamplingConfig } from "./sampling/config.ts";

/** The configuration is not usable; the message names each variable and what is wrong with it. */
export class ConfigError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "ConfigError";
  }
}

const intFrom = (name: string, min: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text === "") return fallback;
      const n = Number(text);
      if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
        ctx.addIssue({ code: "custom", message: `${name} must be a whole number ≥ ${min}, got "${text}"` });
        return z.NEVER;
      }
      return n;
    });

const optionalUrl = (name: string, protocols: readonly string[]) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text === "") return undefined;
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: "custom", message: `${name} must be a URL, got "${text}"` });
        return z.NEVER;
      }
      if (!protocols.includes(url.protocol)) {
        ctx.addIssue({ code: "custom", message: `${name} must be a ${protocols.join(" or ")} URL, got "${text}"` });
        return z.NEVER;
      }
      return text;
    });

/** A whole number ≥ min, or undefined when unset (the feature it sets is off). */
const optionalInt = (name: string, min: number) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text === "") return undefined;
      const n = Number(text);
      if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
        ctx.addIssue({ code: "custom", message: `${name} must be a whole number ≥ ${min}, got "${text}"` });
        return z.NEVER;
      }
      return n;
    });

/** Comma-separated http(s) URLs; empty when unset. */
const urlList = (name: string) =>
  z
    .string()
    .optional()
    .transform((text, ctx) => {
      const items = (text ?? "")
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "");
      for (const item of items) {
        let ok = false;
        try {
          ok = ["http:", "https:"].includes(new URL(item).protocol);
        } catch {
          ok = false;
        }
        if (!ok) {
          ctx.addIssue({ code: "custom", message: `${name} must be comma-separated http(s) URLs, got "${item}"` });
          return z.NEVER;
        }
      }
      return items;
    });

const indexerEnv = z.object({
  INFRAMESH_NETWORK: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === "" ? "localhost" : v))
    .pipe(z.string().regex(/^[a-zA-Z0-9_-]+$/, "INFRAMESH_NETWORK must be a network name such as localhost")),
  INFRAMESH_DEPLOYMENTS_DIR: z.string().optional(),
  INFRAMESH_RPC_URL: optionalUrl("INFRAMESH_RPC_URL", ["http:", "https:"]),
  DATABASE_URL: optionalUrl("DATABASE_URL", ["postgres:", "postgresql:"]),
  INFRAMESH_DATA_DIR: z.string().optional(),
  INFRAMESH_CONFIRMATIONS: intFrom("INFRAMESH_CONFIRMATIONS", 0, 2),
  INFRAMESH_INDEXER_BLOCK_SPAN: intFrom("INFRAMESH_INDEXER_BLOCK_SPAN", 1, 2_000),
  INFRAMESH_INDEXER_POLL_MS: intFrom("INFRAMESH_INDEXER_POLL_MS", 10, 2_000),
  INFRAMESH_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
});

export interface IndexerConfig {
  network: string;
  deploymentsDir: string;
  /** undefined: the network's usual URL (http://127.0.0.1:8545 for localhost). */
  rpcUrl: string | undefined;
  databaseUrl: string | undefined;
  dataDir: string;
  confirmations: number;
  blockSpan: number;
  pollMs: number;
  logLevel: string;
}

function issues(error: z.ZodError): string {
  return error.issues
    .map((issue) =>
      issue.code === "custom" || issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`,
    )
    .join("; ");
}

/** The indexer's configuration from `env`. Pure. */
export function indexerConfig(env: NodeJS.ProcessEnv): IndexerConfig {
  const parsed = indexerEnv.safeParse(env);
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${issues(parsed.error)}`);
  const e = parsed.data;
  return {
    network: e.INFRAMESH_NETWORK,
    deploymentsDir: e.INFRAMESH_DEPLOYMENTS_DIR || path.join(PROJECT_ROOT, "deployments"),
    rpcUrl: e.INFRAMESH_RPC_URL,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.INFRAMESH_DATA_DIR || path.join(PROJECT_ROOT, ".inframesh", `indexer-${e.INFRAMESH_NETWORK}`),
    confirmations: e.INFRAMESH_CONFIRMATIONS,
    blockSpan: e.INFRAMESH_INDEXER_BLOCK_SPAN,
    pollMs: e.INFRAMESH_INDEXER_POLL_MS,
    logLevel: e.INFRAMESH_LOG_LEVEL ?? "info",
  };
}

const keeperEnv = z.object({
  REDIS_URL: optionalUrl("REDIS_URL", ["redis:", "rediss:"]),
  INFRAMESH_KEEPER_KEY: z.preprocess(
    (value) => (value === "" ? undefined : value),
    z
      .string({ error: "INFRAMESH_KEEPER_KEY is not set: the keeper account's key (0x + 64 hex)" })
      .regex(/^0x[0-9a-fA-F]{64}$/, "INFRAMESH_KEEPER_KEY must be 0x followed by 64 hex"),
  ),
  INFRAMESH_KEEPER_PORT: intFrom("INFRAMESH_KEEPER_PORT", 0, 8700),
  INFRAMESH_KEEPER_HOST: z.string().optional(),
  INFRAMESH_KEEPER_FINALISE_EVERY_MS: intFrom("INFRAMESH_KEEPER_FINALISE_EVERY_MS", 100, 15_000),
  INFRAMESH_KEEPER_UNBONDING_EVERY_MS: intFrom("INFRAMESH_KEEPER_UNBONDING_EVERY_MS", 100, 60_000),
  INFRAMESH_KEEPER_ATTEMPTS: intFrom("INFRAMESH_KEEPER_ATTEMPTS", 1, 12),
  INFRAMESH_KEEPER_BACKOFF_MS: intFrom("INFRAMESH_KEEPER_BACKOFF_MS", 10, 1_000),
  INFRAMESH_KEEPER_LOCK_MS: intFrom("INFRAMESH_KEEPER_LOCK_MS", 1_000, 30_000),
  INFRAMESH_UNBONDING_WEBHOOK_URL: optionalUrl("INFRAMESH_UNBONDING_WEBHOOK_URL", ["http:", "https:"]),
  INFRAMESH_KEEPER_EPOCH_MS: optionalInt("INFRAMESH_KEEPER_EPOCH_MS", 100),
  INFRAMESH_KEEPER_ORACLE_URLS: urlList("INFRAMESH_KEEPER_ORACLE_URLS"),
  INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN: z.string().optional(),
  INFRAMESH_KEEPER_SLA_EVERY_MS: optionalInt("INFRAMESH_KEEPER_SLA_EVERY_MS", 100),
  INFRAMESH_KEEPER_GATEWAY_REDIS_URL: optionalUrl("INFRAMESH_KEEPER_GATEWAY_REDIS_URL", ["redis:", "rediss:"]),
  INFRAMESH_KEEPER_GATEWAY_PREFIX: z.string().optional(),
  INFRAMESH_KEEPER_BLOB_PEER_URL: optionalUrl("INFRAMESH_KEEPER_BLOB_PEER_URL", ["http:", "https:"]),
  INFRAMESH_KEEPER_SLASH_BPS: intFrom("INFRAMESH_KEEPER_SLASH_BPS", 1, DEFAULT_SLA_SLASH_BPS),
  INFRAMESH_KEEPER_INCIDENT_WINDOW_MS: intFrom("INFRAMESH_KEEPER_INCIDENT_WINDOW_MS", 0, 60_000),
  INFRAMESH_KEEPER_SLA_GRACE_MS: intFrom("INFRAMESH_KEEPER_SLA_GRACE_MS", 0, 30_000),
  INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS: intFrom("INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS", 100, DEFAULT_HEARTBEAT_MAX_AGE_MS),
});

export interface KeeperConfig extends IndexerConfig {
  /** undefined: start a private redis-server (development and tests only). */
  redisUrl: string | undefined;
  keeperKey: `0x${string}`;
  port: number;
  host: string;
  finaliseEveryMs: number;
  unbondingEveryMs: number;
  attempts: number;
  backoffMs: number;
  /** How long a job's lock lives: a crashed worker's job runs again after this. */
  lockMs: number;
  webhookUrl: string | undefined;
  /** Epoch close period; undefined: the keeper closes no epochs. */
  epochMs: number | undefined;
  /** The oracle committee's API base URLs, asked in turn to close each epoch. */
  oracleUrls: string[];
  /** The oracles' admin token (never logged). */
  oracleAdminToken: string | undefined;
  /** SLA scan period; undefined: no SLA watch. */
  slaEveryMs: number | undefined;
  /** The gateways' shared Redis (attempt records, dissent evidence); default REDIS_URL. */
  gatewayRedisUrl: string | undefined;
  /** The gateways' key prefix (gateway config redis.prefix). */
  gatewayPrefix: string;
  /** Where SLA evidence is published before the slash names its hash. */
  blobPeerUrl: string | undefined;
  /** An SLA slash, in basis points of the node's slashable stake (capped by maxSlashOf). */
  slashBps: number;
  /** Violations of one node closer than this are one incident (one slash). */
  incidentWindowMs: number;
  /** An attempt sent and never marked answered or failed counts this long after its deadline. */
  slaGraceMs: number;
  /**
   * A node holding a job whose last heartbeat is this old has lost its heartbeat (a violation at
   * once); default the gateway's heartbeat TTL, after which it is no candidate any more.
   */
  heartbeatLossMs: number;
  /** Validator sampling (docs/keeper.md); fraction 0: off. */
  sampling: SamplingConfig;
}

/** The gateway's default Redis key prefix (gateway/config.ts). */
export const DEFAULT_GATEWAY_PREFIX = "inframesh:gw:";

/** The keeper's configuration from `env` (the indexer's plus its own). Pure. */
export function keeperConfig(env: NodeJS.ProcessEnv): KeeperConfig {
  const problems: string[] = [];
  let indexer: IndexerConfig | undefined;
  try {
    indexer = indexerConfig(env);
  } catch (error) {
    problems.push((error as Error).message.replace(/^invalid configuration: /, ""));
  }
  const parsed = keeperEnv.safeParse(env);
  if (!parsed.success) problems.push(issues(parsed.error));
  const sampling = samplingConfig(env);
  problems.push(...sampling.problems);
  if (problems.length > 0 || indexer === undefined || !parsed.success || sampling.config === undefined) {
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const e = parsed.data;
  if (e.INFRAMESH_KEEPER_EPOCH_MS !== undefined) {
    if (e.INFRAMESH_KEEPER_ORACLE_URLS.length === 0)
      problems.push("INFRAMESH_KEEPER_EPOCH_MS is set but INFRAMESH_KEEPER_ORACLE_URLS is not: the oracles to ask");
    if (!e.INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN)
      problems.push(
        "INFRAMESH_KEEPER_EPOCH_MS is set but INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN is not: the oracles' admin token",
      );
  }
  if (e.INFRAMESH_KEEPER_SLA_EVERY_MS !== undefined && e.INFRAMESH_KEEPER_BLOB_PEER_URL === undefined)
    problems.push(
      "INFRAMESH_KEEPER_SLA_EVERY_MS is set but INFRAMESH_KEEPER_BLOB_PEER_URL is not: where slash evidence is published",
    );
  if (e.INFRAMESH_KEEPER_SLASH_BPS > Number(BPS))
    problems.push(`INFRAMESH_KEEPER_SLASH_BPS must be at most ${BPS}, got ${e.INFRAMESH_KEEPER_SLASH_BPS}`);
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  return {
    ...indexer,
    redisUrl: e.REDIS_URL,
    keeperKey: e.INFRAMESH_KEEPER_KEY as `0x${string}`,
    port: e.INFRAMESH_KEEPER_PORT,
    host: e.INFRAMESH_KEEPER_HOST || "127.0.0.1",
    finaliseEveryMs: e.INFRAMESH_KEEPER_FINALISE_EVERY_MS,
    unbondingEveryMs: e.INFRAMESH_KEEPER_UNBONDING_EVERY_MS,
    attempts: e.INFRAMESH_KEEPER_ATTEMPTS,
    backoffMs: e.INFRAMESH_KEEPER_BACKOFF_MS,
    lockMs: e.INFRAMESH_KEEPER_LOCK_MS,
    webhookUrl: e.INFRAMESH_UNBONDING_WEBHOOK_URL,
    epochMs: e.INFRAMESH_KEEPER_EPOCH_MS,
    oracleUrls: e.INFRAMESH_KEEPER_ORACLE_URLS,
    oracleAdminToken: e.INFRAMESH_KEEPER_ORACLE_ADMIN_TOKEN || undefined,
    slaEveryMs: e.INFRAMESH_KEEPER_SLA_EVERY_MS,
    gatewayRedisUrl: e.INFRAMESH_KEEPER_GATEWAY_REDIS_URL,
    gatewayPrefix: e.INFRAMESH_KEEPER_GATEWAY_PREFIX || DEFAULT_GATEWAY_PREFIX,
    blobPeerUrl: e.INFRAMESH_KEEPER_BLOB_PEER_URL,
    slashBps: e.INFRAMESH_KEEPER_SLASH_BPS,
    incidentWindowMs: e.INFRAMESH_KEEPER_INCIDENT_WINDOW_MS,
    slaGraceMs: e.INFRAMESH_KEEPER_SLA_GRACE_MS,
    heartbeatLossMs: e.INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS,
    sampling: sampling.config,
  };
}
