#!/usr/bin/env node
// The event indexer on its own: `node keeper/indexer/main.ts [--once]`. Configuration from the
// environment (see docs/keeper.md): INFRAMESH_NETWORK, INFRAMESH_RPC_URL, DATABASE_URL or
// INFRAMESH_DATA_DIR, INFRAMESH_CONFIRMATIONS, INFRAMESH_INDEXER_BLOCK_SPAN, INFRAMESH_INDEXER_POLL_MS.
// `--once` catches up to the chain's head and exits; otherwise it follows the chain until SIGTERM.
import { pino } from "pino";

import { connect } from "../chain.ts";
import { indexerConfig } from "../config.ts";
import { openDatabase } from "./db.ts";
import { Indexer } from "./indexer.ts";
import { followedContracts } from "./logic.ts";

const logger = pino({ name: "indexer", level: process.env.INFRAMESH_LOG_LEVEL ?? "info" });

async function main(): Promise<number> {
  const once = process.argv.includes("--once");
  const config = indexerConfig(process.env);
  const network = await connect(config.deploymentsDir, config.network, config.rpcUrl);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const indexer = new Indexer({
    db,
    publicClient: network.publicClient,
    chainId: network.record.chainId,
    contracts: followedContracts(network.record),
    confirmations: config.confirmations,
    blockSpan: config.blockSpan,
    logger,
  });
  logger.info({ network: config.network, chainId: network.record.chainId, db: db.kind }, "indexer started");
  try {
    if (once) {
      const result = await indexer.syncOnce();
      logger.info(result, "caught up");
      return 0;
    }
    const stop = new AbortController();
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => stop.abort());
    await indexer.run({ pollMs: config.pollMs, signal: stop.signal });
    return 0;
  } finally {
    await db.close();
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  logger.error({ err: error }, (error as Error).message);
  process.exitCode = 1;
}
