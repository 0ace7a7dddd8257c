// Validator sampling's configuration (INFRAMESH_KEEPER_SAMPLE_*), read once from the environment
// with the keeper's: every bad variable is named in the keeper's one ConfigError.
import { createHash } from "node:crypto";

import { z } from "zod";

export interface SamplingConfig {
  /** Share of served jobs re-run, 0..1; 0 turns sampling off. */
  fraction: number;
  /** The HMAC key of the choice (never shared with nodes or gateways). */
  secret: Buffer;
  /** The key that signs the keeper's own work units (the client paying for re-runs). */
  clientKey: `0x${string}`;
  /** The gateways' shared Redis (served jobs, heartbeats); undefined: the keeper's REDIS_URL. */
  gatewayRedisUrl: string | undefined;
  gatewayPrefix: string;
  /** Blob-store peers the evidence (and the input it cites) is published to. */
  blobPeers: string[];
  /** Share of maxSlashOf(node) a mismatch slashes, basis points. */
  slashBps: number;
  /** How often the served-job stream is read. */
  everyMs: number;
  /** Deadline of one re-run on one node. */
  rerunTimeoutMs: number;
}

const KEY = /^0x[0-9a-fA-F]{64}$/;

const blank = (v: unknown) => (v === "" ? undefined : v);

const samplingEnv = z.object({
  INFRAMESH_KEEPER_SAMPLE_FRACTION: z.preprocess(
    blank,
    z
      .string()
      .regex(/^(0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+)$/, "INFRAMESH_KEEPER_SAMPLE_FRACTION must be a number from 0 to 1")
      .transform(Number)
      .optional(),
  ),
  INFRAMESH_KEEPER_SAMPLE_SECRET: z.preprocess(
    blank,
    z
      .string()
      .regex(
        /^(0x)?([0-9a-fA-F]{2}){16,}$/,
        "INFRAMESH_KEEPER_SAMPLE_SECRET must be an even number of hex digits, at least 32 (16 bytes)",
      )
      .optional(),
  ),
  INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY: z.preprocess(
    blank,
    z.string().regex(KEY, "INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY must be 0x followed by 64 hex").optional(),
  ),
  INFRAMESH_KEEPER_SAMPLE_GATEWAY_REDIS_URL: z.preprocess(
    blank,
    z
      .string()
      .regex(/^rediss?:\/\/\S+$/, "INFRAMESH_KEEPER_SAMPLE_GATEWAY_REDIS_URL must be a redis:// URL")
      .optional(),
  ),
  INFRAMESH_KEEPER_SAMPLE_GATEWAY_PREFIX: z.preprocess(
    blank,
    z.string().max(64, "INFRAMESH_KEEPER_SAMPLE_GATEWAY_PREFIX is at most 64 characters").optional(),
  ),
  INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS: z.preprocess(
    blank,
    z
      .string()
      .transform((text) => text.split(",").map((p) => p.trim()))
      .refine(
        (peers) => peers.every((p) => /^https?:\/\/\S+$/.test(p) && URL.canParse(p)),
        "INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS must be comma-separated http(s) URLs of blob-store peers",
      )
      .optional(),
  ),
  INFRAMESH_KEEPER_SAMPLE_SLASH_BPS: wholeNumber("INFRAMESH_KEEPER_SAMPLE_SLASH_BPS", 1, 10_000),
  INFRAMESH_KEEPER_SAMPLE_EVERY_MS: wholeNumber("INFRAMESH_KEEPER_SAMPLE_EVERY_MS", 100, 86_400_000),
  INFRAMESH_KEEPER_SAMPLE_TIMEOUT_MS: wholeNumber("INFRAMESH_KEEPER_SAMPLE_TIMEOUT_MS", 100, 600_000),
});

function wholeNumber(name: string, min: number, max: number) {
  return z.preprocess(
    blank,
    z
      .string()
      .regex(/^[0-9]{1,15}$/, `${name} must be a whole number from ${min} to ${max}`)
      .transform(Number)
      .refine((n) => n >= min && n <= max, `${name} must be a whole number from ${min} to ${max}`)
      .optional(),
  );
}

/**
 * The sampling configuration from `env`; a list of problems (each naming its variable) when it is
 * not usable. The secret defaults to one derived from the keeper's key, so one secret is enough
 * to run a keeper. Pure.
 */
export function samplingConfig(env: NodeJS.ProcessEnv): { config?: SamplingConfig; problems: string[] } {
  const parsed = samplingEnv.safeParse(env);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => i.message) };
  const e = parsed.data;
  const fraction = e.INFRAMESH_KEEPER_SAMPLE_FRACTION ?? 0;
  const keeperKey = env.INFRAMESH_KEEPER_KEY ?? "";
  const problems: string[] = [];
  if (fraction > 0 && e.INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS === undefined) {
    problems.push(
      "INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS is not set: sampling (INFRAMESH_KEEPER_SAMPLE_FRACTION > 0) publishes its evidence to blob-store peers",
    );
  }
  if (problems.length > 0 || !KEY.test(keeperKey)) return { problems };
  const secret =
    e.INFRAMESH_KEEPER_SAMPLE_SECRET === undefined
      ? createHash("sha256").update(`inframesh-keeper-sampling:${keeperKey.toLowerCase()}`).digest()
      : Buffer.from(e.INFRAMESH_KEEPER_SAMPLE_SECRET.replace(/^0x/, ""), "hex");
  return {
    problems,
    config: {
      fraction,
      secret,
      clientKey: (e.INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY ?? keeperKey) as `0x${string}`,
      gatewayRedisUrl: e.INFRAMESH_KEEPER_SAMPLE_GATEWAY_REDIS_URL,
      gatewayPrefix: e.INFRAMESH_KEEPER_SAMPLE_GATEWAY_PREFIX ?? "inframesh:gw:",
      blobPeers: e.INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS ?? [],
      slashBps: e.INFRAMESH_KEEPER_SAMPLE_SLASH_BPS ?? 10_000,
      everyMs: e.INFRAMESH_KEEPER_SAMPLE_EVERY_MS ?? 5_000,
      rerunTimeoutMs: e.INFRAMESH_KEEPER_SAMPLE_TIMEOUT_MS ?? 30_000,
    },
  };
}
