// The keeper service: the event indexer following the chain, BullMQ job schedulers on Redis, one
// worker, and an HTTP endpoint with /healthz, /metrics and triggers. The jobs come in groups: the
// chain-only ones here (finalise settlements whose challenge window has passed; notify stakers
// whose unbonding locks matured), epoch close on a schedule (epoch-close.ts) and the SLA watch
// with its slashes (sla-watch.ts). A group is a module given a KeeperContext that returns its
// schedulers and handlers (context.ts), so another (validator sampling) is wired the same way.
//
// Exactly one on-chain action per epoch and per violation, whatever happens around it: job ids
// derived from the epoch or the evidence hash collapse duplicate triggers; every job reads the
// chain before it sends (a settlement already final, an evidence hash already used, is recorded,
// not sent again), so a Redis restart that forgets finished jobs, a retry after an RPC outage, or
// a restart after a crash between sending and recording all end without a second transaction;
// and a keeper account with a transaction still pending sends nothing new until it is mined.
import type { Server } from "node:http";

import { DelayedError, Queue, Worker, type Job } from "bullmq";
import express from "express";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { createWalletClient, http, type Address, type Hash, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { describeRevert } from "../sdk/staking.ts";
import { connect, type NetworkConnection } from "./chain.ts";
import type { KeeperConfig } from "./config.ts";
import {
  CRASH_AFTER_SEND_FOR_TESTS,
  KeeperJobError,
  type JobData,
  type JobHandler,
  type KeeperContext,
  type KeeperJobGroup,
} from "./context.ts";
import { epochCloseJobs } from "./epoch-close.ts";
import { openDatabase, type Database } from "./indexer/db.ts";
import { Indexer, readCursor } from "./indexer/indexer.ts";
import { followedContracts } from "./indexer/logic.ts";
import { startSampling } from "./sampling/worker.ts";
import {
  epochLengthProblem,
  epochSettlementAbi,
  finaliseDecision,
  finaliseJobId,
  parseEpoch,
  paymentEscrowDelayAbi,
  settlementStatus,
  unbondingJobId,
  unbondingNotice,
  type UnbondingLock,
} from "./jobs.ts";
import { slaJobs } from "./sla-watch.ts";

export const QUEUE_NAME = "inframesh-keeper";

export { KeeperJobError };

type LockData = Omit<UnbondingLock, "withdrawableAt"> & { withdrawableAt: string };

export interface RunningKeeper {
  url: string;
  stop(): Promise<void>;
}

interface Metrics {
  registry: Registry;
  lastFinalisedEpoch: Gauge;
  failures: Counter;
  finaliseTransactions: Counter;
  notifications: Counter;
}

function createMetrics(
  queue: Queue,
  indexerState: () => Promise<{ lastBlock: number; headBlock: number } | null>,
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "inframesh_keeper_" });
  new Gauge({
    name: "inframesh_keeper_queue_jobs",
    help: "Jobs in the keeper's queue, by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed", "prioritized");
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: "inframesh_indexer_last_block",
    help: "Last block the indexer has read",
    registers: [registry],
    async collect() {
      const state = await indexerState();
      if (state !== null) this.set(state.lastBlock);
    },
  });
  return {
    registry,
    lastFinalisedEpoch: new Gauge({
      name: "inframesh_keeper_last_finalised_epoch",
      help: "Highest epoch whose settlement is final on chain (-1: none yet)",
      registers: [registry],
    }),
    failures: new Counter({
      name: "inframesh_keeper_job_failures_total",
      help: "Job attempts that failed (each is retried with backoff until its attempts run out)",
      labelNames: ["job"],
      registers: [registry],
    }),
    finaliseTransactions: new Counter({
      name: "inframesh_keeper_finalise_transactions_total",
      help: "finalise transactions this keeper sent",
      registers: [registry],
    }),
    notifications: new Counter({
      name: "inframesh_keeper_unbonding_notifications_total",
      help: "Matured unbonding locks notified",
      registers: [registry],
    }),
  };
}

/** How long the keeper waits for Redis at start before it says it cannot reach it. */
const REDIS_START_TIMEOUT_MS = 5_000;

/** Starts the keeper; resolves once it serves HTTP. A failed start closes what it opened. */
export async function startKeeper(config: KeeperConfig, logger: Logger): Promise<RunningKeeper> {
  const cleanups: Array<() => unknown> = [];
  try {
    return await startKeeperWith(config, logger, cleanups);
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
    throw error;
  }
}

async function startKeeperWith(
  config: KeeperConfig,
  logger: Logger,
  cleanups: Array<() => unknown>,
): Promise<RunningKeeper> {
  if (config.redisUrl === undefined) throw new KeeperJobError("REDIS_URL is not set");
  const network: NetworkConnection = await connect(config.deploymentsDir, config.network, config.rpcUrl);
  const { record, publicClient } = network;
  const chainId = record.chainId;
  const settlement = record.contracts.epochSettlement.address;
  if (config.epochMs !== undefined) {
    const [challengeWindow, withdrawalDelay] = await Promise.all([
      publicClient.readContract({ address: settlement, abi: epochSettlementAbi, functionName: "challengeWindow" }),
      publicClient.readContract({
        address: record.contracts.paymentEscrow.address,
        abi: paymentEscrowDelayAbi,
        functionName: "withdrawalDelay",
      }),
    ]);
    const problem = epochLengthProblem(config.epochMs, BigInt(challengeWindow), BigInt(withdrawalDelay));
    if (problem !== null) throw new KeeperJobError(problem);
  }
  const nodeStaking = record.contracts.nodeStaking.address;
  const account = privateKeyToAccount(config.keeperKey);
  const wallet = createWalletClient({
    account,
    chain: network.chain,
    transport: http(network.rpcUrl, { retryCount: 0 }),
  });
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  cleanups.push(() => connection.disconnect());
  let redisError: unknown;
  connection.on("error", (error) => {
    redisError = error;
    logger.warn({ err: error }, "redis connection error");
  });
  // Commands wait for Redis forever (BullMQ needs that later); at start, a missing Redis is an error.
  const reached = await Promise.race([
    connection.ping().then(
      () => true,
      () => false,
    ),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), REDIS_START_TIMEOUT_MS).unref()),
  ]);
  if (!reached) {
    throw new KeeperJobError(
      `cannot reach Redis at ${config.redisUrl} within ${REDIS_START_TIMEOUT_MS} ms` +
        `${redisError instanceof Error ? ` (${redisError.message})` : ""}: start it or fix REDIS_URL`,
      { cause: redisError },
    );
  }
  const db: Database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  cleanups.push(() => db.close());

  const queue = new Queue<JobData>(QUEUE_NAME, { connection });
  cleanups.push(() => queue.close());
  queue.on("error", (error) => logger.warn({ err: error }, "queue error"));
  const metrics = createMetrics(queue, () => readCursor(db, chainId));
  let lastFinalised = -1n;
  metrics.lastFinalisedEpoch.set(-1);
  const noteFinalised = (epoch: bigint): void => {
    if (epoch > lastFinalised) lastFinalised = epoch;
    metrics.lastFinalisedEpoch.set(Number(lastFinalised));
  };

  const jobOptions = {
    attempts: config.attempts,
    backoff: { type: "exponential", delay: config.backoffMs },
    // Finished jobs leave Redis: a later trigger runs again and finds the chain state.
    removeOnComplete: true,
    removeOnFail: true,
  } as const;

  async function chainTime(client: PublicClient): Promise<bigint> {
    const block = await client.getBlock({ blockTag: "latest" });
    return block.timestamp;
  }

  async function assertNothingPending(): Promise<void> {
    const [latest, pending] = await Promise.all([
      publicClient.getTransactionCount({ address: account.address, blockTag: "latest" }),
      publicClient.getTransactionCount({ address: account.address, blockTag: "pending" }),
    ]);
    if (pending > latest) {
      throw new KeeperJobError(`the keeper account has ${pending - latest} transaction(s) pending: waiting for them`);
    }
  }

  const context: KeeperContext = {
    config,
    chainId,
    record,
    publicClient,
    wallet,
    db,
    queue,
    logger,
    registry: metrics.registry,
    jobOptions,
    recordAction,
    chainTime: () => chainTime(publicClient),
    assertNothingPending,
  };
  const epochs = epochCloseJobs(context, (epoch, delayMs) => scheduleFinalise(epoch, delayMs));
  const groups: KeeperJobGroup[] = [epochs, slaJobs(context)];
  cleanups.push(async () => {
    for (const group of groups) await group.close?.();
  });
  const schedulers = [
    { id: "finalise-scan", every: config.finaliseEveryMs },
    { id: "unbonding-scan", every: config.unbondingEveryMs },
    ...groups.flatMap((group) => group.schedulers),
  ];

  /**
   * (Re)creates the schedulers: Redis keeps nothing on disk, so a restarted Redis has none. A
   * scheduler an earlier run configured and this one does not (a job group switched off) goes.
   */
  async function ensureSchedulers(): Promise<void> {
    const wanted = new Set(schedulers.map((s) => s.id));
    for (const existing of await queue.getJobSchedulers()) {
      if (!wanted.has(existing.key)) await queue.removeJobScheduler(existing.key);
    }
    for (const { id, every } of schedulers) {
      await queue.upsertJobScheduler(id, { every }, { name: id, opts: jobOptions });
    }
  }
  connection.on("ready", () => {
    ensureSchedulers().catch((error: unknown) => logger.warn({ err: error }, "cannot create the job schedulers"));
  });

  async function readSettlement(epoch: bigint) {
    return publicClient.readContract({
      address: settlement,
      abi: epochSettlementAbi,
      functionName: "settlementOf",
      args: [epoch],
    });
  }

  async function enqueueFinalise(epoch: bigint): Promise<string> {
    const jobId = finaliseJobId(chainId, epoch);
    await queue.add("finalise", { epoch: epoch.toString() }, { ...jobOptions, jobId });
    return jobId;
  }

  /**
   * A finalise job for an epoch the keeper closed, due when its challenge window ends: it follows
   * the epoch (waits again while the window is open) instead of ending on "window open".
   */
  async function scheduleFinalise(epoch: bigint, delayMs: number): Promise<void> {
    await queue.add(
      "finalise",
      { epoch: epoch.toString(), follow: true },
      { ...jobOptions, jobId: finaliseJobId(chainId, epoch), delay: Math.min(delayMs, config.finaliseEveryMs) },
    );
  }

  async function recordAction(key: string, kind: string, txHash: Hash | null, detail: object): Promise<void> {
    await db.query(
      "insert into keeper_actions (action_key, kind, tx_hash, detail) values ($1, $2, $3, $4) on conflict (action_key) do nothing",
      [key, kind, txHash, JSON.stringify(detail)],
    );
  }

  async function finaliseScan(): Promise<string> {
    const next = await publicClient.readContract({
      address: settlement,
      abi: epochSettlementAbi,
      functionName: "nextEpoch",
    });
    if (next > 0n && settlementStatus((await readSettlement(next - 1n)).status) === "Finalised")
      noteFinalised(next - 1n);
    const decision = finaliseDecision(await readSettlement(next), await chainTime(publicClient));
    if (decision.action !== "send") return decision.action;
    return enqueueFinalise(next);
  }

  async function finalise(epoch: bigint, follow?: { job: Job<JobData>; token: string | undefined }): Promise<string> {
    const key = finaliseJobId(chainId, epoch);
    const decision = finaliseDecision(await readSettlement(epoch), await chainTime(publicClient));
    if (decision.action === "done") {
      // Final already: by this keeper before a crash, or by anyone else. Record it, send nothing.
      const [event] = await db.query<{ tx_hash: Hash }>(
        `select tx_hash from chain_events where chain_id = $1 and address = $2 and event_name = 'SettlementFinalised'
         and args->>'epoch' = $3 limit 1`,
        [chainId, settlement, epoch.toString()],
      );
      await recordAction(key, "finalise", event?.tx_hash ?? null, {
        epoch: epoch.toString(),
        observed: "final on chain",
      });
      noteFinalised(epoch);
      return "already final";
    }
    if (decision.action === "nothing") return `nothing to finalise: settlement ${decision.status}`;
    if (decision.action === "wait") {
      if (follow === undefined) return `challenge window open until ${decision.finalisableAt}`;
      // Chain time can jump (a test chain's evm_increaseTime): look again at least every scan period.
      const seconds = decision.finalisableAt - (await chainTime(publicClient));
      const delayMs = Math.min(Math.max(Number(seconds) * 1000, 0), config.finaliseEveryMs);
      await follow.job.moveToDelayed(Date.now() + delayMs, follow.token);
      throw new DelayedError();
    }

    await assertNothingPending();
    let hash: Hash;
    try {
      const { request } = await publicClient.simulateContract({
        address: settlement,
        abi: epochSettlementAbi,
        functionName: "finalise",
        args: [epoch],
        account,
      });
      hash = await wallet.writeContract(request);
    } catch (error) {
      throw new KeeperJobError(`finalise(${epoch}) not sent: ${describeRevert(error) ?? (error as Error).message}`, {
        cause: error,
      });
    }
    metrics.finaliseTransactions.inc();
    logger.info({ epoch: epoch.toString(), tx: hash }, "finalise sent");
    if (CRASH_AFTER_SEND_FOR_TESTS) process.kill(process.pid, "SIGKILL");
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new KeeperJobError(`finalise(${epoch}) transaction ${hash} reverted`);
    await recordAction(key, "finalise", hash, {
      epoch: epoch.toString(),
      observed: "sent",
      block: Number(receipt.blockNumber),
    });
    noteFinalised(epoch);
    return `finalised in ${hash}`;
  }

  async function unbondingScan(): Promise<string> {
    const now = await chainTime(publicClient);
    const rows = await db.query<{
      node: string;
      staker: string;
      lock_id: string;
      amount: string;
      withdrawable_at: unknown;
    }>(
      `select u.args->>'node' as node, u.args->>'staker' as staker, u.args->>'lockId' as lock_id,
              u.args->>'amount' as amount, (u.args->>'withdrawableAt')::bigint as withdrawable_at
       from chain_events u
       where u.chain_id = $1 and u.address = $2 and u.event_name = 'Unbonded' and u.confirmed
         and (u.args->>'withdrawableAt')::bigint <= $3
         and not exists (select 1 from unbonding_notifications n where n.chain_id = u.chain_id
               and n.node = u.args->>'node' and n.staker = u.args->>'staker' and n.lock_id = u.args->>'lockId')
         and not exists (select 1 from chain_events r where r.chain_id = u.chain_id and r.address = u.address
               and r.event_name in ('Rebonded', 'Withdrawn') and r.args->>'node' = u.args->>'node'
               and r.args->>'staker' = u.args->>'staker' and r.args->>'lockId' = u.args->>'lockId')
       order by u.block_number, u.log_index limit 500`,
      [chainId, nodeStaking, now.toString()],
    );
    for (const row of rows) {
      const lock = { node: row.node, staker: row.staker, lockId: row.lock_id, amount: row.amount };
      await queue.add(
        "unbonding-notify",
        { lock: { ...lock, withdrawableAt: String(row.withdrawable_at) } },
        { ...jobOptions, jobId: unbondingJobId(chainId, lock) },
      );
    }
    return `${rows.length} matured`;
  }

  async function notifyUnbonding(data: LockData, jobId: string): Promise<string> {
    const lock: UnbondingLock = { ...data, withdrawableAt: BigInt(data.withdrawableAt) };
    const done = await db.query(
      "select 1 from unbonding_notifications where chain_id = $1 and node = $2 and staker = $3 and lock_id = $4",
      [chainId, lock.node, lock.staker, lock.lockId],
    );
    if (done.length > 0) return "already notified";
    const notice = unbondingNotice(chainId, lock);
    logger.info(notice, `unbonding lock ${lock.lockId} of ${lock.staker} on ${lock.node} has matured: withdraw it`);
    if (config.webhookUrl !== undefined) {
      // The job id is the idempotency key: a crash between the POST and the record below repeats
      // the POST once, with the same key, so the receiver can drop the repeat.
      const response = await fetch(config.webhookUrl, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": jobId },
        body: JSON.stringify(notice),
        signal: AbortSignal.timeout(10_000),
      }).catch((error: unknown) => {
        throw new KeeperJobError(`unbonding webhook unreachable: ${(error as Error).message}`, { cause: error });
      });
      if (!response.ok) throw new KeeperJobError(`unbonding webhook answered ${response.status}`);
    }
    await db.query(
      `insert into unbonding_notifications (chain_id, node, staker, lock_id, amount, withdrawable_at)
       values ($1, $2, $3, $4, $5, $6) on conflict do nothing`,
      [chainId, lock.node, lock.staker, lock.lockId, lock.amount, lock.withdrawableAt.toString()],
    );
    metrics.notifications.inc();
    return "notified";
  }

  const handlers: Record<string, JobHandler> = {
    "finalise-scan": async () => finaliseScan(),
    finalise: async (job, token) =>
      finalise(parseEpoch(job.data.epoch), job.data.follow === true ? { job, token } : undefined),
    "unbonding-scan": async () => unbondingScan(),
    "unbonding-notify": async (job) => {
      const lock = job.data.lock as LockData | undefined;
      if (lock === undefined) throw new KeeperJobError("unbonding-notify job without a lock");
      return notifyUnbonding(lock, job.id ?? "");
    },
  };
  for (const group of groups) Object.assign(handlers, group.handlers);

  const worker = new Worker<JobData>(
    QUEUE_NAME,
    async (job: Job<JobData>, token?: string) => {
      const handler = handlers[job.name];
      if (handler === undefined) throw new KeeperJobError(`unknown job ${job.name}`);
      return handler(job, token);
    },
    {
      connection,
      concurrency: 1,
      lockDuration: config.lockMs,
      stalledInterval: config.lockMs,
      maxStalledCount: 5,
    },
  );
  worker.on("failed", (job, error) => {
    metrics.failures.inc({ job: job?.name ?? "unknown" });
    logger.warn({ job: job?.name, id: job?.id, attempt: job?.attemptsMade, err: error.message }, "job failed");
  });
  worker.on("completed", (job, result) => {
    if (!job.name.endsWith("-scan")) logger.info({ job: job.name, id: job.id, result }, "job done");
  });
  worker.on("error", (error) => logger.warn({ err: error }, "worker error"));
  cleanups.push(() => worker.close());

  const indexer = new Indexer({
    db,
    publicClient,
    chainId,
    contracts: followedContracts(record),
    confirmations: config.confirmations,
    blockSpan: config.blockSpan,
    logger,
  });
  const stopIndexer = new AbortController();
  const indexing = indexer.run({ pollMs: config.pollMs, signal: stopIndexer.signal });
  cleanups.push(async () => {
    stopIndexer.abort();
    await indexing;
  });
  await ensureSchedulers();
  const sampling = await startSampling({
    ...config,
    chainId,
    record,
    publicClient,
    wallet,
    account,
    connection,
    redisUrl: config.redisUrl,
    db,
    registry: metrics.registry,
    logger,
  });
  cleanups.push(() => sampling.stop());

  const app = express();
  app.use(express.json({ limit: "4kb" }));
  app.get("/healthz", async (_req, res) => {
    const checks = await Promise.allSettled([
      connection.ping(),
      readCursor(db, chainId),
      publicClient.getBlockNumber({ cacheTime: 0 }),
    ]);
    const [redis, cursor, head] = checks;
    const ok = checks.every((c) => c.status === "fulfilled");
    res.status(ok ? 200 : 503).json({
      ok,
      chainId,
      keeper: account.address,
      redis: redis.status === "fulfilled" ? "ok" : String(redis.reason),
      database: cursor.status === "fulfilled" ? db.kind : String(cursor.reason),
      chainHead: head.status === "fulfilled" ? Number(head.value) : null,
      indexer: cursor.status === "fulfilled" ? cursor.value : null,
    });
  });
  app.get("/metrics", async (_req, res) => {
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (error) {
      res
        .status(503)
        .type("text/plain")
        .send(`metrics unavailable: ${(error as Error).message}\n`);
    }
  });
  app.post("/jobs/finalise", async (req, res) => {
    let epoch: bigint;
    try {
      epoch = parseEpoch((req.body as { epoch?: unknown } | undefined)?.epoch);
    } catch (error) {
      res.status(400).json({ error: `${(error as Error).message}: send {"epoch": "<n>"}` });
      return;
    }
    try {
      res.status(202).json({ jobId: await enqueueFinalise(epoch) });
    } catch (error) {
      res.status(503).json({ error: `cannot queue the job: ${(error as Error).message}` });
    }
  });
  app.post("/jobs/close-epoch", async (_req, res) => {
    if (config.epochMs === undefined) {
      res.status(409).json({ error: "epoch close is off: set INFRAMESH_KEEPER_EPOCH_MS and the oracle settings" });
      return;
    }
    try {
      res.status(202).json(await epochs.closeNow());
    } catch (error) {
      res.status(503).json({ error: `cannot queue the job: ${(error as Error).message}` });
    }
  });
  app.post("/jobs/sla-scan", async (_req, res) => {
    if (config.slaEveryMs === undefined) {
      res.status(409).json({ error: "the SLA watch is off: set INFRAMESH_KEEPER_SLA_EVERY_MS and the blob peer" });
      return;
    }
    try {
      // A random id: each trigger is a scan; the slashes it finds collapse into one job per evidence.
      const job = await queue.add("sla-scan", {}, jobOptions);
      res.status(202).json({ jobId: job.id });
    } catch (error) {
      res.status(503).json({ error: `cannot queue the job: ${(error as Error).message}` });
    }
  });
  // Malformed JSON and the like: a 400 saying so, never a 5xx.
  app.use(
    (error: Error & { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      const status = error.status !== undefined && error.status >= 400 && error.status < 500 ? error.status : 500;
      res.status(status).json({ error: status === 500 ? "internal error" : `bad request: ${error.message}` });
    },
  );

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.port;
  const url = `http://${config.host}:${port}`;
  logger.info({ url, chainId, keeper: account.address as Address, db: db.kind }, "keeper started");

  // Once: a caller that stops the keeper early and its cleanup list that stops it again.
  let stopped: Promise<void> | undefined;
  return {
    url,
    stop() {
      stopped ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        stopIndexer.abort();
        await indexing;
        await sampling.stop();
        await worker.close();
        await queue.close();
        for (const group of groups) await group.close?.();
        connection.disconnect();
        await db.close();
      })();
      return stopped;
    },
  };
}
