// Wires one oracle process: database, chain, queue, workers, settlement and the HTTP API, per the
// roles it runs. `startOracle` returns once the API listens; `close` stops everything in order.
import { readFile } from "node:fs/promises";
import type { Server } from "node:http";
import path from "node:path";

import { type Logger, pino } from "pino";
import type { TypedDataDomain } from "viem";

import { inframeshDomain } from "../sdk/eip712.ts";
import { createApi, listen } from "./api.ts";
import { connectChain, type OracleChain } from "./chain.ts";
import { committeeClient, signAsFollower } from "./committee.ts";
import type { OracleConfig } from "./config.ts";
import { createMetrics, type OracleMetrics } from "./metrics.ts";
import { createReceiptQueue, type ReceiptQueue } from "./queue.ts";
import type { ZkVerifierRegistry } from "./rules/zk.ts";
import { EpochSettler } from "./settlement/machine.ts";
import { openDb } from "./store/db.ts";
import { OracleStore, type EpochRow } from "./store/store.ts";
import { startWorkers } from "./worker.ts";
import { loadZkVerifiers } from "./zk.ts";

export interface RunningOracle {
  url: string;
  server: Server | undefined;
  store: OracleStore;
  chain: OracleChain;
  queue: ReceiptQueue;
  domain: TypedDataDomain;
  metrics: OracleMetrics;
  settler: EpochSettler;
  logger: Logger;
  /** Re-enqueues receipts the queue lost (runs on a timer too). */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** The zk verifiers (default: Groth16 simplenet, and ezkl where circuits/ezkl/ holds its artifacts). */
  zk?: ZkVerifierRegistry;
  logger?: Logger;
  onEpochStep?: (row: EpochRow) => void;
  onVerdict?: (jobId: string, status: "verified" | "rejected") => void;
}

export async function startOracle(config: OracleConfig, options: StartOptions = {}): Promise<RunningOracle> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      base: { service: "oracle", oracle: config.oracleAddress },
      redact: ["key", "token"],
    });
  const metrics = createMetrics();
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const store = new OracleStore(db);
  const chain = await connectChain(config);
  const zk = options.zk ?? (await loadZkVerifiers(chain.publicClient));
  logger.info({ systems: zk.systems() }, "zk verifiers registered");
  const domain = inframeshDomain(chain.chainId, config.contracts.epochSettlement);
  const queue = createReceiptQueue(config.redisUrl, config.queueName);
  const roles = new Set(config.roles);

  const verifierDeps = {
    store,
    chain,
    domain,
    zk,
    expiryGraceSeconds: config.expiryGraceSeconds,
    minTier: config.minTier,
    metrics,
    ...(options.onVerdict ? { onVerdict: options.onVerdict } : {}),
  };
  const workers = roles.has("worker")
    ? startWorkers({
        ...verifierDeps,
        redisUrl: config.redisUrl,
        queueName: config.queueName,
        concurrency: config.workerConcurrency,
        logger,
      })
    : undefined;

  const committee = config.committee
    ? committeeClient({ committee: config.committee, self: config.oracleAddress, domain })
    : undefined;
  const settler = new EpochSettler({
    store,
    chain,
    domain,
    blobPeers: config.blobPeers,
    dataDir: config.dataDir,
    logger,
    threshold: async () => (await chain.committee()).threshold,
    ...(committee ? { committee } : {}),
    onStep: (row) => {
      metrics.epoch.reset();
      metrics.epoch.set({ epoch: row.epoch.toString(), state: row.state }, 1);
      logger.info({ epoch: row.epoch.toString(), state: row.state, tx: row.txHash }, "epoch step");
      options.onEpochStep?.(row);
    },
  });

  const sweep = async (): Promise<number> => {
    const stale = await store.staleQueued(Date.now() - config.requeueAfterMs, 5_000);
    if (stale.length === 0) return 0;
    await queue.enqueueMany(stale);
    await store.touchQueued(stale.map((s) => s.jobId));
    metrics.requeued.inc(stale.length);
    logger.info({ count: stale.length }, "requeued receipts the queue had lost");
    return stale.length;
  };

  const timers: NodeJS.Timeout[] = [];
  let closing = false;
  const every = (ms: number, what: string, fn: () => Promise<unknown>) => {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || closing) return;
      busy = true;
      fn()
        .catch((error: unknown) =>
          logger.warn({ err: error instanceof Error ? error.message : String(error) }, `${what} failed`),
        )
        .finally(() => {
          busy = false;
        });
    }, ms);
    timer.unref();
    timers.push(timer);
  };
  if (roles.has("api") || roles.has("worker")) every(config.sweepIntervalMs, "sweep", sweep);
  if (roles.has("settlement")) {
    every(config.settlementTickMs, "settlement tick", () => settler.tick());
    if (config.epochIntervalSeconds > 0)
      every(config.epochIntervalSeconds * 1000, "epoch close", () => settler.closeEpoch());
  }

  let server: Server | undefined;
  let url = "";
  if (roles.has("api")) {
    const app = createApi({
      store,
      queue,
      logger,
      metrics,
      bodyLimitBytes: config.bodyLimitBytes,
      adminToken: config.adminToken,
      readBatch: (hash: string) =>
        readFile(path.join(config.dataDir, "batches", hash)).then(
          (bytes) => new Uint8Array(bytes),
          () => undefined,
        ),
      ...(roles.has("settlement") ? { closeEpoch: (epoch?: bigint) => settler.closeEpoch(epoch) } : {}),
      ...(committee
        ? {
            signEpoch: (epoch: bigint, request: unknown) =>
              signAsFollower(
                {
                  store,
                  chain,
                  domain,
                  zk,
                  blobPeers: config.blobPeers,
                  dataDir: config.dataDir,
                  expiryGraceSeconds: config.expiryGraceSeconds,
                  minTier: config.minTier,
                  logger,
                },
                epoch,
                request as { settlement: Record<string, string> },
              ),
          }
        : {}),
      ready: async () => {
        await db.query("SELECT 1");
        return queue.ping();
      },
    });
    server = await listen(app, config.host, config.port);
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : config.port;
    url = `http://${config.host}:${port}`;
  }
  // Receipts recorded before a crash or a Redis outage go back on the queue now, not after the timer.
  if (roles.has("api") || roles.has("worker")) await sweepOnStart(store, queue, logger);
  logger.info({ url, roles: [...roles], chainId: chain.chainId }, "oracle started");

  return {
    url,
    server,
    store,
    chain,
    queue,
    domain,
    metrics,
    settler,
    logger,
    sweep,
    async close() {
      closing = true;
      for (const t of timers) clearInterval(t);
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      server?.closeAllConnections();
      await workers?.close();
      await queue.close();
      await db.close();
    },
  };
}

async function sweepOnStart(store: OracleStore, queue: ReceiptQueue, logger: Logger): Promise<void> {
  try {
    for (;;) {
      const stale = await store.staleQueued(Date.now() + 1, 5_000);
      if (stale.length === 0) return;
      await queue.enqueueMany(stale);
      await store.touchQueued(stale.map((s) => s.jobId));
      logger.info({ count: stale.length }, "re-enqueued queued receipts at start");
      if (stale.length < 5_000) return;
    }
  } catch (error) {
    logger.warn({ err: String(error) }, "start-up sweep failed; the timer retries");
  }
}
