// Every chain read and write of the oracle, through viem. Reads used by the verification rules
// are pinned to one block number (refreshed at most every `chainCacheMs`) and cached per block, so
// a burst of receipts costs one RPC call per distinct node, model and client per block. The
// results go to the pure rules as plain data.
import {
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type WalletClient,
  type Transport,
  type Account,
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  http,
  parseAbi,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { packDebits, type Debit } from "../sdk/earnings.ts";
import type { Settlement } from "../sdk/eip712.ts";
import { modelRegistryAbi } from "../sdk/models.ts";
import { nodeStakingAbi } from "../sdk/staking.ts";
import type { OracleConfig } from "./config.ts";
import { OracleChainError } from "./errors.ts";
import type { ModelFacts, NodeFacts } from "./rules/chain-facts.ts";

const SETTLEMENT_STRUCT =
  "struct Settlement { uint64 epoch; bytes32 earningsRoot; uint256 totalDebits; uint256 fees; uint256 royalties; uint256 redistributedSlash; uint64 receiptCount; bytes32 batchSha256; }";

export const epochSettlementAbi = parseAbi([
  SETTLEMENT_STRUCT,
  "struct SettlementRecord { bytes32 settlementHash; uint64 finalisableAt; uint8 status; }",
  "struct FeeSchedule { address treasury; uint16 protocolFeeBps; uint16 royaltyBps; }",
  "function post(Settlement settlement, bytes[] signatures) returns (bytes32)",
  "function finalise(uint64 epoch)",
  "function nextEpoch() view returns (uint64)",
  "function settlementOf(uint64 epoch) view returns (SettlementRecord)",
  "function oracles() view returns (address[])",
  "function threshold() view returns (uint256)",
  "function challengeWindow() view returns (uint32)",
  "function feeSchedule() view returns (FeeSchedule)",
  "error UnexpectedEpoch(uint64 epoch, uint64 expected)",
  "error UnexpectedStatus(uint64 epoch, uint8 status)",
  "error InsufficientSignatures(uint256 count, uint256 threshold)",
  "error InvalidSignature(uint256 index)",
  "error NotAnOracle(uint256 index, address signer)",
  "error SignersNotAscending(uint256 index, address signer, address previous)",
  "error ChallengeWindowOpen(uint64 epoch, uint64 finalisableAt, uint256 nowTimestamp)",
]);

export const rewardClaimsAbi = parseAbi([
  SETTLEMENT_STRUCT,
  "function collectDebits(Settlement settlement, bytes32[] debits)",
  "function nextEpoch() view returns (uint64)",
  "function totals() view returns (uint256 funded, uint256 paid)",
  "function unallocatedSlash() view returns (uint256)",
  "error NotAnOracle(address caller)",
  "error UnexpectedEpoch(uint64 epoch, uint64 expected)",
  "error NotFinal(uint64 epoch, uint8 status)",
  "error SettlementMismatch(uint64 epoch, bytes32 given, bytes32 recorded)",
  "error DebitsMismatch(uint64 epoch, uint256 debited, uint256 totalDebits)",
  "error InsufficientSlashedStake(uint256 redistributed, uint256 available)",
]);

/** The view of a version's ZkInferenceVerifier the rules need. */
export const zkInferenceVerifierAbi = parseAbi(["function weightsCommitment() view returns (uint256)"]);

export const paymentEscrowAbi = parseAbi([
  "struct Withdrawal { uint128 amount; uint64 withdrawableAt; }",
  "function balanceOf(address client) view returns (uint256)",
  "function pendingWithdrawal(address client) view returns (Withdrawal)",
  "function deposit(uint256 amount)",
]);

/** EpochSettlement's status enum. */
export const SETTLEMENT_STATUS = ["none", "posted", "voided", "final"] as const;
export type SettlementStatus = (typeof SETTLEMENT_STATUS)[number];

export interface FeeSchedule {
  treasury: Address;
  protocolFeeBps: number;
  royaltyBps: number;
}

export interface OracleChain {
  readonly chainId: number;
  readonly publicClient: PublicClient;
  readonly account: Account;
  /** The block number reads are pinned to now. */
  block(): Promise<bigint>;
  nodeFacts(node: Address, block: bigint): Promise<NodeFacts>;
  modelFacts(modelId: bigint, version: bigint, block: bigint): Promise<ModelFacts>;
  escrowBalance(client: Address, block: bigint): Promise<bigint>;
  loadFeeSchedule(): Promise<FeeSchedule>;
  loadUnallocatedSlash(): Promise<bigint>;
  settlementNextEpoch(): Promise<bigint>;
  settlementOf(epoch: bigint): Promise<{ settlementHash: Hex; finalisableAt: bigint; status: SettlementStatus }>;
  claimsNextEpoch(): Promise<bigint>;
  committee(): Promise<{ oracles: Address[]; threshold: number }>;
  latestTimestamp(): Promise<bigint>;
  post(settlement: Settlement, signatures: Hex[]): Promise<Hex>;
  finalise(epoch: bigint): Promise<Hex>;
  /** Funds the final epoch: one packed word per client (sdk/earnings.ts packDebits). */
  collectDebits(settlement: Settlement, debits: readonly Debit[]): Promise<Hex>;
}

/** A revert's error name and arguments, for messages ("UnexpectedEpoch(3, 2)"). */
export function describeChainError(error: unknown): string {
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName)
      return `${revert.data.errorName}(${(revert.data.args ?? []).map(String).join(", ")})`;
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A small per-block memo: entries of older blocks are dropped when a new block is seen. */
class BlockCache<V> {
  #block = -1n;
  #entries = new Map<string, Promise<V>>();
  get(block: bigint, key: string, load: () => Promise<V>): Promise<V> {
    if (block !== this.#block) {
      this.#block = block;
      this.#entries = new Map();
    }
    let hit = this.#entries.get(key);
    if (hit === undefined) {
      hit = load();
      // A failed read is not cached: the next receipt retries it.
      hit.catch(() => this.#entries.delete(key));
      this.#entries.set(key, hit);
    }
    return hit;
  }
}

export async function connectChain(config: OracleConfig): Promise<OracleChain> {
  const transport: Transport = http(config.rpcUrl, { retryCount: 2, timeout: 15_000 });
  const probe = createPublicClient({ transport });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (error) {
    throw new OracleChainError(`cannot reach the chain at ${config.rpcUrl}: ${describeChainError(error)}`, {
      cause: error,
    });
  }
  if (config.chainId !== undefined && config.chainId !== chainId)
    throw new OracleChainError(
      `the deployment record is for chain ${config.chainId}, ${config.rpcUrl} is chain ${chainId}`,
    );
  const chain: Chain = {
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.rpcUrl] } },
  };
  const publicClient = createPublicClient({ chain, transport }) as PublicClient;
  const account = privateKeyToAccount(config.oracleKey);
  const wallet: WalletClient<Transport, Chain, Account> = createWalletClient({ chain, transport, account });
  const c = config.contracts;

  let fetchedAt = 0;
  let latestBlock: bigint | undefined;
  let refresh: Promise<bigint> | undefined;
  const nodes = new BlockCache<NodeFacts>();
  const models = new BlockCache<ModelFacts>();
  const balances = new BlockCache<bigint>();

  const read = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw new OracleChainError(`chain read ${what} failed: ${describeChainError(error)}`, { cause: error });
    }
  };

  const send = async (what: string, fn: () => Promise<Hex>): Promise<Hex> => {
    let hash: Hex;
    try {
      hash = await fn();
    } catch (error) {
      throw new OracleChainError(`${what} was refused: ${describeChainError(error)}`, { cause: error });
    }
    const receipt = await publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new OracleChainError(`${what} reverted in ${hash}`);
    return hash;
  };

  // Until the fee schedule and slash views exist on the deployed contracts, read the config values:
  // the integrator swaps these two functions once the views land.
  const hasFunction = async (address: Address, abi: typeof epochSettlementAbi | typeof rewardClaimsAbi, name: string) =>
    publicClient
      .readContract({ address, abi, functionName: name as never })
      .then((value) => ({ ok: true as const, value }))
      .catch(() => ({ ok: false as const, value: undefined }));

  return {
    chainId,
    publicClient,
    account,
    block() {
      // Stale-while-revalidate: while traffic flows, callers get the known block number at once and
      // a refresh runs in the background, so a slow RPC never stalls every receipt in flight. After
      // an idle spell (older than two periods) the caller waits for a fresh number instead.
      const now = Date.now();
      const age = now - fetchedAt;
      if (age > config.chainCacheMs && refresh === undefined) {
        refresh = read("eth_blockNumber", () => publicClient.getBlockNumber({ cacheTime: 0 }))
          .then((n) => {
            if (latestBlock === undefined || n > latestBlock) latestBlock = n;
            fetchedAt = Date.now();
            return latestBlock;
          })
          .finally(() => {
            refresh = undefined;
          });
        // Callers served the known number do not await this one: a failure must not go unhandled.
        refresh.catch(() => {});
      }
      if (latestBlock !== undefined && age <= 2 * config.chainCacheMs) return Promise.resolve(latestBlock);
      return refresh ?? Promise.resolve(latestBlock!);
    },
    nodeFacts(node, blockNumber) {
      return nodes.get(blockNumber, node, () =>
        read(`NodeStaking facts of ${node}`, async () => {
          const args = { address: c.nodeStaking, abi: nodeStakingAbi, blockNumber } as const;
          const [info, jailed, eligible, tier] = await Promise.all([
            publicClient.readContract({ ...args, functionName: "nodeInfo", args: [node] }),
            publicClient.readContract({ ...args, functionName: "isJailed", args: [node] }),
            publicClient.readContract({ ...args, functionName: "isEligible", args: [node] }),
            publicClient.readContract({ ...args, functionName: "tierOf", args: [node] }),
          ]);
          return { registered: info.registered, jailed, eligible, tier: Number(tier) };
        }),
      );
    },
    modelFacts(modelId, version, blockNumber) {
      return models.get(blockNumber, `${modelId}:${version}`, () =>
        read(`ModelRegistry facts of model ${modelId} v${version}`, async () => {
          const args = { address: c.modelRegistry, abi: modelRegistryAbi, blockNumber } as const;
          let info;
          try {
            info = await publicClient.readContract({ ...args, functionName: "modelInfo", args: [modelId] });
          } catch (error) {
            if (describeChainError(error).startsWith("UnknownModel"))
              return {
                exists: false,
                publisher: "0x0000000000000000000000000000000000000000",
                hasServingVersion: false,
                servingVersion: 0n,
                versionCount: 0n,
              } satisfies ModelFacts;
            throw error;
          }
          const facts: ModelFacts = {
            exists: true,
            publisher: info.publisher,
            hasServingVersion: info.hasServingVersion,
            servingVersion: info.servingVersion,
            versionCount: info.versionCount,
          };
          if (version < info.versionCount) {
            const v = await publicClient.readContract({
              ...args,
              functionName: "versionInfo",
              args: [modelId, version],
            });
            facts.version = { price: v.price, zkVerifier: v.zkVerifier, verifyingKeyHash: v.verifyingKeyHash };
            if (v.zkVerifier !== "0x0000000000000000000000000000000000000000") {
              // A Groth16 version verifier fixes the weights commitment; an ezkl one has none.
              facts.version.weightsCommitment = await publicClient
                .readContract({
                  address: v.zkVerifier,
                  abi: zkInferenceVerifierAbi,
                  functionName: "weightsCommitment",
                  blockNumber,
                })
                .catch(() => null);
            }
          }
          return facts;
        }),
      );
    },
    escrowBalance(client, blockNumber) {
      // What the client can still be debited for sure: its balance less a requested withdrawal
      // (which it may take out before an epoch that owes it is funded).
      return balances.get(blockNumber, client, () =>
        read(`escrow balance of ${client}`, async () => {
          const args = { address: c.paymentEscrow, abi: paymentEscrowAbi, blockNumber } as const;
          const [balance, withdrawal] = await Promise.all([
            publicClient.readContract({ ...args, functionName: "balanceOf", args: [client] }),
            publicClient.readContract({ ...args, functionName: "pendingWithdrawal", args: [client] }),
          ]);
          return balance > withdrawal.amount ? balance - withdrawal.amount : 0n;
        }),
      );
    },
    async loadFeeSchedule() {
      const onChain = await hasFunction(c.epochSettlement, epochSettlementAbi, "feeSchedule");
      if (onChain.ok) {
        const f = onChain.value as { treasury: Address; protocolFeeBps: number; royaltyBps: number };
        return { treasury: f.treasury, protocolFeeBps: Number(f.protocolFeeBps), royaltyBps: Number(f.royaltyBps) };
      }
      if (config.feeSchedule === undefined)
        throw new OracleChainError(
          "EpochSettlement has no feeSchedule() and the config sets no feeSchedule {treasury, protocolFeeBps, royaltyBps}",
        );
      return config.feeSchedule;
    },
    async loadUnallocatedSlash() {
      const onChain = await hasFunction(c.rewardClaims, rewardClaimsAbi, "unallocatedSlash");
      return onChain.ok ? (onChain.value as bigint) : BigInt(config.unallocatedSlash);
    },
    settlementNextEpoch: () =>
      read("EpochSettlement.nextEpoch", () =>
        publicClient.readContract({ address: c.epochSettlement, abi: epochSettlementAbi, functionName: "nextEpoch" }),
      ),
    async settlementOf(epoch) {
      const r = await read(`EpochSettlement.settlementOf(${epoch})`, () =>
        publicClient.readContract({
          address: c.epochSettlement,
          abi: epochSettlementAbi,
          functionName: "settlementOf",
          args: [epoch],
        }),
      );
      return {
        settlementHash: r.settlementHash,
        finalisableAt: r.finalisableAt,
        status: SETTLEMENT_STATUS[r.status] ?? "none",
      };
    },
    claimsNextEpoch: () =>
      read("RewardClaims.nextEpoch", () =>
        publicClient.readContract({ address: c.rewardClaims, abi: rewardClaimsAbi, functionName: "nextEpoch" }),
      ),
    async committee() {
      const [oracles, threshold] = await read("EpochSettlement committee", () =>
        Promise.all([
          publicClient.readContract({ address: c.epochSettlement, abi: epochSettlementAbi, functionName: "oracles" }),
          publicClient.readContract({ address: c.epochSettlement, abi: epochSettlementAbi, functionName: "threshold" }),
        ]),
      );
      return { oracles: [...oracles], threshold: Number(threshold) };
    },
    async latestTimestamp() {
      const block = await read("latest block", () => publicClient.getBlock({ blockTag: "latest" }));
      return block.timestamp;
    },
    post: (settlement, signatures) =>
      send(`EpochSettlement.post(epoch ${settlement.epoch})`, () =>
        wallet.writeContract({
          address: c.epochSettlement,
          abi: epochSettlementAbi,
          functionName: "post",
          args: [settlement, signatures],
        }),
      ),
    finalise: (epoch) =>
      send(`EpochSettlement.finalise(${epoch})`, () =>
        wallet.writeContract({
          address: c.epochSettlement,
          abi: epochSettlementAbi,
          functionName: "finalise",
          args: [epoch],
        }),
      ),
    collectDebits: (settlement, debits) =>
      send(`RewardClaims.collectDebits(epoch ${settlement.epoch})`, () =>
        wallet.writeContract({
          address: c.rewardClaims,
          abi: rewardClaimsAbi,
          functionName: "collectDebits",
          args: [settlement, packDebits(debits)],
        }),
      ),
  };
}
