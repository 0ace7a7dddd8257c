// The oracle's configuration, validated once at start-up with zod. Values come from a YAML or
// JSON file (INFRAMESH_ORACLE_CONFIG) and environment variables, which win over the file. The
// oracle key comes only from INFRAMESH_ORACLE_KEY or an encrypted keystore, never from the file,
// so that the file can be shared and logged.
import { readFileSync } from "node:fs";
import path from "node:path";

import { Wallet } from "ethers";
import { type Address, type Hex, getAddress, isAddress } from "viem";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

import { CONTRACT_KEYS, type ContractKey, parseDeploymentRecord } from "../sdk/deployment.ts";
import { OracleConfigError } from "./errors.ts";

const address = z
  .string()
  .refine((v) => isAddress(v, { strict: false }), "expected a 20-byte address (0x + 40 hex digits)")
  .transform((v) => getAddress(v));

const bps = z.number().int().min(0).max(10_000);

const url = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

/** Contract addresses the oracle reads and writes. */
const contractsSchema = z.strictObject({
  nodeStaking: address,
  modelRegistry: address,
  paymentEscrow: address,
  epochSettlement: address,
  rewardClaims: address,
});

const committeeSchema = z.strictObject({
  /** Every member (this oracle included): its address and its API base URL. */
  members: z.array(z.strictObject({ address, url })).min(1).max(32),
  /** Signatures needed to post; must equal EpochSettlement.threshold(). */
  threshold: z.number().int().min(1).max(32),
  /** A fixed leader; when unset, the lowest address among the live members leads. */
  leader: address.optional(),
});

export const oracleConfigSchema = z.strictObject({
  rpcUrl: url,
  /** A deployments/<network>.json record; or the addresses in `contracts`. */
  deployment: z.string().min(1).optional(),
  contracts: contractsSchema.optional(),
  /** postgres://… ; unset: PGlite in-process at `dataDir`. */
  databaseUrl: z.string().min(1).optional(),
  dataDir: z.string().min(1).default(".oracle-data"),
  redisUrl: z.string().regex(/^rediss?:\/\//, "expected redis:// or rediss://"),
  /** Queue name; give each oracle of a committee sharing one Redis its own. */
  queueName: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, - and _ only")
    .default("inframesh-receipts"),
  workerConcurrency: z.number().int().min(1).max(256).default(16),
  /** Which parts this process runs: the API, the workers, the epoch settlement, or all. */
  roles: z
    .array(z.enum(["api", "worker", "settlement"]))
    .min(1)
    .default(["api", "worker", "settlement"]),
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65_535).default(7310),
  bodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  /** Seconds after expires_at that a receipt still counts as on time (clock skew, queueing). */
  expiryGraceSeconds: z.number().int().min(0).max(3600).default(30),
  /** Lowest NodeStaking tier that may be paid (1 = eligible). */
  minTier: z.number().int().min(0).max(255).default(1),
  /** How long a read block number is reused; chain facts are cached per block. */
  chainCacheMs: z.number().int().min(0).max(60_000).default(1_000),
  /** Receipts still `queued` in the database this long are put on the queue again (Redis lost them). */
  requeueAfterMs: z.number().int().min(100).max(3_600_000).default(60_000),
  sweepIntervalMs: z.number().int().min(100).max(600_000).default(2_000),
  /** Close an epoch this often (seconds); 0: only through POST /v1/epochs/close. */
  epochIntervalSeconds: z.number().int().min(0).default(0),
  /** Drive open epochs (post → final → funded) this often. */
  settlementTickMs: z.number().int().min(100).default(5_000),
  /** Blob-store peers the receipt batch is published to (at least one to settle). */
  blobPeers: z.array(url).default([]),
  /** Used until EpochSettlement.feeSchedule() exists on the deployed contract. */
  feeSchedule: z
    .strictObject({ treasury: address, protocolFeeBps: bps, royaltyBps: bps })
    .refine((f) => f.protocolFeeBps + f.royaltyBps <= 10_000, "protocolFeeBps + royaltyBps exceeds 10000")
    .optional(),
  /** Used until RewardClaims.unallocatedSlash() exists (decimal string). */
  unallocatedSlash: z
    .string()
    .regex(/^[0-9]{1,78}$/)
    .default("0"),
  committee: committeeSchema.optional(),
  /** Protects POST /v1/epochs/close (Bearer token); unset: that route answers 403. */
  adminToken: z.string().min(16, "adminToken must be at least 16 characters").optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type OracleConfigInput = z.input<typeof oracleConfigSchema>;
type ParsedConfig = z.output<typeof oracleConfigSchema>;

/** The validated configuration, with contract addresses resolved and the key loaded. */
export type OracleConfig = Omit<ParsedConfig, "contracts" | "deployment"> & {
  contracts: Record<Exclude<ContractKey, "stakeToken" | "timelock">, Address>;
  /** From the deployment record; otherwise read from the chain at start-up. */
  chainId?: number;
  oracleKey: Hex;
  oracleAddress: Address;
};

/** Environment variables → config keys (numbers and lists parsed). */
const ENV: Record<string, [keyof OracleConfigInput, "string" | "number" | "list"]> = {
  INFRAMESH_RPC_URL: ["rpcUrl", "string"],
  INFRAMESH_DEPLOYMENT: ["deployment", "string"],
  DATABASE_URL: ["databaseUrl", "string"],
  INFRAMESH_ORACLE_DATA_DIR: ["dataDir", "string"],
  REDIS_URL: ["redisUrl", "string"],
  INFRAMESH_ORACLE_QUEUE: ["queueName", "string"],
  INFRAMESH_ORACLE_CONCURRENCY: ["workerConcurrency", "number"],
  INFRAMESH_ORACLE_ROLES: ["roles", "list"],
  INFRAMESH_ORACLE_HOST: ["host", "string"],
  INFRAMESH_ORACLE_PORT: ["port", "number"],
  INFRAMESH_ORACLE_EPOCH_INTERVAL: ["epochIntervalSeconds", "number"],
  INFRAMESH_ORACLE_BLOB_PEERS: ["blobPeers", "list"],
  INFRAMESH_ORACLE_ADMIN_TOKEN: ["adminToken", "string"],
  INFRAMESH_ORACLE_LOG_LEVEL: ["logLevel", "string"],
};

function fromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof OracleConfigInput, unknown>> {
  const out: Partial<Record<keyof OracleConfigInput, unknown>> = {};
  for (const [name, [key, kind]] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    if (kind === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new OracleConfigError(`${name}=${JSON.stringify(raw)} is not a number`);
      out[key] = n;
    } else if (kind === "list") {
      out[key] = raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
    } else out[key] = raw;
  }
  return out;
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new OracleConfigError(`cannot read config file ${file}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new OracleConfigError(`config file ${file} is not valid ${file.endsWith(".json") ? "JSON" : "YAML"}`, {
      cause: error,
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new OracleConfigError(`config file ${file} must hold an object of settings`);
  return parsed as Record<string, unknown>;
}

/** Formats zod issues as "path: message; …". */
export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");
}

function loadKey(env: NodeJS.ProcessEnv): Hex {
  const key = env.INFRAMESH_ORACLE_KEY;
  if (key !== undefined && key !== "") {
    if (!/^0x[0-9a-fA-F]{64}$/.test(key))
      throw new OracleConfigError("INFRAMESH_ORACLE_KEY must be 0x followed by 64 hex digits");
    return key.toLowerCase() as Hex;
  }
  const keystore = env.INFRAMESH_ORACLE_KEYSTORE;
  if (keystore !== undefined && keystore !== "") {
    const password = env.INFRAMESH_ORACLE_KEYSTORE_PASSWORD;
    if (password === undefined)
      throw new OracleConfigError("INFRAMESH_ORACLE_KEYSTORE is set: set INFRAMESH_ORACLE_KEYSTORE_PASSWORD too");
    try {
      return Wallet.fromEncryptedJsonSync(readFileSync(keystore, "utf8"), password).privateKey as Hex;
    } catch (error) {
      throw new OracleConfigError(`cannot decrypt the keystore ${keystore} (wrong file or password)`, {
        cause: error,
      });
    }
  }
  throw new OracleConfigError(
    "no oracle key: set INFRAMESH_ORACLE_KEY (0x…) or INFRAMESH_ORACLE_KEYSTORE and INFRAMESH_ORACLE_KEYSTORE_PASSWORD",
  );
}

/**
 * Validates `input` (file settings already merged with the environment) and resolves the
 * contracts. Throws OracleConfigError naming every wrong setting.
 */
export function parseOracleConfig(input: unknown, env: NodeJS.ProcessEnv = process.env): OracleConfig {
  const result = oracleConfigSchema.safeParse(input);
  if (!result.success) throw new OracleConfigError(describeIssues(result.error));
  const { deployment, contracts, ...rest } = result.data;
  let resolved: OracleConfig["contracts"];
  let chainId: number | undefined;
  if (contracts !== undefined) resolved = contracts;
  else if (deployment !== undefined) {
    let record;
    try {
      record = parseDeploymentRecord(JSON.parse(readFileSync(deployment, "utf8")));
    } catch (error) {
      throw new OracleConfigError(`cannot use deployment record ${deployment}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const pick = (key: ContractKey) => record.contracts[key].address;
    resolved = {
      nodeStaking: pick("nodeStaking"),
      modelRegistry: pick("modelRegistry"),
      paymentEscrow: pick("paymentEscrow"),
      epochSettlement: pick("epochSettlement"),
      rewardClaims: pick("rewardClaims"),
    };
    chainId = record.chainId;
  } else
    throw new OracleConfigError(
      `set deployment (INFRAMESH_DEPLOYMENT=deployments/<network>.json) or contracts {${CONTRACT_KEYS.slice(2).join(", ")}}`,
    );
  if (rest.committee !== undefined && rest.committee.threshold > rest.committee.members.length)
    throw new OracleConfigError("committee.threshold exceeds the number of committee members");
  const oracleKey = loadKey(env);
  const oracleAddress = getAddress(new Wallet(oracleKey).address);
  return { ...rest, contracts: resolved, ...(chainId === undefined ? {} : { chainId }), oracleKey, oracleAddress };
}

/** Reads the config file named by INFRAMESH_ORACLE_CONFIG (if any), applies the environment, validates. */
export function loadOracleConfig(env: NodeJS.ProcessEnv = process.env): OracleConfig {
  const file = env.INFRAMESH_ORACLE_CONFIG;
  const fromFile = file ? readConfigFile(path.resolve(file)) : {};
  return parseOracleConfig({ ...fromFile, ...fromEnv(env) }, env);
}
