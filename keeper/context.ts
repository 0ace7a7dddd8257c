// What every group of keeper jobs gets from the service (the chain, the keeper's account, the
// database, the queue, metrics) and what it gives back (its schedulers and job handlers). The
// service owns the connections and one worker; each group (epochs, SLA, later validator
// sampling) is a module that registers handlers under its own job names.
import type { Job, Queue } from "bullmq";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Account, Chain, Hash, PublicClient, Transport, WalletClient } from "viem";

import type { DeploymentRecord } from "../sdk/deployment.ts";
import type { KeeperConfig } from "./config.ts";
import type { Database } from "./indexer/db.ts";

/** A job that should be retried later (the chain, an oracle or the keeper's account is not ready). */
export class KeeperJobError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "KeeperJobError";
  }
}

/**
 * Test hook, named as one: with INFRAMESH_KEEPER_TEST_CRASH_AFTER_SEND=1 the keeper SIGKILLs
 * itself right after a transaction (finalise, slash) is sent and before it is recorded, so a test
 * can check that the restarted keeper reads the chain and does not send again.
 */
export const CRASH_AFTER_SEND_FOR_TESTS = process.env.INFRAMESH_KEEPER_TEST_CRASH_AFTER_SEND === "1";

export type JobData = Record<string, unknown>;

export interface JobOptions {
  attempts: number;
  backoff: { type: "exponential"; delay: number };
  removeOnComplete: true;
  removeOnFail: true;
}

export interface KeeperContext {
  config: KeeperConfig;
  chainId: number;
  record: DeploymentRecord;
  publicClient: PublicClient;
  wallet: WalletClient<Transport, Chain, Account>;
  db: Database;
  queue: Queue<JobData>;
  logger: Logger;
  registry: Registry;
  jobOptions: JobOptions;
  /** Records what the keeper did or found, once per key (the job id). */
  recordAction(key: string, kind: string, txHash: Hash | null, detail: object): Promise<void>;
  /** The latest block's timestamp. */
  chainTime(): Promise<bigint>;
  /** Throws a KeeperJobError while the keeper account has a transaction pending: send nothing new. */
  assertNothingPending(): Promise<void>;
}

export type JobHandler = (job: Job<JobData>, token: string | undefined) => Promise<string>;

export interface KeeperJobGroup {
  /** Job schedulers (repeatable jobs) to (re)create whenever Redis is (re)connected. */
  schedulers: Array<{ id: string; every: number }>;
  handlers: Record<string, JobHandler>;
  close?(): Promise<void>;
}
