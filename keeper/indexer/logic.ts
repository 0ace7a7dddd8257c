// The indexer's pure parts: which contracts to follow, which block ranges to read, how a log
// becomes a row, where a re-org starts. No I/O here: indexer.ts does the reading and writing.
import { decodeEventLog, getAddress, type Abi, type Address, type Hash, type Hex } from "viem";

import { PROTOCOL_CONTRACT_KEYS, type DeploymentRecord, type ProtocolContractKey } from "../../sdk/deployment.ts";

/** A contract the indexer follows. */
export interface FollowedContract {
  key: ProtocolContractKey;
  address: Address;
  abi: Abi;
  deployBlock: number;
}

/** A raw log as getLogs returns it (only what the indexer reads). */
export interface RawLog {
  address: Address;
  topics: readonly Hex[];
  data: Hex;
  blockNumber: bigint | number;
  blockHash: Hash;
  transactionHash: Hash;
  logIndex: number;
}

/** One row of chain_events. `args` is JSON: bigints as decimal strings, structs as objects. */
export interface IndexedEvent {
  chainId: number;
  contractKey: ProtocolContractKey;
  address: Address;
  /** null when the contract's ABI does not know the event (kept raw: topics and data). */
  eventName: string | null;
  args: Record<string, JsonArg>;
  blockNumber: number;
  blockHash: Hash;
  txHash: Hash;
  logIndex: number;
  topics: Hex[];
  data: Hex;
}

export type JsonArg = string | boolean | null | JsonArg[] | { [key: string]: JsonArg };

/**
 * The contracts of a deployment the indexer follows: every one with a deploy block. A stake
 * token the deployment did not create (deployBlock null) is someone else's ERC-20, whose
 * transfers are not protocol events. zkML's contracts are followed when the record names them.
 */
export function followedContracts(record: DeploymentRecord): FollowedContract[] {
  const followed: FollowedContract[] = [];
  for (const key of PROTOCOL_CONTRACT_KEYS) {
    const contract = record.contracts[key];
    if (contract === undefined || contract.deployBlock === null) continue;
    followed.push({ key, address: getAddress(contract.address), abi: contract.abi, deployBlock: contract.deployBlock });
  }
  return followed;
}

/** The first block worth reading: the earliest deploy block. */
export function startBlock(contracts: readonly FollowedContract[]): number {
  if (contracts.length === 0) throw new RangeError("no contract to follow: the deployment created none");
  return Math.min(...contracts.map((c) => c.deployBlock));
}

/** Splits [from, to] into consecutive ranges of at most `span` blocks (none when from > to). */
export function planRanges(from: number, to: number, span: number): Array<{ from: number; to: number }> {
  if (!Number.isSafeInteger(span) || span < 1)
    throw new RangeError(`block span must be a positive integer, not ${span}`);
  const ranges: Array<{ from: number; to: number }> = [];
  for (let start = from; start <= to; start += span) ranges.push({ from: start, to: Math.min(to, start + span - 1) });
  return ranges;
}

/** The highest block with `confirmations` blocks on top of it (-1 when none is). */
export function confirmedHeight(head: number, confirmations: number): number {
  return head - confirmations;
}

/** Blocks the indexer keeps hashes of to notice a re-org: the unconfirmed ones, (head - confirmations, head]. */
export function isUnconfirmed(block: number, head: number, confirmations: number): boolean {
  return block > confirmedHeight(head, confirmations);
}

/**
 * The lowest stored block whose hash the chain no longer has (its block was replaced or is gone),
 * or null when every stored hash still matches. `chainHashes` maps block number → the chain's
 * hash now, undefined when the chain is shorter.
 */
export function reorgStart(
  stored: ReadonlyArray<{ blockNumber: number; blockHash: string }>,
  chainHashes: ReadonlyMap<number, string | undefined>,
): number | null {
  let lowest: number | null = null;
  for (const { blockNumber, blockHash } of stored) {
    const now = chainHashes.get(blockNumber);
    if (now?.toLowerCase() === blockHash.toLowerCase()) continue;
    if (lowest === null || blockNumber < lowest) lowest = blockNumber;
  }
  return lowest;
}

/** A value decoded by viem as JSON: bigints as decimal strings, arrays and structs kept. */
export function toJsonArg(value: unknown): JsonArg {
  if (typeof value === "bigint") return value.toString(10);
  if (typeof value === "number") return String(value);
  if (typeof value === "string" || typeof value === "boolean" || value === null) return value;
  if (value === undefined) return null;
  if (Array.isArray(value)) return value.map(toJsonArg);
  if (value instanceof Uint8Array) return `0x${Buffer.from(value).toString("hex")}`;
  if (typeof value === "object") {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toJsonArg(v)]));
  }
  throw new TypeError(`cannot store a ${typeof value} as an event argument`);
}

/** Named arguments (viem gives an array when the ABI's inputs are unnamed: name them arg0…). */
function namedArgs(args: unknown): Record<string, JsonArg> {
  if (args === undefined || args === null) return {};
  if (Array.isArray(args)) return Object.fromEntries(args.map((v, i) => [`arg${i}`, toJsonArg(v)]));
  const json = toJsonArg(args);
  return typeof json === "object" && json !== null && !Array.isArray(json) ? json : {};
}

/**
 * Decodes one log with the ABI of the contract that emitted it. A log from an address the
 * indexer does not follow is a caller's bug (getLogs was asked for these addresses only).
 */
export function decodeLog(
  chainId: number,
  byAddress: ReadonlyMap<string, FollowedContract>,
  log: RawLog,
): IndexedEvent {
  const contract = byAddress.get(log.address.toLowerCase());
  if (contract === undefined) throw new RangeError(`log from ${log.address}, which is not a followed contract`);
  let eventName: string | null = null;
  let args: Record<string, JsonArg> = {};
  try {
    const decoded = decodeEventLog({
      abi: contract.abi,
      topics: log.topics as [Hex, ...Hex[]],
      data: log.data,
      strict: true,
    });
    eventName = decoded.eventName ?? null;
    args = namedArgs(decoded.args);
  } catch {
    // An event the recorded ABI does not describe (an upgrade, a library's event): kept raw.
  }
  return {
    chainId,
    contractKey: contract.key,
    address: contract.address,
    eventName,
    args,
    blockNumber: Number(log.blockNumber),
    blockHash: log.blockHash,
    txHash: log.transactionHash,
    logIndex: log.logIndex,
    topics: [...log.topics],
    data: log.data,
  };
}

/** Chain order: block, then log index. */
export function compareEvents(a: Pick<IndexedEvent, "blockNumber" | "logIndex">, b: typeof a): number {
  return a.blockNumber - b.blockNumber || a.logIndex - b.logIndex;
}
