// The auditor's I/O edge: catches the indexer up (its own PGlite in a temporary directory unless
// given a database), reads every protocol event from it, fetches each settled epoch's receipt
// batch (blob peers, then the oracle's API), reads the contracts' views at the indexed block, and
// hands everything to the pure checks (settlement.ts, balances.ts).
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { type Address, type Hex, type PublicClient, createPublicClient, getAddress, http, parseAbi } from "viem";

import { openDatabase, type Database } from "../keeper/indexer/db.ts";
import { Indexer } from "../keeper/indexer/indexer.ts";
import { followedContracts, type JsonArg } from "../keeper/indexer/logic.ts";
import { epochSettlementAbi, zkInferenceVerifierAbi } from "../oracle/chain.ts";
import type { ZkRequirement, ZkVerifierRegistry } from "../oracle/rules/zk.ts";
import { loadZkVerifiers } from "../oracle/zk.ts";
import { CONTRACT_KEYS, type ContractKey, type DeploymentRecord } from "../sdk/deployment.ts";
import { type EarningsEntry } from "../sdk/earnings.ts";
import { type Settlement, inframeshDomain } from "../sdk/eip712.ts";
import { checkFeeSchedule } from "../sdk/fees.ts";
import { type AuditEvent, type Balances, type ChainBalances, compareBalances, replayBalances } from "./balances.ts";
import { type Finding, finding } from "./findings.ts";
import { type ModelHistory, auditEpoch, unpackDebits, versionKey } from "./settlement.ts";

/** The audit could not be carried out (not: something did not match — that is a finding). */
export class AuditError extends Error {
  readonly code: "unknown_epoch" | "no_blob_peers" | "blob_store_unreachable" | "wrong_chain" | "rpc_unreachable";
  constructor(code: AuditError["code"], message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "AuditError";
    this.code = code;
  }
}

export interface AuditOptions {
  record: DeploymentRecord;
  rpcUrl: string;
  /** Every settled epoch, or one. */
  epochs: "all" | bigint;
  /** Blob-store peers holding the receipt batches (the oracle publishes there). */
  blobPeers: readonly string[];
  /** The oracle's API, asked for a batch no blob peer has (GET /v1/epochs/:n/batch). */
  oracleUrl?: string | undefined;
  /** The indexer's database; default: a fresh PGlite in a temporary directory, removed after. */
  database?: { databaseUrl?: string; dataDir?: string } | undefined;
  /**
   * Confirmations the indexer waits for (as the keeper's indexer sharing `database` does, so the
   * two agree on which blocks may still re-org); default 0.
   */
  confirmations?: number | undefined;
  /** Proof systems accepted for zk receipts; default: the ones the oracle registers at start-up. */
  zk?: ZkVerifierRegistry | undefined;
  /** Milliseconds one batch download may take. */
  fetchTimeoutMs?: number;
}

export type EpochStatus = "posted" | "final" | "funded" | "voided";

export interface EpochSummary {
  epoch: string;
  status: EpochStatus;
  receipts: number;
  batchSha256: string;
  /** Where the batch came from (a peer URL, "oracle"), or null when it could not be fetched. */
  batchSource: string | null;
  tx: string;
  findings: number;
}

export interface AuditReport {
  ok: boolean;
  chainId: number;
  /** The block every event and view was read at. */
  block: number;
  epochs: EpochSummary[];
  /** How many balances were recomputed and compared (zero when one epoch was audited). */
  balances: { nodes: number; stakers: number; locks: number; claimants: number; clients: number };
  findings: Finding[];
}

// ------------------------------------------------------------------ events

async function indexedEvents(db: Database, record: DeploymentRecord): Promise<AuditEvent[]> {
  const keyOf = new Map<string, ContractKey>(
    CONTRACT_KEYS.map((k) => [`${k}:${record.contracts[k].address.toLowerCase()}`, k]),
  );
  const rows = await db.query<{
    contract_key: string;
    address: string;
    event_name: string | null;
    args: Record<string, JsonArg>;
    block_number: unknown;
    log_index: unknown;
    tx_hash: string;
  }>(
    "select contract_key, address, event_name, args, block_number, log_index, tx_hash from chain_events " +
      "where chain_id = $1 order by block_number, log_index",
    [record.chainId],
  );
  const events: AuditEvent[] = [];
  for (const r of rows) {
    const key = keyOf.get(`${r.contract_key}:${r.address.toLowerCase()}`);
    if (key === undefined) continue; // another deployment on the same chain
    events.push({
      contract: key,
      event: r.event_name,
      args: r.args,
      blockNumber: Number(r.block_number),
      logIndex: Number(r.log_index),
      txHash: r.tx_hash,
    });
  }
  return events;
}

async function catchUp(
  options: AuditOptions,
  publicClient: PublicClient,
): Promise<{ events: AuditEvent[]; block: number }> {
  const temp = options.database === undefined ? await mkdtemp(path.join(tmpdir(), "inframesh-audit-")) : undefined;
  const db = await openDatabase(options.database ?? { dataDir: temp! });
  try {
    const indexer = new Indexer({
      db,
      publicClient,
      chainId: options.record.chainId,
      contracts: followedContracts(options.record),
      confirmations: options.confirmations ?? 0,
      blockSpan: 5_000,
    });
    const synced = await indexer.syncOnce();
    // Unconfirmed events are audited too: the views are read at the same (latest) block.
    return { events: await indexedEvents(db, options.record), block: synced.lastBlock };
  } finally {
    await db.close();
    if (temp !== undefined) await rm(temp, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ settlements on chain

interface PostedSettlement {
  epoch: bigint;
  settlement: Settlement;
  hash: string;
  blockNumber: number;
  tx: string;
  status: EpochStatus;
}

const big = (v: JsonArg | undefined) => BigInt(v as string);

/** The effective settlement of each epoch: the last one posted, with what became of it. */
export function settlementsFromEvents(events: readonly AuditEvent[]): PostedSettlement[] {
  const byEpoch = new Map<bigint, PostedSettlement>();
  for (const e of events) {
    if (e.contract === "epochSettlement" && e.event === "SettlementPosted") {
      const s = e.args.settlement as Record<string, JsonArg>;
      const epoch = big(e.args.epoch);
      byEpoch.set(epoch, {
        epoch,
        settlement: {
          epoch,
          earningsRoot: s.earningsRoot as Hex,
          totalDebits: big(s.totalDebits),
          fees: big(s.fees),
          royalties: big(s.royalties),
          redistributedSlash: big(s.redistributedSlash),
          receiptCount: big(s.receiptCount),
          batchSha256: s.batchSha256 as Hex,
        },
        hash: String(e.args.settlementHash).toLowerCase(),
        blockNumber: e.blockNumber,
        tx: e.txHash,
        status: "posted",
      });
    }
    const posted = e.args.epoch === undefined ? undefined : byEpoch.get(big(e.args.epoch));
    if (posted === undefined) continue;
    const sameHash = String(e.args.settlementHash ?? "").toLowerCase() === posted.hash;
    if (e.contract === "epochSettlement" && e.event === "SettlementVoided" && sameHash) posted.status = "voided";
    if (e.contract === "epochSettlement" && e.event === "SettlementFinalised" && sameHash) posted.status = "final";
    if (e.contract === "rewardClaims" && e.event === "DebitsCollected") posted.status = "funded";
  }
  return [...byEpoch.values()].sort((a, b) => (a.epoch < b.epoch ? -1 : 1));
}

/** Prices, publishers and zk verifiers over the model registry's whole history. */
export function modelHistory(events: readonly AuditEvent[]): ModelHistory {
  const prices = new Map<string, Set<bigint>>();
  const publishers = new Map<string, Set<Address>>();
  const zkVerifiers = new Map<string, ZkRequirement | null>();
  const addTo = <V>(m: Map<string, Set<V>>, k: string, v: V) => {
    let s = m.get(k);
    if (!s) m.set(k, (s = new Set()));
    s.add(v);
  };
  for (const e of events) {
    if (e.contract !== "modelRegistry") continue;
    const a = e.args;
    switch (e.event) {
      case "ModelRegistered":
        addTo(publishers, String(a.modelId), getAddress(a.publisher as string));
        break;
      case "PublisherTransferred":
        addTo(publishers, String(a.modelId), getAddress(a.newPublisher as string));
        break;
      case "VersionPublished": {
        const input = a.input as Record<string, JsonArg>;
        const key = versionKey(a.modelId as string, a.version as string);
        addTo(prices, key, big(input.price));
        const zk = getAddress(input.zkVerifier as string);
        // The verifier's weights commitment is not in the event: withWeightsCommitments reads it.
        zkVerifiers.set(
          key,
          BigInt(zk) === 0n
            ? null
            : { verifier: zk, verifyingKeyHash: input.verifyingKeyHash as Hex, weightsCommitment: null },
        );
        break;
      }
      case "MatureModelSet":
      case "VersionPriceSet":
        addTo(prices, versionKey(a.modelId as string, a.version as string), big(a.price));
        break;
    }
  }
  return { prices, publishers, zkVerifiers };
}

/**
 * Each zk verifier's `weightsCommitment()`, which VersionPublished does not carry. It is immutable
 * in the verifier, so the head's value is the one the oracle read; an ezkl verifier has none (null).
 */
async function withWeightsCommitments(history: ModelHistory, publicClient: PublicClient): Promise<ModelHistory> {
  const zkVerifiers = new Map(history.zkVerifiers);
  for (const [key, zk] of zkVerifiers) {
    if (zk === null) continue;
    const weightsCommitment = await publicClient
      .readContract({ address: zk.verifier, abi: zkInferenceVerifierAbi, functionName: "weightsCommitment" })
      .catch(() => null);
    zkVerifiers.set(key, { ...zk, weightsCommitment });
  }
  return { ...history, zkVerifiers };
}

// ------------------------------------------------------------------ batches

type Fetched = { bytes: Uint8Array; source: string } | { missing: true } | { unreachable: string[] };

async function getBytes(url: string, timeoutMs: number): Promise<{ status: number; bytes?: Uint8Array }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) {
    await res.body?.cancel();
    return { status: res.status };
  }
  return { status: 200, bytes: new Uint8Array(await res.arrayBuffer()) };
}

const sha256Hex = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

/**
 * The batch named `batchSha256`: the first copy that hashes to it, else a copy that does not (so
 * the finding can show what was served), else missing (every source answered without it) or
 * unreachable (no source answered at all).
 */
async function fetchBatch(epoch: bigint, batchSha256: Hex, options: AuditOptions): Promise<Fetched> {
  const hash = batchSha256.slice(2).toLowerCase();
  const sources = options.blobPeers.map((peer) => ({ url: `${peer.replace(/\/$/, "")}/blob/${hash}`, name: peer }));
  if (options.oracleUrl !== undefined)
    sources.push({ url: `${options.oracleUrl.replace(/\/$/, "")}/v1/epochs/${epoch}/batch`, name: "oracle" });
  const failures: string[] = [];
  let wrong: { bytes: Uint8Array; source: string } | undefined;
  let answered = false;
  for (const source of sources) {
    try {
      const got = await getBytes(source.url, options.fetchTimeoutMs ?? 30_000);
      answered = true;
      if (got.bytes === undefined) continue;
      if (sha256Hex(got.bytes) === batchSha256.toLowerCase()) return { bytes: got.bytes, source: source.name };
      wrong ??= { bytes: got.bytes, source: source.name };
    } catch (error) {
      failures.push(
        `${source.name}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`,
      );
    }
  }
  if (wrong !== undefined) return wrong;
  return answered ? { missing: true } : { unreachable: failures };
}

// ------------------------------------------------------------------ chain views

/** The views compared with the events (NodeStaking, RewardClaims, PaymentEscrow). */
export const balanceViewsAbi = parseAbi([
  "struct Pool { uint128 stake; uint128 shares; }",
  "struct UnbondingLock { uint128 shares; uint64 withdrawableAt; }",
  "struct NodeInfo { bool registered; uint16 commissionBps; uint64 jailedUntil; uint128 commissionOwed; bytes32 hardwareSpecHash; }",
  "function nodeInfo(address node) view returns (NodeInfo)",
  "function activePool(address node) view returns (Pool)",
  "function unbondingPool(address node) view returns (Pool)",
  "function sharesOf(address node, address staker) view returns (uint256)",
  "function lockCount(address node, address staker) view returns (uint256)",
  "function unbondingLock(address node, address staker, uint256 lockId) view returns (UnbondingLock)",
  "function claimed(address account) view returns (uint256)",
  "function earningsReserve() view returns (uint256)",
  "function balanceOf(address client) view returns (uint256)",
]);

async function readChainBalances(
  client: PublicClient,
  record: DeploymentRecord,
  expected: Balances,
  block: bigint,
): Promise<ChainBalances> {
  const staking = { address: record.contracts.nodeStaking.address, abi: balanceViewsAbi, blockNumber: block } as const;
  const claims = { address: record.contracts.rewardClaims.address, abi: balanceViewsAbi, blockNumber: block } as const;
  const escrow = { address: record.contracts.paymentEscrow.address, abi: balanceViewsAbi, blockNumber: block } as const;
  const out: ChainBalances = {
    pools: new Map(),
    shares: new Map(),
    lockCounts: new Map(),
    locks: new Map(),
    claimed: new Map(),
    commissionOwed: new Map(),
    earningsReserve: await client.readContract({ ...staking, functionName: "earningsReserve" }),
    escrow: new Map(),
  };
  for (const node of expected.commissionOwed.keys()) {
    const info = await client.readContract({ ...staking, functionName: "nodeInfo", args: [node] });
    out.commissionOwed.set(node, info.commissionOwed);
  }
  for (const node of expected.pools.keys()) {
    const [active, unbonding] = await Promise.all([
      client.readContract({ ...staking, functionName: "activePool", args: [node] }),
      client.readContract({ ...staking, functionName: "unbondingPool", args: [node] }),
    ]);
    out.pools.set(node, {
      activeStake: active.stake,
      activeShares: active.shares,
      unbondingStake: unbonding.stake,
      unbondingShares: unbonding.shares,
      scale: 0n,
    });
  }
  for (const key of expected.shares.keys()) {
    const [node, staker] = key.split("/") as [Address, Address];
    const [shares, count] = await Promise.all([
      client.readContract({ ...staking, functionName: "sharesOf", args: [node, staker] }),
      client.readContract({ ...staking, functionName: "lockCount", args: [node, staker] }),
    ]);
    out.shares.set(key, shares);
    out.lockCounts.set(key, count);
  }
  for (const key of expected.locks.keys()) {
    const [node, staker, id] = key.split("/") as [Address, Address, string];
    const lock = await client.readContract({
      ...staking,
      functionName: "unbondingLock",
      args: [node, staker, BigInt(id)],
    });
    out.locks.set(key, { shares: lock.shares, withdrawableAt: BigInt(lock.withdrawableAt) });
  }
  for (const account of expected.claimed.keys())
    out.claimed.set(account, await client.readContract({ ...claims, functionName: "claimed", args: [account] }));
  for (const account of expected.escrow.keys())
    out.escrow.set(account, await client.readContract({ ...escrow, functionName: "balanceOf", args: [account] }));
  return out;
}

// ------------------------------------------------------------------ the audit

/** Audits the deployment `options.record` on `options.rpcUrl`; findings, never throws for a mismatch. */
export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  const { record } = options;
  const publicClient = createPublicClient({
    transport: http(options.rpcUrl, { retryCount: 1, timeout: 60_000 }),
  }) as PublicClient;
  let chainId: number;
  try {
    chainId = await publicClient.getChainId();
  } catch (error) {
    throw new AuditError("rpc_unreachable", `cannot reach the RPC endpoint ${options.rpcUrl}`, { cause: error });
  }
  if (chainId !== record.chainId)
    throw new AuditError(
      "wrong_chain",
      `${options.rpcUrl} is chain ${chainId}, the deployment record is for chain ${record.chainId}`,
    );

  const { events, block } = await catchUp(options, publicClient);
  const settlements = settlementsFromEvents(events);
  if (options.epochs !== "all" && !settlements.some((s) => s.epoch === options.epochs))
    throw new AuditError(
      "unknown_epoch",
      `epoch ${options.epochs} has no settlement on chain ` +
        (settlements.length === 0
          ? "(none is posted yet)"
          : `(posted: ${settlements[0]!.epoch}..${settlements.at(-1)!.epoch})`),
    );
  const live = settlements.filter((s) => s.status !== "voided");
  const only = options.epochs;
  const wanted = only === "all" ? live : live.filter((s) => s.epoch <= only);
  if (wanted.length > 0 && options.blobPeers.length === 0 && options.oracleUrl === undefined)
    throw new AuditError(
      "no_blob_peers",
      "no blob-store peer to fetch the receipt batches from: pass --blob-peer <url> (or set INFRAMESH_BLOB_PEERS), or --oracle <url>",
    );

  const domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);
  const models = await withWeightsCommitments(modelHistory(events), publicClient);
  const balances = replayBalances(events, record.contracts.rewardClaims.address);
  // The same verifiers the oracle registers at start-up: a zk-required receipt is checked as the
  // oracle checked it, or the audit would report every proven job as unverifiable.
  const zk = options.zk ?? (await loadZkVerifiers(publicClient));
  const findings: Finding[] = [];
  const summaries: EpochSummary[] = settlements
    .filter((s) => s.status === "voided" && (options.epochs === "all" || s.epoch === options.epochs))
    .map((s) => ({
      epoch: s.epoch.toString(),
      status: s.status,
      receipts: 0,
      batchSha256: s.settlement.batchSha256,
      batchSource: null,
      tx: s.tx,
      findings: 0,
    }));
  const earningsByEpoch = new Map<bigint, Map<Address, bigint>>();
  const settledJobs = new Set<string>();
  let previous: EarningsEntry[] | undefined = [];
  for (const s of wanted) {
    const report = options.epochs === "all" || s.epoch === options.epochs;
    const epochFindings: Finding[] = [];
    const summary: EpochSummary = {
      epoch: s.epoch.toString(),
      status: s.status,
      receipts: 0,
      batchSha256: s.settlement.batchSha256,
      batchSource: null,
      tx: s.tx,
      findings: 0,
    };
    const fetched = await fetchBatch(s.epoch, s.settlement.batchSha256, options);
    if ("unreachable" in fetched)
      throw new AuditError(
        "blob_store_unreachable",
        `cannot fetch the receipt batch of epoch ${s.epoch}: no blob peer or oracle answered (${fetched.unreachable.join("; ")})`,
      );
    if ("missing" in fetched) {
      epochFindings.push(
        finding(
          "batch_unavailable",
          "no blob peer (nor the oracle) serves the receipt batch the settlement commits to",
          s.settlement.batchSha256,
          "not found",
          {
            epoch: s.epoch,
            tx: s.tx,
          },
        ),
      );
      previous = undefined;
    } else if (previous === undefined) {
      summary.batchSource = fetched.source;
      epochFindings.push(
        finding(
          "builds_on_bad_epoch",
          "the cumulative earnings this epoch builds on could not be recomputed",
          `epoch ${s.epoch - 1n} audited`,
          "not recomputable",
          {
            epoch: s.epoch,
          },
        ),
      );
    } else {
      summary.batchSource = fetched.source;
      const fees = checkFeeSchedule(
        await publicClient.readContract({
          address: record.contracts.epochSettlement.address,
          abi: epochSettlementAbi,
          functionName: "feeSchedule",
          blockNumber: BigInt(s.blockNumber),
        }),
      );
      const fundedTx = balances.fundedTx.get(s.epoch);
      const words = fundedTx === undefined ? undefined : balances.packedDebits.get(fundedTx);
      if (fundedTx !== undefined && words === undefined)
        epochFindings.push(
          finding(
            "debits_missing",
            "the epoch is funded but its transaction debited no client (DebitedPacked)",
            "DebitedPacked",
            "none",
            { epoch: s.epoch, tx: fundedTx },
          ),
        );
      const audited = await auditEpoch({
        epoch: s.epoch,
        onChain: s.settlement,
        batch: fetched.bytes,
        previous,
        fees,
        domain,
        models,
        zk,
        collectedDebits: words === undefined ? undefined : unpackDebits(words),
        settledJobs,
        tx: s.tx,
      });
      // Name who served a copy that is not the committed batch.
      for (const f of audited.findings)
        epochFindings.push(
          f.code === "batch_sha256_mismatch" ? { ...f, what: `${f.what}, served by ${fetched.source}` } : f,
        );
      summary.receipts = audited.receiptCount;
      for (const job of audited.jobs) settledJobs.add(job);
      previous = audited.built?.earnings;
      if (audited.built !== undefined)
        earningsByEpoch.set(s.epoch, new Map(audited.built.earnings.map((e) => [e.account, e.cumulativeAmount])));
    }
    summary.findings = epochFindings.length;
    if (report) {
      findings.push(...epochFindings);
      summaries.push(summary);
    }
  }
  summaries.sort((a, b) => (BigInt(a.epoch) < BigInt(b.epoch) ? -1 : 1));

  let counts = { nodes: 0, stakers: 0, locks: 0, claimants: 0, clients: 0 };
  if (options.epochs === "all") {
    const actual = await readChainBalances(publicClient, record, balances, BigInt(block));
    findings.push(...compareBalances(balances, actual, earningsByEpoch));
    counts = {
      nodes: balances.pools.size,
      stakers: balances.shares.size,
      locks: balances.locks.size,
      claimants: balances.claimed.size,
      clients: balances.escrow.size,
    };
  }
  return { ok: findings.length === 0, chainId, block, epochs: summaries, balances: counts, findings };
}
