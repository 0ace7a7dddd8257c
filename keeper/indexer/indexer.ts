// The event indexer's I/O: reads logs of every followed contract in bounded block ranges, writes
// each range and the cursor in one transaction, keeps the hashes of the unconfirmed tip and rolls
// back what a re-org replaced. A process killed at any point resumes from the last committed
// range: nothing is lost and, the rows being keyed by (block hash, log index), nothing is doubled.
import type { Logger } from "pino";
import type { PublicClient } from "viem";

import type { Database, SqlClient, SqlParam } from "./db.ts";
import {
  confirmedHeight,
  decodeLog,
  isUnconfirmed,
  planRanges,
  reorgStart,
  startBlock,
  type FollowedContract,
  type IndexedEvent,
  type RawLog,
} from "./logic.ts";

export interface IndexerOptions {
  db: Database;
  publicClient: PublicClient;
  chainId: number;
  contracts: readonly FollowedContract[];
  /** Blocks on top of a block before its events count as confirmed (0: at once). */
  confirmations: number;
  /** Most blocks per getLogs call (and per transaction). */
  blockSpan: number;
  logger?: Logger | undefined;
}

/** What one pass did. */
export interface SyncResult {
  head: number;
  lastBlock: number;
  confirmedBlock: number;
  inserted: number;
  /** First block rolled back by a re-org, when one was found. */
  reorgFrom: number | null;
}

/** The chain changed while a range was being read: the pass stops, the next one re-reads. */
export class ChainMovedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChainMovedError";
  }
}

export interface Cursor {
  lastBlock: number;
  confirmedBlock: number;
  headBlock: number;
}

export async function readCursor(db: SqlClient, chainId: number): Promise<Cursor | null> {
  const [row] = await db.query<{ last_block: unknown; confirmed_block: unknown; head_block: unknown }>(
    "select last_block, confirmed_block, head_block from indexer_cursors where chain_id = $1",
    [chainId],
  );
  if (row === undefined) return null;
  return {
    lastBlock: Number(row.last_block),
    confirmedBlock: Number(row.confirmed_block),
    headBlock: Number(row.head_block),
  };
}

const EVENT_COLUMNS = 11;
const INSERT_CHUNK = 400;

async function insertEvents(tx: SqlClient, events: readonly IndexedEvent[]): Promise<number> {
  let inserted = 0;
  for (let i = 0; i < events.length; i += INSERT_CHUNK) {
    const chunk = events.slice(i, i + INSERT_CHUNK);
    const params: SqlParam[] = [];
    const rows = chunk.map((e, row) => {
      params.push(
        e.chainId,
        e.contractKey,
        e.address,
        e.eventName,
        JSON.stringify(e.args),
        e.blockNumber,
        e.blockHash,
        e.txHash,
        e.logIndex,
        JSON.stringify(e.topics),
        e.data,
      );
      const base = row * EVENT_COLUMNS;
      return `(${Array.from({ length: EVENT_COLUMNS }, (_, c) => `$${base + c + 1}`).join(", ")})`;
    });
    const result = await tx.query(
      `insert into chain_events (chain_id, contract_key, address, event_name, args, block_number, block_hash, tx_hash,
         log_index, topics, data) values ${rows.join(", ")}
       on conflict (block_hash, log_index) do nothing returning log_index`,
      params,
    );
    inserted += result.length;
  }
  return inserted;
}

/** Follows the chain into the database. `syncOnce` catches up to the head; `run` keeps doing it. */
export class Indexer {
  readonly #options: IndexerOptions;
  readonly #byAddress: Map<string, FollowedContract>;
  readonly #start: number;

  constructor(options: IndexerOptions) {
    if (!Number.isSafeInteger(options.confirmations) || options.confirmations < 0) {
      throw new RangeError(`confirmations must be a non-negative integer, not ${options.confirmations}`);
    }
    this.#options = options;
    this.#byAddress = new Map(options.contracts.map((c) => [c.address.toLowerCase(), c]));
    this.#start = startBlock(options.contracts);
  }

  async #blockHash(blockNumber: number): Promise<string | undefined> {
    try {
      const block = await this.#options.publicClient.getBlock({ blockNumber: BigInt(blockNumber) });
      return block.hash ?? undefined;
    } catch (error) {
      if ((error as Error).name === "BlockNotFoundError") return undefined;
      throw error;
    }
  }

  /** Rolls back every block from the first one whose stored hash the chain no longer has. */
  async #checkReorg(head: number): Promise<number | null> {
    const { db, chainId, logger } = this.#options;
    const stored = (
      await db.query<{ block_number: unknown; block_hash: string }>(
        "select block_number, block_hash from indexer_tip_blocks where chain_id = $1 order by block_number",
        [chainId],
      )
    ).map((row) => ({ blockNumber: Number(row.block_number), blockHash: row.block_hash }));
    const highest = stored[stored.length - 1];
    if (highest === undefined) return null;
    // A block hash commits to every ancestor: when the highest stored block is still there,
    // every lower one is too, and one call settles it.
    const highestNow = highest.blockNumber > head ? undefined : await this.#blockHash(highest.blockNumber);
    if (highestNow?.toLowerCase() === highest.blockHash.toLowerCase()) return null;
    const chainHashes = new Map<number, string | undefined>();
    for (const { blockNumber } of stored) {
      chainHashes.set(blockNumber, blockNumber > head ? undefined : await this.#blockHash(blockNumber));
    }
    const from = reorgStart(stored, chainHashes);
    if (from === null) return null;
    await db.transaction(async (tx) => {
      const removed = await tx.query(
        "delete from chain_events where chain_id = $1 and block_number >= $2 returning log_index",
        [chainId, from],
      );
      await tx.query("delete from indexer_tip_blocks where chain_id = $1 and block_number >= $2", [chainId, from]);
      await tx.query(
        `update indexer_cursors set last_block = $2, confirmed_block = least(confirmed_block, $2), updated_at = now()
         where chain_id = $1`,
        [chainId, from - 1],
      );
      logger?.warn({ chainId, from, removedEvents: removed.length }, "re-org: rolled back the replaced blocks");
    });
    return from;
  }

  /** Reads from the cursor to the chain's head, one committed transaction per block range. */
  async syncOnce(): Promise<SyncResult> {
    const { db, publicClient, chainId, confirmations, blockSpan, logger } = this.#options;
    // viem caches the block number for seconds by default: the indexer needs the head now.
    const head = Number(await publicClient.getBlockNumber({ cacheTime: 0 }));
    const reorgFrom = await this.#checkReorg(head);
    const cursor = await readCursor(db, chainId);
    let lastBlock = cursor?.lastBlock ?? this.#start - 1;
    const confirmed = confirmedHeight(head, confirmations);
    const addresses = this.#options.contracts.map((c) => c.address);
    let inserted = 0;

    const ranges = planRanges(lastBlock + 1, head, blockSpan);
    // With nothing new to read, one empty pass still records confirmations that the head brought.
    for (const range of ranges.length > 0 ? ranges : [null]) {
      let events: IndexedEvent[] = [];
      const tipHashes = new Map<number, string>();
      if (range !== null) {
        const logs = (await publicClient.getLogs({
          address: addresses,
          fromBlock: BigInt(range.from),
          toBlock: BigInt(range.to),
        })) as unknown as RawLog[];
        events = logs.map((log) => decodeLog(chainId, this.#byAddress, log));
        for (let block = Math.max(range.from, confirmed + 1); block <= range.to; block++) {
          const hash = await this.#blockHash(block);
          if (hash === undefined) throw new ChainMovedError(`block ${block} disappeared while reading`);
          tipHashes.set(block, hash);
        }
        for (const event of events) {
          const hash = tipHashes.get(event.blockNumber);
          if (hash !== undefined && hash.toLowerCase() !== event.blockHash.toLowerCase()) {
            throw new ChainMovedError(`block ${event.blockNumber} was replaced while reading`);
          }
        }
      }
      const upTo = range?.to ?? lastBlock;
      const confirmedUpTo = Math.min(upTo, confirmed);
      await db.transaction(async (tx) => {
        inserted += await insertEvents(tx, events);
        for (const [block, hash] of tipHashes) {
          if (!isUnconfirmed(block, head, confirmations)) continue;
          await tx.query(
            `insert into indexer_tip_blocks (chain_id, block_number, block_hash) values ($1, $2, $3)
             on conflict (chain_id, block_number) do update set block_hash = excluded.block_hash`,
            [chainId, block, hash],
          );
        }
        await tx.query("delete from indexer_tip_blocks where chain_id = $1 and block_number <= $2", [
          chainId,
          confirmed,
        ]);
        await tx.query(
          "update chain_events set confirmed = true where chain_id = $1 and not confirmed and block_number <= $2",
          [chainId, confirmedUpTo],
        );
        await tx.query(
          `insert into indexer_cursors (chain_id, last_block, confirmed_block, head_block) values ($1, $2, $3, $4)
           on conflict (chain_id) do update set last_block = excluded.last_block,
             confirmed_block = excluded.confirmed_block, head_block = excluded.head_block, updated_at = now()`,
          [chainId, upTo, confirmedUpTo, head],
        );
      });
      lastBlock = upTo;
      if (range !== null) logger?.debug({ chainId, from: range.from, to: range.to, events: events.length }, "range");
    }
    return { head, lastBlock, confirmedBlock: Math.min(lastBlock, confirmed), inserted, reorgFrom };
  }

  /** Syncs every `pollMs` until `signal` aborts; a failed pass is logged and retried on the next tick. */
  async run(options: { pollMs: number; signal: AbortSignal; onSync?: (result: SyncResult) => void }): Promise<void> {
    const { logger } = this.#options;
    while (!options.signal.aborted) {
      try {
        const result = await this.syncOnce();
        options.onSync?.(result);
        if (result.inserted > 0 || result.reorgFrom !== null) logger?.info(result, "indexed");
      } catch (error) {
        logger?.warn({ err: error }, "indexer pass failed; retrying");
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollMs);
        options.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  }
}
