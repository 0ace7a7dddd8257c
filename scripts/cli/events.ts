// `infra events`: a protocol contract's events, from the indexer's database when one is
// configured (--db, DATABASE_URL, INFRAMESH_DATA_DIR or the default data directory when it
// exists), else straight from the chain with getLogs in bounded ranges. Both sources give the
// same rows: decoded by keeper/indexer/logic.ts, arguments as JSON with bigints as strings.
import { existsSync } from "node:fs";
import path from "node:path";

import type { Abi, AbiEvent, AbiParameter } from "viem";

import { indexerConfig } from "../../keeper/config.ts";
import { openDatabase, type Database, type SqlParam } from "../../keeper/indexer/db.ts";
import { readCursor } from "../../keeper/indexer/indexer.ts";
import {
  compareEvents,
  decodeLog,
  followedContracts,
  planRanges,
  type JsonArg,
  type RawLog,
} from "../../keeper/indexer/logic.ts";
import { CONTRACT_KEYS, type ContractKey, type DeploymentRecord } from "../../sdk/deployment.ts";
import { formatTable } from "../lib/table.ts";
import { openNetwork } from "./context.ts";
import { CliError } from "./format.ts";

/** Blocks per getLogs call when reading the chain directly. */
const CHAIN_BLOCK_SPAN = 5_000;

export interface EventsQuery {
  contract: ContractKey;
  event: string | undefined;
  fromBlock: number | undefined;
  toBlock: number | undefined;
}

/** One event as `infra events` prints it. */
export interface EventRow {
  blockNumber: number;
  logIndex: number;
  event: string | null;
  args: Record<string, JsonArg>;
  txHash: string;
  blockHash: string;
  /** From the indexer: whether it has its confirmations; null when read from the chain. */
  confirmed: boolean | null;
}

// ------------------------------------------------------------------ pure

/** A contract key from the command line, or an error listing the valid ones. */
export function parseContractKey(text: string): ContractKey {
  if ((CONTRACT_KEYS as readonly string[]).includes(text)) return text as ContractKey;
  throw new CliError(`unknown contract "${text}": use one of ${CONTRACT_KEYS.join(", ")}`);
}

/** A block number from the command line. */
export function parseBlock(name: string): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n)) {
      throw new CliError(`${name} must be a block number (a whole number ≥ 0), got "${text}"`);
    }
    return n;
  };
}

/** Checks --from-block ≤ --to-block. */
export function checkRange(fromBlock: number | undefined, toBlock: number | undefined): void {
  if (fromBlock !== undefined && toBlock !== undefined && fromBlock > toBlock) {
    throw new CliError(`bad block range: --from-block ${fromBlock} is after --to-block ${toBlock}`);
  }
}

/** The event names a contract's ABI declares. */
export function eventNames(abi: Abi): string[] {
  return abi
    .filter((item): item is AbiEvent => item.type === "event")
    .map((item) => item.name)
    .sort();
}

/** Checks the event name against the contract's ABI, listing the valid ones when it is not there. */
export function checkEventName(contract: ContractKey, abi: Abi, event: string | undefined): void {
  if (event === undefined) return;
  const names = eventNames(abi);
  if (!names.includes(event)) {
    throw new CliError(`${contract} has no event "${event}": use one of ${[...new Set(names)].join(", ")}`);
  }
}

function orderValue(param: AbiParameter, value: JsonArg): JsonArg {
  const components = "components" in param ? param.components : undefined;
  if (components === undefined || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    // An array of structs (`S[]`): each element ordered as the struct.
    const element = { ...param, type: param.type.replace(/\[[0-9]*\]$/, "") } as AbiParameter;
    return param.type.endsWith("]") ? value.map((v) => orderValue(element, v)) : value;
  }
  return orderFields(components, value);
}

function orderFields(params: readonly AbiParameter[], args: { [key: string]: JsonArg }): { [key: string]: JsonArg } {
  const ordered: { [key: string]: JsonArg } = {};
  for (const param of params) {
    if (param.name !== undefined && param.name in args) ordered[param.name] = orderValue(param, args[param.name]!);
  }
  for (const [key, value] of Object.entries(args)) if (!(key in ordered)) ordered[key] = value;
  return ordered;
}

/**
 * The arguments in the event's declaration order (structs too). JSONB keeps object keys in its
 * own order, so rows read from the database are put back in the order the chain source gives.
 */
export function orderArgs(abi: Abi, eventName: string | null, args: Record<string, JsonArg>): Record<string, JsonArg> {
  const event = abi.find((item): item is AbiEvent => item.type === "event" && item.name === eventName);
  return event === undefined ? args : orderFields(event.inputs, args);
}

function argText(value: JsonArg): string {
  if (value === null) return "null";
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `[${value.map(argText).join(", ")}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${k}: ${argText(v)}`)
    .join(", ")}}`;
}

/** The human table. */
export function formatEvents(rows: readonly EventRow[]): string {
  if (rows.length === 0) return "no events";
  return formatTable(
    [{ header: "block", align: "right" }, { header: "log", align: "right" }, { header: "event" }, { header: "args" }],
    rows.map((r) => [
      String(r.blockNumber),
      String(r.logIndex),
      `${r.event ?? "(unknown)"}${r.confirmed === false ? " *" : ""}`,
      Object.entries(r.args)
        .map(([k, v]) => `${k}=${argText(v)}`)
        .join(" "),
    ]),
  );
}

// ------------------------------------------------------------------ sources

/** Where the indexer's database is, if the user configured one or the default exists. */
export function databaseFor(
  db: string | undefined,
  network: string,
  env: NodeJS.ProcessEnv,
): { databaseUrl?: string; dataDir?: string } | undefined {
  if (db !== undefined) {
    if (/^postgres(ql)?:\/\//.test(db)) return { databaseUrl: db };
    if (!existsSync(db)) throw new CliError(`no indexer database at ${db} (run the indexer first, or omit --db)`);
    return { dataDir: path.resolve(db) };
  }
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== "") return { databaseUrl: env.DATABASE_URL };
  let dataDir: string;
  try {
    dataDir = indexerConfig({ ...env, INFRAMESH_NETWORK: network }).dataDir;
  } catch (error) {
    throw new CliError((error as Error).message, { cause: error });
  }
  return existsSync(dataDir) ? { dataDir } : undefined;
}

async function fromDatabase(db: Database, record: DeploymentRecord, query: EventsQuery): Promise<EventRow[]> {
  const cursor = await readCursor(db, record.chainId);
  if (cursor === null) {
    throw new CliError(
      `the indexer database has not indexed chain ${record.chainId} (network "${record.network}"): ` +
        "run the indexer against this network, or pass --chain to read the chain directly",
    );
  }
  const params: SqlParam[] = [record.chainId, query.contract, record.contracts[query.contract].address];
  let sql =
    "select event_name, args, block_number, log_index, tx_hash, block_hash, confirmed from chain_events " +
    "where chain_id = $1 and contract_key = $2 and address = $3";
  if (query.event !== undefined) sql += ` and event_name = $${params.push(query.event)}`;
  if (query.fromBlock !== undefined) sql += ` and block_number >= $${params.push(query.fromBlock)}`;
  if (query.toBlock !== undefined) sql += ` and block_number <= $${params.push(query.toBlock)}`;
  const rows = await db.query<{
    event_name: string | null;
    args: Record<string, JsonArg>;
    block_number: unknown;
    log_index: unknown;
    tx_hash: string;
    block_hash: string;
    confirmed: boolean;
  }>(`${sql} order by block_number, log_index`, params);
  const abi = record.contracts[query.contract].abi;
  return rows.map((r) => ({
    blockNumber: Number(r.block_number),
    logIndex: Number(r.log_index),
    event: r.event_name,
    args: orderArgs(abi, r.event_name, r.args),
    txHash: r.tx_hash,
    blockHash: r.block_hash,
    confirmed: r.confirmed,
  }));
}

async function fromChain(network: string, query: EventsQuery, env: NodeJS.ProcessEnv): Promise<EventRow[]> {
  const context = await openNetwork(network, env);
  const { record } = context;
  const client = context.contracts.publicClient;
  const contract = followedContracts(record).find((c) => c.key === query.contract) ?? {
    key: query.contract,
    address: record.contracts[query.contract].address,
    abi: record.contracts[query.contract].abi,
    deployBlock: 0,
  };
  const head = Number(await client.getBlockNumber({ cacheTime: 0 }));
  const from = query.fromBlock ?? contract.deployBlock;
  const to = query.toBlock ?? head;
  if (to > head) throw new CliError(`bad block range: --to-block ${to} is after the chain's head ${head}`);
  const byAddress = new Map([[contract.address.toLowerCase(), contract]]);
  const rows: EventRow[] = [];
  for (const range of planRanges(from, to, CHAIN_BLOCK_SPAN)) {
    const logs = (await client.getLogs({
      address: contract.address,
      fromBlock: BigInt(range.from),
      toBlock: BigInt(range.to),
    })) as unknown as RawLog[];
    for (const log of logs) {
      const e = decodeLog(record.chainId, byAddress, log);
      if (query.event !== undefined && e.eventName !== query.event) continue;
      rows.push({
        blockNumber: e.blockNumber,
        logIndex: e.logIndex,
        event: e.eventName,
        args: e.args,
        txHash: e.txHash,
        blockHash: e.blockHash,
        confirmed: null,
      });
    }
  }
  return rows.sort(compareEvents);
}

/** Reads the events `query` asks for; `source` tells where they came from. */
export async function eventsAction(
  network: string,
  record: DeploymentRecord,
  query: EventsQuery,
  options: { db: string | undefined; chain: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ source: string; rows: EventRow[] }> {
  checkRange(query.fromBlock, query.toBlock);
  checkEventName(query.contract, record.contracts[query.contract].abi, query.event);
  const database = options.chain ? undefined : databaseFor(options.db, network, env);
  if (database === undefined) return { source: "chain", rows: await fromChain(network, query, env) };
  let db: Database;
  try {
    db = await openDatabase(database);
  } catch (error) {
    throw new CliError((error as Error).message, { cause: error });
  }
  try {
    return { source: `indexer (${db.kind})`, rows: await fromDatabase(db, record, query) };
  } finally {
    await db.close();
  }
}
